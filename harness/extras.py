"""Optional packages: which extra brings each, and the one-line error when one is missing.

Why: the base install (`pip install ibgw-harness`) gives the mock, codec,
raw client, probe, doctor, proxy, record/replay and the pytest plugin, and
pins or replaces no client library, so it installs beside a team's own
ib_async or ibapi. Everything else comes with an extra, and every import of
it is lazy: a missing package is a one-line cause naming the extra, never a
traceback at import time. Standard library only.
"""

from __future__ import annotations

import importlib.util
import logging
import re
from importlib import metadata

# import name -> (the extra that installs it, what it is for)
EXTRAS: dict[str, tuple[str, str]] = {
    "ib_async": ("ib_async", "the ib_async client"),
    "ibapi": ("ibapi", "the official ibapi client"),
    "docker": ("docker", "container targets (--gateway docker:IMAGE)"),
    "allure": ("report", "allure results"),
    "matplotlib": ("report", "plots"),
}
# The client versions the adapters are written against: [lowest, first unsupported).
SUPPORTED: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = {
    "ib_async": ((2, 0, 1), (3,)),
    "ibapi": ((9, 81), (11,)),  # IBKR's legacy 9.81 wheel up to the 10.x line (ibapi-stable)
}


class MissingExtra(ImportError):
    """An optional package is not installed. The message is one line with
    the cause and the hint; an ImportError, so callers that already treat
    a missing library as "not available here" keep doing so."""

    def __init__(self, module: str, needed_for: str | None = None) -> None:
        extra, what = EXTRAS.get(module, (module, module))
        self.hint = f"pip install 'ibgw-harness[{extra}]'"
        if module == "ibapi":
            self.hint += " (or any package that provides the ibapi module: ibapi-stable, IBKR's wheel, your own copy)"
        super().__init__(f"{needed_for or what}: needs the {module} package, which is not installed; hint: {self.hint}",
                         name=module)


def installed(module: str) -> bool:
    """Whether `import module` would find it (without importing it)."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def require(module: str, needed_for: str | None = None) -> None:
    """Raise MissingExtra unless `module` can be imported."""
    if not installed(module):
        raise MissingExtra(module, needed_for)


def providing_distribution(module: str) -> tuple[str, str] | None:
    """(distribution, version) of what installed the import package
    `module`: ibapi comes as ibapi-stable, as IBKR's `ibapi` wheel or under
    other names, and evidence must say which build ran. None for a copy no
    distribution claims (a team's vendored ibapi)."""
    for name in sorted(metadata.packages_distributions().get(module, [])):
        try:
            return name, metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return None


def version_tuple(text: str) -> tuple[int, ...]:
    """'10.50.02' -> (10, 50, 2); '9.81.1.post1' -> (9, 81, 1); unreadable -> ()."""
    parts = []
    for piece in text.split("."):
        match = re.match(r"\d+", piece)
        if match is None:
            break
        parts.append(int(match.group()))
    return tuple(parts)


def supported_note(client: str, version: str) -> str | None:
    """None when `version` is in the adapter's supported range, else one line saying so."""
    low, high = SUPPORTED[client]
    found = version_tuple(version)
    if found and low <= found < high:
        return None
    span = f"{'.'.join(map(str, low))} up to (not including) {'.'.join(map(str, high))}"
    return (f"{client} {version} is outside the versions this adapter is written for ({span}); "
            "results may differ from a supported version")


_warned: set[tuple[str, str]] = set()


def warn_if_unsupported(client: str, version: str, log: logging.Logger) -> None:
    """Log supported_note once per process and version: evidence still says the version it ran with."""
    note = supported_note(client, version)
    if note and (client, version) not in _warned:
        _warned.add((client, version))
        log.warning("%s", note)


__all__ = ["EXTRAS", "SUPPORTED", "MissingExtra", "installed", "providing_distribution", "require",
           "supported_note", "version_tuple", "warn_if_unsupported"]
