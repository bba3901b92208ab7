"""Named faults that reproduce failures real IB Gateway users have reported.

Each fault is a name, an optional value, a one-line description of the
real-world failure it stands for, and its source: the public report it
reproduces (repo#issue) or, plainly, "field reports only"
(harness/mock/sources.py; a test fails on a fault without one).
Faults combine, are set at start (`ibgw mock serve --fault NAME[=VALUE]`)
and change at run time (MockGateway.set_fault / the control endpoint).

Each fault is a class in one module of this package (base.py says what a
fault is; registry.py holds the registry and `FaultSet`, the one object the
mock asks). The families below are imported first, in the order faults are
listed and asked; any other module in this folder is found and imported
after them, so a new fault is one new module plus its test.
"""

from __future__ import annotations

import importlib
import pkgutil

from .base import UNTIL_RESTART, Fault, FaultError, FaultSpec
from .registry import FAULT_TYPES, SPECS, FaultSet, parse_fault, register, valid_faults_text

_FAMILIES = ("connection", "startup", "wedge", "schedule", "market")
_NOT_FAULTS = {"base", "registry"}

for _name in _FAMILIES:
    importlib.import_module(f"{__name__}.{_name}")
for _info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
    if _info.name not in _FAMILIES and _info.name not in _NOT_FAULTS and not _info.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_info.name}")

from .startup import END_KINDS  # noqa: E402
from .wedge import WEDGE_MODES  # noqa: E402

__all__ = ["END_KINDS", "FAULT_TYPES", "SPECS", "UNTIL_RESTART", "WEDGE_MODES", "Fault", "FaultError", "FaultSet",
           "FaultSpec", "parse_fault", "register", "valid_faults_text"]
