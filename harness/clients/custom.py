"""A team's own connection code as a client: ``--client module.path:factory``.

Why: the harness's scenarios prove a Gateway and the well-known libraries
work; what breaks in production is usually the code around them (an
isolated worker process, a reconnect wrapper). Loading that code through
the same ClientAdapter interface lets every suite, and `ibgw doctor
--client`, run against it unchanged.

The factory is any callable ``factory(**options) -> ClientAdapter`` (a class
works too). It is called once per connection the scenario needs, so it must
return a fresh adapter each time.
"""

from __future__ import annotations

import importlib
import os
import re
import sys
from collections.abc import Callable
from typing import Any

from ..core.errors import HarnessError
from .base import ClientAdapter

# module.path:attr (attr may be dotted: module:Class.factory)
SPEC_RE = re.compile(r"^[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*:[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*$")
_REQUIRED = ("connect", "ping", "account_snapshot", "disconnect")
SPEC_HINT = ("expected module.path:factory, e.g. examples.isolated_worker.adapter:factory; the module must be "
             "importable from the current directory or the installed packages")


class ClientSpecError(HarnessError, ValueError):
    """A --client module:factory that cannot be loaded; the message says why and what to do."""


def is_custom_spec(name: str) -> bool:
    return ":" in name


def load_factory(spec: str) -> Callable[..., Any]:
    """Import ``module.path:attr`` and return the callable; ClientSpecError otherwise."""
    if not SPEC_RE.match(spec):
        raise ClientSpecError(f"--client {spec!r} is not a module:factory reference; {SPEC_HINT}")
    module_name, _, attr_path = spec.partition(":")
    # `python -m pytest` puts the current directory on sys.path, a console
    # script (`ibgw doctor`) does not; a team's code lives in their checkout.
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.append(os.getcwd())
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise ClientSpecError(f"--client {spec!r}: cannot import {module_name!r} ({exc}); {SPEC_HINT}") from None
    for part in attr_path.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise ClientSpecError(f"--client {spec!r}: {module_name!r} has no attribute {attr_path!r}") from None
    if not callable(obj):
        raise ClientSpecError(f"--client {spec!r}: {attr_path!r} is not callable; it must return a ClientAdapter")
    return obj


def make_custom_client(spec: str, **options: object) -> ClientAdapter:
    """Call the factory and check the result follows the adapter interface."""
    client = load_factory(spec)(**options)
    missing = [name for name in _REQUIRED if not callable(getattr(client, name, None))]
    if missing or getattr(client, "info", None) is None:
        what = ", ".join(missing) if missing else "the info attribute (a ClientInfo)"
        raise ClientSpecError(f"--client {spec!r}: the factory returned {type(client).__name__}, which lacks {what}; "
                              "see harness/clients/base.py ClientAdapter")
    return client


def validate_spec(spec: str) -> None:
    """Fail early (at option parsing) with the cause, without making a client."""
    load_factory(spec)


__all__ = ["ClientSpecError", "is_custom_spec", "load_factory", "make_custom_client", "validate_spec"]
