"""The module's surface: every class, method and property has a docstring (help() shows
it), the type stub declares exactly what the module has, and the names Python sees are
the library's names. No server needed."""

from __future__ import annotations

import ast
import inspect

import hal_client
from conftest import WORKSPACE

STUB = WORKSPACE / "hal-client-py" / "hal_client.pyi"


def public(names: list[str]) -> set[str]:
    return {n for n in names if not n.startswith("_")}


def runtime_classes() -> dict[str, type]:
    return {n: c for n, c in vars(hal_client).items() if isinstance(c, type)}


def stub_tree() -> ast.Module:
    return ast.parse(STUB.read_text(), filename=str(STUB))


def test_every_class_method_and_property_has_a_docstring() -> None:
    assert (hal_client.__doc__ or "").startswith("The HAL license client")
    missing = []
    for name, cls in runtime_classes().items():
        if not (cls.__doc__ or "").strip():
            missing.append(name)
        for member, value in vars(cls).items():
            if member.startswith("_") and member not in ("__enter__", "__exit__"):
                continue
            if (
                inspect.isroutine(value)
                or isinstance(value, property)
                or inspect.isdatadescriptor(value)
            ):
                if not (getattr(value, "__doc__", None) or "").strip():
                    missing.append(f"{name}.{member}")
    assert missing == []


def test_the_stub_declares_exactly_what_the_module_has() -> None:
    tree = stub_tree()
    stub_names = set()
    stub_members: dict[str, set[str]] = {}
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            stub_names.add(node.name)
            stub_members[node.name] = public(
                [
                    n.name if isinstance(n, ast.FunctionDef) else ""
                    for n in node.body
                    if isinstance(n, ast.FunctionDef)
                ]
            )
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            stub_names.add(node.target.id)
    runtime_names = public(list(vars(hal_client))) - {"hal_client"}
    assert stub_names - {"__version__"} == runtime_names
    for name, cls in runtime_classes().items():
        own = public(list(vars(cls)))
        assert stub_members[name] == own, name


def test_the_denial_names_are_the_librarys() -> None:
    assert hal_client.DENIAL_REASONS == (
        "no_majority",
        "not_active",
        "all_in_use",
        "borrow_unavailable",
        "borrow_not_allowed",
        "unknown_feature",
        "unknown_handle",
        "license_expired",
        "hostid_mismatch",
        "invalid_request",
        "not_included",
        "excluded",
        "over_max",
        "reserved",
        "borrow_over_max",
    )
    for exception in (
        hal_client.Denied,
        hal_client.Unreachable,
        hal_client.NoAnswer,
        hal_client.ConfigError,
        hal_client.RecordError,
        hal_client.Stopped,
    ):
        assert issubclass(exception, hal_client.HalError)
        assert exception.__module__ == "hal_client"
    assert issubclass(hal_client.HalError, Exception)


def test_events_compare_by_value_and_match_by_field() -> None:
    event: hal_client.Event = hal_client.FailedOver(1, 2)
    assert event == hal_client.FailedOver(from_server=1, to_server=2)
    assert event != hal_client.FailedOver(2, 1)
    assert repr(event) == "FailedOver(from_server=1, to_server=2)"
    assert event.kind == "failed_over"
    match event:
        case hal_client.FailedOver(from_server, to_server):
            assert (from_server, to_server) == (1, 2)
        case _:
            raise AssertionError(f"{event!r} did not match FailedOver")
    assert hal_client.Settled("r3").released is None
    assert hal_client.Lost("h1", "cad").kind == "lost"
    removed: hal_client.Event = hal_client.Removed("h5", "cad")
    assert removed.kind == "removed"
    assert repr(removed) == 'Removed(handle="h5", feature="cad")'
    assert removed != hal_client.Lost("h5", "cad")
    match removed:
        case hal_client.Removed(handle, feature):
            assert (handle, feature) == ("h5", "cad")
        case _:
            raise AssertionError(f"{removed!r} did not match Removed")
    assert hal_client.Missed(4).missed == 4
    queued: hal_client.Event = hal_client.Queued("cad", 2, 5, 5)
    assert queued.kind == "queued"
    assert repr(queued) == 'Queued(feature="cad", position=2, used=5, count=5)'
    match queued:
        case hal_client.Queued(feature, position):
            assert (feature, position) == ("cad", 2)
        case _:
            raise AssertionError(f"{queued!r} did not match Queued")
    assert hal_client.BorrowEnded("h2") == hal_client.BorrowEnded("h2")
