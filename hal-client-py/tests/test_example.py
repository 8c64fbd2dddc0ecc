"""The example (examples/python/checkout.py), run as a program against a real triad, as
hal-client-c's tests run examples/c/checkout.c: it holds its seat across a kill -9 of #1
and checks it in; a denial exits 2 with the denial's name; a configuration error exits 1
naming the file; a seat lost while working exits 4."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import hal_client
from conftest import WORKSPACE, Cluster

EXAMPLE = WORKSPACE / "examples" / "python" / "checkout.py"


def env_of(cluster: Cluster) -> dict[str, str]:
    return {
        **os.environ,
        "HAL_LICENSE_PATH": cluster.path,
        "HAL_TRIAD_CA": str(cluster.ca),
        "HAL_HOME": str(cluster.dir / "home"),
    }


def start(cluster: Cluster, seconds: int) -> tuple[subprocess.Popen[str], str]:
    """Starts the example working `seconds`; returns it once it printed its grant."""
    child = subprocess.Popen(
        [sys.executable, str(EXAMPLE), "cad", str(seconds)],
        env=env_of(cluster),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    line = child.stdout.readline()
    assert line.startswith("granted: cad seat h"), f"{line!r}\n{cluster.logs()}"
    return child, line


def test_the_example_keeps_its_seat_across_a_kill_9_of_one_and_checks_it_in(
    fresh_triad: Cluster,
) -> None:
    cluster = fresh_triad
    child, grant = start(cluster, 15)
    try:
        handle = grant.split()[3]
        assert grant.endswith("by server #1\n"), grant
        assert cluster.seats("cad") == (1, [handle])

        cluster.kill9(1)
        assert child.stdout is not None
        assert child.stdout.readline() == "failed over: server #2 is active (was #1)\n"
        time.sleep(9)  # over two leases: heartbeats keep it
        assert cluster.seats("cad") == (1, [handle])

        rest, errors = child.communicate(timeout=15)
        assert child.returncode == 0, f"{child.returncode}: {rest} {errors}"
        assert rest == "checked in\n"
        assert cluster.seats("cad") == (0, [])
    finally:
        child.kill()
        child.wait()


def test_the_example_is_denied_with_the_reason(triad: Cluster) -> None:
    unknown = subprocess.run(
        [sys.executable, str(EXAMPLE), "cam", "0"],
        env=env_of(triad),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert unknown.returncode == 2, unknown
    assert unknown.stderr.startswith("denied: unknown_feature (denied: unknown_feature)")

    holder = hal_client.Client(triad.path, ca=triad.ca)
    seats = [holder.checkout("cad") for _ in range(5)]
    try:
        full = subprocess.run(
            [sys.executable, str(EXAMPLE), "cad", "0"],
            env=env_of(triad),
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert full.returncode == 2, full
        assert full.stderr.startswith("denied: all_in_use (denied: all_in_use (5 of 5))")
    finally:
        for seat in seats:
            seat.checkin()

    nowhere = subprocess.run(
        [sys.executable, str(EXAMPLE)],
        env={
            **os.environ,
            "HAL_LICENSE_PATH": "1@127.0.0.1",
            "HAL_TRIAD_CA": "/nonexistent/ca.pem",
        },
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert nowhere.returncode == 1, nowhere
    assert nowhere.stderr.startswith("error: config (triad CA: /nonexistent/ca.pem: ")


def test_a_seat_lost_while_working_reaches_the_example(fresh_triad: Cluster) -> None:
    cluster = fresh_triad
    child, _ = start(cluster, 60)
    try:
        for id in (1, 2, 3):
            cluster.kill9(id)
        _, errors = child.communicate(timeout=20)
        assert child.returncode == 4, f"{child.returncode}: {errors}"
        assert errors.startswith("lost: seat h"), errors
    finally:
        child.kill()
        child.wait()
