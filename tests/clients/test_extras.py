"""Optional packages and client version ranges (harness/extras.py): the
one-line error names the extra, the adapters' supported ranges cover the
field reports' versions, and the official client is found through whatever
distribution provides the `ibapi` module."""

from __future__ import annotations

import logging

import pytest

from harness.clients import available_clients, make_client
from harness.extras import (
    MissingExtra,
    providing_distribution,
    require,
    supported_note,
    version_tuple,
    warn_if_unsupported,
)


@pytest.mark.parametrize(("text", "expected"), [
    ("2.0.1", (2, 0, 1)), ("10.50.02", (10, 50, 2)), ("9.81.1.post1", (9, 81, 1)), ("10.37.2rc1", (10, 37, 2)),
    ("unknown", ()),
])
def test_version_tuple(text: str, expected: tuple[int, ...]) -> None:
    assert version_tuple(text) == expected


@pytest.mark.parametrize(("client", "version", "supported"), [
    ("ib_async", "2.0.1", True), ("ib_async", "2.1.0", True), ("ib_async", "1.0.3", False),
    ("ib_async", "3.0.0", False), ("ibapi", "9.81.1.post1", True), ("ibapi", "10.50.2", True),
    ("ibapi", "9.80", False), ("ibapi", "11.1", False), ("ibapi", "unknown", False),
])
def test_supported_ranges(client: str, version: str, supported: bool) -> None:
    note = supported_note(client, version)
    assert (note is None) == supported
    if note is not None:
        assert version in note and "\n" not in note


def test_an_unsupported_version_is_said_once(caplog: pytest.LogCaptureFixture) -> None:
    log = logging.getLogger("harness.test_extras")
    with caplog.at_level(logging.WARNING, logger="harness.test_extras"):
        for _ in range(3):
            warn_if_unsupported("ib_async", "1.9.9", log)
    assert [r.getMessage() for r in caplog.records if "1.9.9" in r.getMessage()] == [
        supported_note("ib_async", "1.9.9")]


def test_a_missing_package_is_one_line_naming_its_extra() -> None:
    with pytest.raises(MissingExtra) as exc:
        require("ibgw_no_such_module_for_test", "--client example")
    assert str(exc.value).startswith("--client example: needs the ibgw_no_such_module_for_test package")
    assert isinstance(exc.value, ImportError) and "\n" not in str(exc.value)
    for module, extra in (("docker", "docker"), ("matplotlib", "report"), ("ib_async", "ib_async")):
        error = MissingExtra(module)
        assert error.hint.startswith(f"pip install 'ibgw-harness[{extra}]'") and error.hint in str(error)
    assert "ibapi-stable, IBKR's wheel, your own copy" in MissingExtra("ibapi").hint


def test_ibapi_comes_from_whatever_distribution_provides_the_module() -> None:
    found = providing_distribution("ibapi")
    assert found is not None
    client = make_client("ibapi")
    assert (client.info.package, client.info.version) == found  # what evidence records
    assert providing_distribution("ibgw_no_such_module_for_test") is None


def test_all_means_the_clients_installed_here() -> None:
    assert available_clients()[0] == "raw"
    assert set(available_clients()) <= {"raw", "ib_async", "ibapi"}
