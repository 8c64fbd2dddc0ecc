#!/usr/bin/env python3
"""A Python application that takes a seat while it works and gives it back.

    pip install ./hal-client-py
    HAL_LICENSE_PATH='6200@127.0.0.1;6201@127.0.0.1;6202@127.0.0.1' \\
    HAL_TRIAD_CA=/tmp/hal-demo/tls/ca.pem python3 examples/python/checkout.py HAL 30

Arguments: the feature (default HAL) and how many seconds to work (default 10).
Exit codes, as examples/c/checkout.c: 0 done; 1 failed otherwise; 2 denied; 3 no server
reached or no answer; 4 the seat was lost while working.
"""

import sys
import time

import hal_client


def fail(what: str, error: hal_client.HalError) -> int:
    print(f"{what}: {error.reason} ({error})", file=sys.stderr)
    if isinstance(error, (hal_client.Unreachable, hal_client.NoAnswer)):
        return 3
    if isinstance(error, hal_client.Denied):
        return 2  # every seat in use, no such feature, ...
    return 1


def main(argv: list[str]) -> int:
    feature = argv[1] if len(argv) > 1 else "HAL"
    seconds = int(argv[2]) if len(argv) > 2 else 10

    # The license path and the triad's CA from HAL_LICENSE_PATH and HAL_TRIAD_CA.
    try:
        client = hal_client.Client.from_env()
    except hal_client.HalError as error:
        return fail("error", error)

    try:
        seat = client.checkout(feature)
    except hal_client.HalError as error:
        return fail("denied", error)
    print(f"granted: {feature} seat {seat.handle} by server #{seat.server}", flush=True)

    # The work: the seat is heartbeated in the background; events say what happens.
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        match client.next_event(timeout=min(left, 0.1)):
            case hal_client.FailedOver(from_server, to_server):
                print(
                    f"failed over: server #{to_server} is active (was #{from_server})", flush=True
                )
            case hal_client.Lost(handle) if handle == seat.handle:
                print(f"lost: seat {handle}; stopping", file=sys.stderr)
                return 4
            case _:
                pass

    try:
        seat.checkin()
    except hal_client.HalError as error:
        return fail("checkin", error)
    print("checked in")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
