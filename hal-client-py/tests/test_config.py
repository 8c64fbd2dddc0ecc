"""Options that cannot work are refused with a ConfigError that says what and where; no
server needed. And what a client sees of servers that are not there or do not answer."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import hal_client
import pytest
from conftest import free_ports


def test_a_missing_ca_file_is_a_config_error_naming_it() -> None:
    with pytest.raises(hal_client.ConfigError) as error:
        hal_client.Client("6200@127.0.0.1", ca="/nonexistent/ca.pem")
    assert error.value.reason == "config"
    assert str(error.value) == "triad CA: /nonexistent/ca.pem: cannot read the file"
    assert isinstance(error.value, hal_client.HalError)


def test_a_ca_file_that_holds_no_certificate_is_a_config_error(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("not a certificate\n")
    with pytest.raises(hal_client.ConfigError, match=str(ca)):
        hal_client.Client("6200@127.0.0.1", ca=ca)


def test_a_malformed_license_path_is_a_config_error_naming_the_entry() -> None:
    with pytest.raises(hal_client.ConfigError) as error:
        hal_client.Client("6200@lic1;6200@", insecure=True)
    assert str(error.value).startswith("license path '6200@lic1;6200@': ")
    assert "has no host" in str(error.value)


def test_a_ca_and_insecure_together_are_refused() -> None:
    with pytest.raises(hal_client.ConfigError, match="choose one"):
        hal_client.Client("6200@127.0.0.1", ca="ca.pem", insecure=True)


def test_no_ca_at_all_is_refused_with_the_ways_to_give_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("HAL_TRIAD_CA", raising=False)
    with pytest.raises(hal_client.ConfigError, match="no triad CA"):
        hal_client.Client("6200@127.0.0.1")


def test_an_unknown_timing_profile_is_refused() -> None:
    with pytest.raises(hal_client.ConfigError, match="timing profile 'moon': expected lan or wan"):
        hal_client.Client("6200@127.0.0.1", insecure=True, profile="moon")  # type: ignore[arg-type]


def test_the_environment_gives_the_options(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HAL_LICENSE_PATH", raising=False)
    with pytest.raises(hal_client.ConfigError, match="HAL_LICENSE_PATH"):
        hal_client.Client.from_env()
    monkeypatch.setenv("HAL_LICENSE_PATH", "6200@127.0.0.1;6201@127.0.0.1;6202@127.0.0.1")
    monkeypatch.setenv("HAL_TRIAD_CA", "/nonexistent/env-ca.pem")
    with pytest.raises(hal_client.ConfigError, match="/nonexistent/env-ca.pem"):
        hal_client.Client.from_env()
    with pytest.raises(hal_client.ConfigError, match="/nonexistent/env-ca.pem"):
        hal_client.Client()  # no arguments: the environment, as hal_client_new(NULL, NULL)
    # A license path given still takes the CA from the environment, as in C.
    with pytest.raises(hal_client.ConfigError, match="/nonexistent/env-ca.pem"):
        hal_client.Client("7000@127.0.0.1")
    client = hal_client.Client("7000@127.0.0.1", insecure=True)
    assert client.license_path == "7000@127.0.0.1"


def test_no_server_listening_is_unreachable() -> None:
    client = hal_client.Client(";".join(f"{p}@127.0.0.1" for p in free_ports(3)), insecure=True)
    started = time.monotonic()
    with pytest.raises(hal_client.Unreachable) as error:
        client.checkout("cad")
    assert error.value.reason == "unreachable"
    assert str(error.value).startswith("no license server could be reached (")
    assert time.monotonic() - started < 30


@pytest.fixture
def silent_servers() -> Iterator[list[int]]:
    """Three ports that accept connections (the kernel's backlog does) and never answer."""
    sockets = []
    for _ in range(3):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.bind(("127.0.0.1", 0))
        s.listen(16)
        sockets.append(s)
    try:
        yield [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def test_servers_that_never_answer_are_unreachable_after_a_wait_without_the_gil(
    silent_servers: list[int],
) -> None:
    client = hal_client.Client(";".join(f"{p}@127.0.0.1" for p in silent_servers), insecure=True)
    got: list[BaseException] = []

    def take() -> None:
        try:
            client.checkout("cad")
        except BaseException as e:  # checked below, in the test's thread
            got.append(e)

    worker = threading.Thread(target=take)
    started = time.monotonic()
    worker.start()
    ticks = 0
    while worker.is_alive() and time.monotonic() - started < 60:
        ticks += 1
        time.sleep(0.01)
    took = time.monotonic() - started
    worker.join(timeout=1)
    # No session was ever established (the connection's handshake went unanswered), so
    # no request can have taken effect: Unreachable, not NoAnswer.
    assert len(got) == 1 and isinstance(got[0], hal_client.Unreachable), got
    assert got[0].reason == "unreachable"
    assert "handshake timed out" in str(got[0])
    # Each server is waited for; the main thread ran throughout.
    assert took > 2.0, took
    assert ticks * 0.01 > took / 3, f"{ticks} ticks of 10 ms in {took:.2f} s"
