"""The HAL license client: take a license seat while your application runs.

Type stub of the extension module (src/lib.rs); maturin installs it as the package's
__init__.pyi, beside py.typed.
"""

import datetime
import os
from types import TracebackType
from typing import Final, Literal, final

__version__: Final[str]
DENIAL_REASONS: Final[tuple[str, ...]]
"""Every reason a Denied may carry, as Error::name() and hal_status_name() give them."""

@final
class Client:
    """A license client: one background thread, one connection per server and one
    heartbeat for all its seats. May be shared by threads."""

    def __init__(
        self,
        license_path: str | None = None,
        *,
        ca: str | os.PathLike[str] | None = None,
        insecure: bool = False,
        profile: Literal["lan", "wan"] | None = None,
        user: str | None = None,
        host: str | None = None,
    ) -> None: ...
    @staticmethod
    def from_env() -> Client: ...
    @property
    def license_path(self) -> str: ...
    def checkout(self, feature: str, *, wait: float | None = None) -> Seat: ...
    def borrow(self, feature: str, hours: int) -> BorrowRecord: ...
    def borrowed(self, feature: str) -> Borrowed | None: ...
    def return_borrow(self, handle: BorrowRecord | str) -> bool: ...
    def next_event(self, timeout: float | None = None) -> Event | None: ...

@final
class Seat:
    """A checked-out seat, heartbeated in the background until checked in; a context
    manager that checks it in on leaving the with block."""

    @property
    def handle(self) -> str: ...
    @property
    def feature(self) -> str: ...
    @property
    def server(self) -> int: ...
    @property
    def granted_by(self) -> int: ...
    @property
    def lost(self) -> bool: ...
    @property
    def checked_in(self) -> bool: ...
    def checkin(self) -> None: ...
    def __enter__(self) -> Seat: ...
    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> bool: ...

@final
class BorrowRecord:
    """A borrowed seat, its record also kept on this machine ($HAL_HOME/borrows.json)."""

    @property
    def handle(self) -> str: ...
    @property
    def feature(self) -> str: ...
    @property
    def server(self) -> int: ...
    @property
    def end_ms(self) -> int: ...
    @property
    def end(self) -> datetime.datetime: ...
    @property
    def license_path(self) -> str: ...
    @property
    def signed(self) -> bool: ...

@final
class Borrowed:
    """A borrow proved offline by its record (Client.borrowed()): signed by a server of
    the triad's CA, unchanged since, made on this host, and not ended."""

    @property
    def handle(self) -> str: ...
    @property
    def feature(self) -> str: ...
    @property
    def end_ms(self) -> int: ...
    @property
    def end(self) -> datetime.datetime: ...
    @property
    def user(self) -> str: ...
    @property
    def host(self) -> str: ...
    @property
    def signer(self) -> int: ...

class Event:
    """Something that happened to a client's seats: Lost, Removed, FailedOver,
    BorrowEnded, Settled, Missed or Queued."""

    @property
    def kind(
        self,
    ) -> Literal[
        "lost", "removed", "failed_over", "borrow_ended", "settled", "missed", "queued"
    ]: ...

@final
class Lost(Event):
    """A checked-out seat is gone: its lease ran out with no heartbeat acknowledged."""

    __match_args__ = ("handle", "feature")
    def __init__(self, handle: str, feature: str) -> None: ...
    @property
    def handle(self) -> str: ...
    @property
    def feature(self) -> str: ...

@final
class Removed(Event):
    """An administrator removed a checked-out seat: the servers no longer count it."""

    __match_args__ = ("handle", "feature")
    def __init__(self, handle: str, feature: str) -> None: ...
    @property
    def handle(self) -> str: ...
    @property
    def feature(self) -> str: ...

@final
class FailedOver(Event):
    """Another server answers as the active one now; held seats are kept."""

    __match_args__ = ("from_server", "to_server")
    def __init__(self, from_server: int, to_server: int) -> None: ...
    @property
    def from_server(self) -> int: ...
    @property
    def to_server(self) -> int: ...

@final
class BorrowEnded(Event):
    """A borrowed seat reached its end."""

    __match_args__ = ("handle",)
    def __init__(self, handle: str) -> None: ...
    @property
    def handle(self) -> str: ...

@final
class Settled(Event):
    """A request that raised NoAnswer is settled; released is the seat it had produced,
    now checked in, or None."""

    __match_args__ = ("request", "released")
    def __init__(self, request: str, released: str | None = None) -> None: ...
    @property
    def request(self) -> str: ...
    @property
    def released(self) -> str | None: ...

@final
class Missed(Event):
    """This client fell behind in taking events and missed of them were dropped."""

    __match_args__ = ("missed",)
    def __init__(self, missed: int) -> None: ...
    @property
    def missed(self) -> int: ...

@final
class Queued(Event):
    """A checkout with wait waits in its feature's queue at position (1: next)."""

    __match_args__ = ("feature", "position", "used", "count")
    def __init__(self, feature: str, position: int, used: int, count: int) -> None: ...
    @property
    def feature(self) -> str: ...
    @property
    def position(self) -> int: ...
    @property
    def used(self) -> int: ...
    @property
    def count(self) -> int: ...

class HalError(Exception):
    """A license request failed; reason is the error's stable name."""

    reason: str

class Denied(HalError):
    """The servers refused; reason is one of DENIAL_REASONS ("all_in_use", ...)."""

class Unreachable(HalError):
    """No license server could be reached; the request was not acted on."""

class NoAnswer(HalError):
    """No server answered in time; the request may have taken effect and is settled
    later (a Settled event with this request)."""

    request: str

class ConfigError(HalError):
    """The client's options are not usable (license path, CA file, profile)."""

class RecordError(HalError):
    """A borrow record could not be read, written or found."""

class Stopped(HalError):
    """The client's background work has stopped."""
