"""Borrowed seats proved offline, and a client that finds its triad by discovery, against
a triad of its own (the borrow test kills every server)."""

from __future__ import annotations

import json
from pathlib import Path

import hal_client
import pytest
from conftest import Cluster


def test_a_borrow_proves_itself_offline_and_an_edited_record_does_not(
    fresh_triad: Cluster, hal_home: Path
) -> None:
    client = hal_client.Client(fresh_triad.path, ca=fresh_triad.ca)
    record = client.borrow("cad", hours=2)
    assert record.signed
    assert client.borrowed("cam") is None

    # Offline: every server gone, the record alone answers.
    fresh_triad.kill_all()
    borrowed = client.borrowed("cad")
    assert borrowed is not None
    assert (borrowed.handle, borrowed.feature, borrowed.signer) == (record.handle, "cad", 1)
    assert borrowed.end == record.end and borrowed.end_ms == record.end_ms
    assert repr(borrowed).startswith(f"<hal_client.Borrowed {record.handle} of cad, signed by server #1")

    # A week more, written into the record by hand: refused, saying why.
    file = hal_home / "borrows.json"
    records = json.loads(file.read_text())
    records[0]["end_ms"] += 7 * 24 * 3_600_000
    file.write_text(json.dumps(records))
    with pytest.raises(hal_client.RecordError, match="changed after the server signed it") as refused:
        client.borrowed("cad")
    assert refused.value.reason == "record"

    # Without its signature it proves nothing either.
    del records[0]["proof"]
    file.write_text(json.dumps(records))
    with pytest.raises(hal_client.RecordError, match="unsigned"):
        client.borrowed("cad")

    # Proving needs the triad's CA.
    plaintext = hal_client.Client(fresh_triad.path, insecure=True)
    with pytest.raises(hal_client.ConfigError, match="CA"):
        plaintext.borrowed("cad")


def test_a_client_without_a_license_path_finds_the_triad(
    fresh_triad: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HAL_LICENSE_PATH", raising=False)
    # The servers share 127.0.0.1 on three ports: a broadcast on loopback to #1's port
    # reaches #1, which answers with the whole triad list.
    monkeypatch.setenv("HAL_DISCOVERY_TO", "127.255.255.255")
    monkeypatch.setenv("HAL_DISCOVERY_PORT", str(fresh_triad.ports[0]))
    client = hal_client.Client(ca=fresh_triad.ca)
    assert client.license_path == fresh_triad.path
    with client.checkout("cad") as seat:
        assert seat.server == 1
    # Nothing answering is a clear error.
    fresh_triad.kill_all()
    with pytest.raises(hal_client.ConfigError, match="no license server answered discovery"):
        hal_client.Client(ca=fresh_triad.ca)
