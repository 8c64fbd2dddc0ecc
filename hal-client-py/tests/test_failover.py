"""What happens to a held seat when servers die: it is kept across a kill -9 of the
active server, and its loss reaches the application when no majority is left."""

from __future__ import annotations

import gc
import os
import signal
import threading
import time

import hal_client
import pytest
from conftest import Cluster

# Over two 4 s leases: a seat still held after this was kept alive by heartbeats.
TWO_LEASES_S = 9.0


def test_a_seat_is_kept_across_a_kill_9_of_server_1_and_checked_in(fresh_triad: Cluster) -> None:
    cluster = fresh_triad
    client = hal_client.Client(cluster.path, ca=cluster.ca)
    seat = client.checkout("cad")
    assert seat.server == 1
    assert seat.feature == "cad"
    assert seat.handle.startswith("h")
    assert cluster.seats("cad") == (1, [seat.handle])

    cluster.kill9(1)
    event = client.next_event(timeout=10.0)
    assert event == hal_client.FailedOver(from_server=1, to_server=2), event
    assert isinstance(event, hal_client.Event) and event.kind == "failed_over"
    time.sleep(TWO_LEASES_S)
    assert not seat.lost
    assert cluster.seats("cad") == (1, [seat.handle])

    seat.checkin()
    assert seat.checked_in and not seat.lost
    assert cluster.seats("cad") == (0, [])
    seat.checkin()  # a second checkin does nothing


def test_a_seat_lost_when_no_majority_is_left_reaches_the_application(
    fresh_triad: Cluster,
) -> None:
    cluster = fresh_triad
    client = hal_client.Client(cluster.path, ca=cluster.ca)
    seat = client.checkout("cad")
    handle = seat.handle
    cluster.kill9(1)
    cluster.kill9(2)  # #3 alone has no majority: no heartbeat is acknowledged

    deadline = time.monotonic() + 15.0
    lost = None
    while lost is None and time.monotonic() < deadline:
        match client.next_event(timeout=1.0):
            case hal_client.Lost(handle=h, feature=f):
                lost = (h, f)
            case _:
                pass
    assert lost == (handle, "cad"), "no Lost event within 15 s"
    assert seat.lost
    assert "lost" in repr(seat)


def test_a_checkout_during_a_failover_waits_without_holding_the_gil(
    fresh_triad: Cluster,
) -> None:
    cluster = fresh_triad
    client = hal_client.Client(cluster.path, ca=cluster.ca)
    cluster.kill9(1)
    got: list[hal_client.Seat | BaseException] = []

    def take() -> None:
        try:
            got.append(client.checkout("cad"))
        except BaseException as e:  # reported below, in the test's thread
            got.append(e)

    worker = threading.Thread(target=take)
    started = time.monotonic()
    worker.start()
    ticks = 0
    while worker.is_alive():
        ticks += 1
        time.sleep(0.01)
    took = time.monotonic() - started
    worker.join()
    assert len(got) == 1 and isinstance(got[0], hal_client.Seat), got
    seat = got[0]
    assert seat.server == 2
    # The failover takes about a second (election_timeout + failover_delay); the main
    # thread ran throughout, not once the checkout was done.
    assert took > 0.5, f"the checkout took {took:.2f} s: no failover was waited for"
    assert ticks * 0.01 > took / 3, f"{ticks} ticks of 10 ms in {took:.2f} s"
    seat.checkin()
    assert cluster.seats("cad") == (0, [])


def test_dropping_a_client_whose_checkins_go_unheard_does_not_hold_the_gil(
    fresh_triad: Cluster,
) -> None:
    cluster = fresh_triad
    client = hal_client.Client(cluster.path, ca=cluster.ca)
    seat = client.checkout("cad")
    cluster.kill_all()
    done = threading.Event()

    def drop() -> None:
        nonlocal client, seat
        # The last references: the seat is checked in without waiting, then the client's
        # engine waits for that checkin to be heard, which no server can do.
        del seat
        del client
        gc.collect()
        done.set()

    worker = threading.Thread(target=drop)
    started = time.monotonic()
    worker.start()
    ticks = 0
    while not done.is_set():
        ticks += 1
        time.sleep(0.01)
    took = time.monotonic() - started
    worker.join()
    assert took > 1.0, f"the drop took {took:.2f} s: it waited for nothing"
    assert ticks * 0.01 > took / 3, f"{ticks} ticks of 10 ms in {took:.2f} s"


def test_a_request_no_server_answers_raises_no_answer_and_is_settled_later(
    fresh_triad: Cluster,
) -> None:
    cluster = fresh_triad
    client = hal_client.Client(cluster.path, ca=cluster.ca)
    first = client.checkout("cad")  # the connection to #1 is open from here on
    stopped = [cluster.children[id].pid for id in (1, 2, 3)]
    for pid in stopped:
        os.kill(pid, signal.SIGSTOP)
    try:
        # Sent to #1 over its open connection, and never answered: it may have been
        # granted, so this is not a denial but "no answer".
        with pytest.raises(hal_client.NoAnswer) as no_answer:
            client.checkout("cad")
    finally:
        for pid in stopped:
            os.kill(pid, signal.SIGCONT)
    assert no_answer.value.reason == "no_answer"
    request = no_answer.value.request
    assert request.startswith("r"), request
    # The servers are back: the client asks again with the same request number and
    # checks in the seat it finds, if any.
    deadline = time.monotonic() + 20
    seen: list[hal_client.Event] = []
    while time.monotonic() < deadline:
        event = client.next_event(timeout=1.0)
        if event is None:
            continue
        seen.append(event)
        if isinstance(event, hal_client.Settled) and event.request == request:
            break
    else:
        pytest.fail(f"no Settled event for {request}; saw {seen}\n{cluster.logs()}")
    del first
    # Nothing is left behind: the settled seat is checked in, the first one expires or
    # is checked in when dropped.
    cluster.wait_seats("cad", 0, limit_s=20)
