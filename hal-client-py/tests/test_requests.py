"""Checkouts, denials, the context manager, borrows and threads, against a triad that
stays healthy (shared by the tests of this file, each of which gives back what it took)."""

from __future__ import annotations

import datetime
import threading
import time
from pathlib import Path

import hal_client
import pytest
from conftest import Cluster


def client_of(cluster: Cluster) -> hal_client.Client:
    return hal_client.Client(cluster.path, ca=cluster.ca)


def test_a_checkout_is_granted_by_server_1_and_checked_in(triad: Cluster) -> None:
    client = client_of(triad)
    seat = client.checkout("cad")
    assert (seat.server, seat.granted_by, seat.feature) == (1, 1, "cad")
    assert not seat.lost and not seat.checked_in
    assert triad.seats("cad") == (1, [seat.handle])
    assert repr(seat) == f"<hal_client.Seat {seat.handle} of cad from server #1, held>"
    seat.checkin()
    assert seat.checked_in
    assert triad.seats("cad") == (0, [])


def test_an_unknown_feature_is_denied_with_its_reason(triad: Cluster) -> None:
    client = client_of(triad)
    with pytest.raises(hal_client.Denied) as denied:
        client.checkout("cam")
    assert denied.value.reason == "unknown_feature"
    assert str(denied.value) == "denied: unknown_feature"
    assert isinstance(denied.value, hal_client.HalError)
    assert denied.value.reason in hal_client.DENIAL_REASONS


def test_a_checkout_when_every_seat_is_in_use_is_denied_with_its_reason(triad: Cluster) -> None:
    holder = client_of(triad)
    seats = [holder.checkout("cad") for _ in range(5)]
    other = client_of(triad)
    try:
        with pytest.raises(hal_client.Denied) as denied:
            other.checkout("cad")
        assert denied.value.reason == "all_in_use"
        assert str(denied.value) == "denied: all_in_use (5 of 5)"
    finally:
        for seat in seats:
            seat.checkin()
    assert triad.seats("cad") == (0, [])


def test_a_checkout_with_wait_queues_and_gets_the_next_seat(triad: Cluster) -> None:
    holder = client_of(triad)
    seats = [holder.checkout("cad") for _ in range(5)]
    waiter = client_of(triad)
    got: list[hal_client.Seat | hal_client.HalError] = []
    worker = threading.Thread(target=lambda: got.append(waiter.checkout("cad", wait=30.0)))
    try:
        worker.start()
        event = waiter.next_event(timeout=10.0)
        assert event == hal_client.Queued("cad", 1, 5, 5), event
        assert worker.is_alive()
        seats.pop().checkin()
        worker.join(timeout=15)
        assert not worker.is_alive()
        [seat] = got
        assert isinstance(seat, hal_client.Seat), seat
        assert seat.feature == "cad"
        seats.append(seat)
        # A wait that runs out is denied all_in_use.
        with pytest.raises(hal_client.Denied) as denied:
            client_of(triad).checkout("cad", wait=0.5)
        assert denied.value.reason == "all_in_use"
        with pytest.raises(ValueError):
            waiter.checkout("cad", wait=-1.0)
    finally:
        for s in seats:
            s.checkin()
    assert triad.seats("cad") == (0, [])


def test_leaving_a_with_block_checks_the_seat_in(triad: Cluster) -> None:
    client = client_of(triad)
    with client.checkout("cad") as seat:
        assert triad.seats("cad") == (1, [seat.handle])
    assert seat.checked_in
    assert triad.seats("cad") == (0, [])


def test_an_exception_in_a_with_block_checks_the_seat_in_and_goes_on(triad: Cluster) -> None:
    client = client_of(triad)
    with pytest.raises(ZeroDivisionError) as raised, client.checkout("cad") as seat:
        assert triad.seats("cad") == (1, [seat.handle])
        _ = 1 / 0
    assert seat.checked_in
    assert triad.seats("cad") == (0, [])
    assert not getattr(raised.value, "__notes__", None), "the checkin succeeded: no note"


def test_a_seat_dropped_unchecked_is_checked_in(triad: Cluster) -> None:
    client = client_of(triad)
    seat = client.checkout("cad")
    assert triad.seats("cad")[0] == 1
    del seat  # checks in without waiting, as the Rust guard's drop does
    triad.wait_seats("cad", 0)


def test_a_borrow_is_recorded_on_this_machine_and_returned(triad: Cluster, hal_home: Path) -> None:
    client = client_of(triad)
    before = datetime.datetime.now(datetime.UTC)
    record = client.borrow("cad", hours=8)
    assert (record.feature, record.server, record.license_path) == ("cad", 1, triad.path)
    assert record.handle.startswith("h")
    hours = (record.end - before).total_seconds() / 3600
    assert 7.9 < hours < 8.1, record.end
    assert record.end == datetime.datetime.fromtimestamp(
        record.end_ms / 1000, datetime.UTC
    ).replace(microsecond=record.end_ms % 1000 * 1000)
    assert record.handle in (hal_home / "borrows.json").read_text()
    assert triad.seats("cad")[0] == 1

    assert client.return_borrow(record.handle) is True
    assert record.handle not in (hal_home / "borrows.json").read_text()
    assert triad.seats("cad") == (0, [])
    with pytest.raises(hal_client.RecordError) as unknown:
        client.return_borrow(record.handle)
    assert unknown.value.reason == "record"
    assert f"no borrow {record.handle} was made from this machine" in str(unknown.value)


def test_a_borrow_record_object_returns_its_seat(triad: Cluster, hal_home: Path) -> None:
    client = client_of(triad)
    record = client.borrow("cad", 1)
    assert client.return_borrow(record) is True
    assert triad.seats("cad") == (0, [])
    with pytest.raises(hal_client.RecordError, match="no borrow"):
        client.return_borrow(record)


def test_a_borrow_past_the_license_limit_is_denied(triad: Cluster, hal_home: Path) -> None:
    client = client_of(triad)
    with pytest.raises(hal_client.Denied) as denied:
        client.borrow("cad", hours=73)  # BORROW = 72
    assert denied.value.reason == "borrow_not_allowed"
    with pytest.raises(ValueError, match="hours must be between 0 and"):
        client.borrow("cad", hours=-1)
    with pytest.raises(TypeError, match="BorrowRecord or a handle"):
        client.return_borrow(17)  # type: ignore[arg-type]
    with pytest.raises(hal_client.RecordError, match="is not a handle"):
        client.return_borrow("17")
    assert triad.seats("cad") == (0, [])


def test_one_client_serves_several_threads_at_once(triad: Cluster) -> None:
    client = client_of(triad)
    results: list[hal_client.Seat | hal_client.HalError] = []
    lock = threading.Lock()

    def take() -> None:
        try:
            seat: hal_client.Seat | hal_client.HalError = client.checkout("cad")
        except hal_client.HalError as e:
            seat = e
        with lock:
            results.append(seat)

    threads = [threading.Thread(target=take) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not any(t.is_alive() for t in threads)
    seats = [r for r in results if isinstance(r, hal_client.Seat)]
    denials = [r for r in results if isinstance(r, hal_client.HalError)]
    assert len(seats) == 5 and len(denials) == 1, results
    assert isinstance(denials[0], hal_client.Denied) and denials[0].reason == "all_in_use"
    assert len({s.handle for s in seats}) == 5
    checkins = [threading.Thread(target=s.checkin) for s in seats]
    for t in checkins:
        t.start()
    for t in checkins:
        t.join(timeout=30)
    assert triad.seats("cad") == (0, [])


def test_waiting_for_an_event_releases_the_gil(triad: Cluster) -> None:
    client = client_of(triad)
    got: list[hal_client.Event | None] = []
    worker = threading.Thread(target=lambda: got.append(client.next_event(timeout=1.0)))
    started = time.monotonic()
    worker.start()
    ticks = 0
    while worker.is_alive():
        ticks += 1
        time.sleep(0.01)
    took = time.monotonic() - started
    assert got == [None]
    assert 0.9 < took < 5.0, took
    assert ticks * 0.01 > took / 3, f"{ticks} ticks of 10 ms in {took:.2f} s"
    assert client.next_event(timeout=0) is None
    with pytest.raises(ValueError, match="timeout must be"):
        client.next_event(timeout=-1.0)
