"""A real triad for the tests: three `hal-net serve` processes on 127.0.0.1 over TLS, set
up as hal-net/tests/support/cluster.rs sets them up (a vendor key, a signed license of
five `cad` seats with borrowing, `hal-net tls init`, three configs on free ports, the LAN
timing profile with a 4 s client lease).

The `hal-net` binary is $HAL_NET_BIN if set; otherwise the fixture runs
`cargo build -p hal-net --bins` in the workspace and takes target/debug/hal-net (the
target directory cargo reports, so CARGO_TARGET_DIR is honoured).

Every wait is bounded; a failing wait shows the servers' logs. Servers run in process
groups of their own and are killed when their fixture ends.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

WORKSPACE = Path(__file__).resolve().parents[2]

# The demo license of the tests: five seats, borrowing allowed.
LICENSE = """\
FEATURE cad
{
  VENDOR = acme
  COUNT = 5
  HAL_SERVERS = 3
  BORROW = 72
}
"""

# A 4 s lease with 1 s heartbeats: a lost seat is noticed within seconds.
TIMING = 'client_lease = "4s"\nclient_heartbeat = "1s"'

# How long a verb or a build may take before the test fails.
VERB_TIMEOUT_S = 30
BUILD_TIMEOUT_S = 1800


def _built_hal_net() -> Path:
    given = os.environ.get("HAL_NET_BIN")
    if given:
        path = Path(given)
        if not path.is_file():
            raise RuntimeError(f"HAL_NET_BIN={given}: no such file")
        return path
    build = subprocess.run(
        ["cargo", "build", "-p", "hal-net", "--bins"],
        cwd=WORKSPACE,
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT_S,
    )
    if build.returncode != 0:
        raise RuntimeError(f"cargo build -p hal-net --bins failed:\n{build.stderr}")
    metadata = subprocess.run(
        ["cargo", "metadata", "--format-version", "1", "--no-deps"],
        cwd=WORKSPACE,
        capture_output=True,
        text=True,
        check=True,
        timeout=VERB_TIMEOUT_S,
    )
    target = Path(json.loads(metadata.stdout)["target_directory"])
    return target / "debug" / "hal-net"


@pytest.fixture(scope="session")
def hal_net() -> Path:
    """The hal-net binary ($HAL_NET_BIN, or built by cargo)."""
    return _built_hal_net()


def free_ports(count: int) -> list[int]:
    """Ports the OS says are free now (bound at once so they differ, then released)."""
    sockets = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def run(args: list[str | os.PathLike[str]]) -> subprocess.CompletedProcess[str]:
    """Runs a command to completion, bounded in time; fails the test if it fails."""
    done = subprocess.run(
        [str(a) for a in args], capture_output=True, text=True, timeout=VERB_TIMEOUT_S
    )
    assert done.returncode == 0, f"{args} failed: {done.stdout}\n{done.stderr}"
    return done


class Cluster:
    """Three servers' files and processes in `dir`."""

    def __init__(self, hal_net: Path, dir: Path, timing: str = TIMING) -> None:
        self.hal_net = hal_net
        self.dir = dir
        self.ports = free_ports(3)
        self.children: dict[int, subprocess.Popen[bytes]] = {}
        self.started: set[int] = set()
        run([hal_net, "license", "keygen", "--out", dir])
        (dir / "cad.lic.unsigned").write_text(LICENSE)
        unsigned = dir / "cad.lic.unsigned"
        run(
            [
                hal_net,
                "license",
                "sign",
                "--key",
                dir / "vendor.key",
                unsigned,
                "--output",
                dir / "cad.lic",
            ]
        )
        servers = ",".join(self.triad())
        run([hal_net, "tls", "init", "--servers", servers, "--dir", dir / "tls"])
        for id in (1, 2, 3):
            self.write_config(id, timing)

    def triad(self) -> list[str]:
        """The triad list in role order."""
        return [f"{port}@127.0.0.1" for port in self.ports]

    @property
    def path(self) -> str:
        """The license path clients use."""
        return ";".join(self.triad())

    @property
    def ca(self) -> Path:
        """The triad's CA certificate, which clients verify the servers against."""
        return self.dir / "tls" / "ca.pem"

    def write_config(self, id: int, timing: str) -> None:
        triad = ", ".join(f'"{t}"' for t in self.triad())
        (self.dir / f"server{id}.toml").write_text(
            f'id = {id}\nlisten = "127.0.0.1:{self.ports[id - 1]}"\ntriad = [{triad}]\n'
            f'data_dir = "data{id}"\nlicense = "cad.lic"\nvendor_key = "vendor.pub"\n'
            f'hostid = "host{id}"\n'
            f'[tls]\nca = "tls/ca.pem"\ncert = "tls/server{id}.pem"\nkey = "tls/server{id}.key"\n'
            f'[timing]\nprofile = "lan"\n{timing}\n'
        )

    def log(self, id: int) -> Path:
        return self.dir / f"server{id}.log"

    def start(self, id: int) -> None:
        """Starts server `id` (with --join-empty the first time, as an operator starts a
        new triad), its output appended to its log, in a process group of its own."""
        args = [str(self.hal_net), "serve", "--config", str(self.dir / f"server{id}.toml")]
        if id not in self.started:
            args.append("--join-empty")
        self.started.add(id)
        with open(self.log(id), "ab") as log:
            self.children[id] = subprocess.Popen(
                args,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env={**os.environ, "RUST_LOG": "info"},
                start_new_session=True,
            )

    def start_all(self) -> None:
        for id in (1, 2, 3):
            self.start(id)

    def kill9(self, id: int) -> None:
        """`kill -9` of server `id`'s process group."""
        child = self.children.pop(id, None)
        if child is not None:
            _kill_group(child)

    def kill_all(self) -> None:
        for id in list(self.children):
            self.kill9(id)

    def logs(self) -> str:
        """Every server's log, for failure messages."""
        parts = []
        for id in (1, 2, 3):
            text = self.log(id).read_text(errors="replace") if self.log(id).exists() else ""
            parts.append(f"----- server{id}.log -----\n{text}")
        return "\n".join(parts)

    def verb(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Runs a client verb with the cluster's license path and CA."""
        return subprocess.run(
            [str(self.hal_net), *args, "--license-path", self.path],
            capture_output=True,
            text=True,
            timeout=VERB_TIMEOUT_S,
            env={
                **os.environ,
                "HAL_TRIAD_CA": str(self.ca),
                "HAL_HOME": str(self.dir / "client-home"),
            },
        )

    def status(self) -> dict[str, object]:
        """`hal-net status --json`."""
        out = self.verb("status", "--json", "--timeout", "1s")
        try:
            status: dict[str, object] = json.loads(out.stdout)
        except json.JSONDecodeError as e:
            raise AssertionError(f"status output is not JSON ({e}): {out}") from e
        return status

    def wait_active(self, id: int, limit_s: float = 15.0) -> None:
        """Waits until `id` is active and has applied its whole log."""
        deadline = time.monotonic() + limit_s
        status: dict[str, object] = {}
        while time.monotonic() < deadline:
            status = self.status()
            servers = status.get("servers")
            me = servers[id - 1] if isinstance(servers, list) else {}
            caught_up = me.get("commit_index") is not None and me.get("commit_index") == me.get(
                "last_index"
            )
            if status.get("active") == id and caught_up:
                return
            time.sleep(0.1)
        raise AssertionError(f"server #{id} not active within {limit_s} s: {status}\n{self.logs()}")

    def seats(self, feature: str) -> tuple[int, list[str]]:
        """Seats in use of `feature` and their handles, as status shows them."""
        status = self.status()
        features = status.get("features")
        assert isinstance(features, list), f"no features in {status}"
        for f in features:
            if f["feature"] == feature:
                handles = sorted(h["handle"] for h in f["holders"])
                return int(f["used"]), handles
        raise AssertionError(f"no {feature} in {status}")

    def wait_seats(self, feature: str, used: int, limit_s: float = 10.0) -> None:
        """Waits until status shows `used` seats of `feature` in use."""
        deadline = time.monotonic() + limit_s
        seen = self.seats(feature)
        while seen[0] != used and time.monotonic() < deadline:
            time.sleep(0.1)
            seen = self.seats(feature)
        assert seen[0] == used, f"{used} seats of {feature} expected, status shows {seen}"


def _kill_group(child: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(child.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    child.wait(timeout=VERB_TIMEOUT_S)


def _started(hal_net: Path, dir: Path) -> Iterator[Cluster]:
    cluster = Cluster(hal_net, dir)
    try:
        cluster.start_all()
        cluster.wait_active(1)
        yield cluster
    finally:
        cluster.kill_all()


@pytest.fixture
def fresh_triad(hal_net: Path, tmp_path: Path) -> Iterator[Cluster]:
    """A triad of its own, for a test that kills servers."""
    yield from _started(hal_net, tmp_path)


@pytest.fixture(scope="module")
def triad(hal_net: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """A triad shared by the tests of a module that leave it as they found it: all three
    servers up, #1 active, no seat taken."""
    yield from _started(hal_net, tmp_path_factory.mktemp("triad"))


@pytest.fixture
def hal_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A borrow-record directory of the test's own ($HAL_HOME)."""
    home = tmp_path / "hal-home"
    monkeypatch.setenv("HAL_HOME", str(home))
    return home
