"""The doctor package keeps the shape issue 19 asked for.

Why a test: `scenarios/doctor.py` grew to 1039 lines one rung at a time; a size bound per module
and the re-exported names importers rely on keep the split from drifting back (import-linter's
acyclic contract covers the import direction between the modules).
"""

from __future__ import annotations

import importlib
from pathlib import Path

import harness.scenarios.doctor as doctor

PACKAGE = Path(doctor.__file__).parent
MAX_LINES = 300  # "each module under ~300 lines" (issue 19)

# Every name imported from harness.scenarios.doctor by harness/, tests/ and suites/ today, with
# the module that now defines it.
REEXPORTED = {
    "ladder": ["run_doctor", "DoctorResult"],
    "host": ["HostProblem", "diagnose_host", "host_port_in_host", "RESOLVE_TIMEOUT_S"],
    "sockets": ["SocketSurvey", "survey_sockets"],
    "diagnosis": ["silent_family"],
    "rungs": ["installed_client_floors"],
    "vocabulary": ["Rung", "RUNGS", "OK", "FAIL", "WARN", "SKIP", "CLOSE_WAIT_THRESHOLD", "FIX_SILENT",
                   "RUNG_PORT", "RUNG_VERSION", "RUNG_NEXT_ID", "RUNG_ACCOUNTS", "RUNG_SYNC", "RUNG_CLIENT_ID",
                   "RUNG_CLOSE_WAIT", "RUNG_ACCOUNT_KIND", "CAUSE_DOWN", "CAUSE_FORWARDER", "CAUSE_NOT_LOGGED_IN",
                   "CAUSE_RED", "CAUSE_ZOMBIE", "CAUSE_WEDGE", "CAUSE_ZOMBIES_PRESENT", "CAUSE_SYNC", "CAUSE_LIVE",
                   "CAUSE_API_NOT_READY", "CAUSE_ID_STUCK", "CAUSE_VERSION_RANGE", "CAUSE_CLOSED_AFTER_START"],
}


def test_no_doctor_module_is_long() -> None:
    sizes = {path.name: len(path.read_text().splitlines()) for path in PACKAGE.glob("*.py")}
    assert len(sizes) > 5, sizes  # really a package, not one module
    assert not (PACKAGE.parent / "doctor.py").exists()
    assert all(lines <= MAX_LINES for lines in sizes.values()), sizes


def test_importers_names_are_the_defining_modules_objects() -> None:
    for module_name, names in REEXPORTED.items():
        module = importlib.import_module(f"harness.scenarios.doctor.{module_name}")
        for name in names:
            assert getattr(doctor, name) is getattr(module, name), f"{module_name}.{name}"
    assert set(doctor.__all__) <= set(vars(doctor)), set(doctor.__all__) - set(vars(doctor))
