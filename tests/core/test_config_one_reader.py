"""Configuration read in one module (harness/core/config.py): no other
module of harness/ reads the environment, every IBGW_ name the shell,
compose, CI and test files use is in the one table, CI sets no deprecated
name, and the mock's container entry points read the table too (they may
import only harness/core, which the images carry)."""

from __future__ import annotations

import re
import shutil
import sys
from pathlib import Path

import pytest

from harness import config as public_config
from harness.core import config
from tests.support import ROOT
from tests.support.processes import run

READER = ROOT / "harness" / "core" / "config.py"
# Quoted names that are not environment variables (an evidence category; test_config.py's unknown name).
NOT_SETTINGS = {"HARNESS_ERROR", "IBGW_NO_SUCH_THING"}
ENV_READ = re.compile(r"os\.environ|getenv")
# What may still touch os.environ outside the reader: giving a child process its
# environment (written, not read as a setting), and redaction's scan of every value.
ALLOWED = (re.compile(r"os\.environ\[[^\]]+\]\s*="), re.compile(r"\*\*os\.environ\b"), re.compile(r"dict\(os\.environ\b"))
SCANS_EVERY_VALUE = {ROOT / "harness" / "core" / "redact.py"}


def test_no_module_but_the_reader_reads_the_environment() -> None:
    stray = []
    for path in sorted((ROOT / "harness").rglob("*.py")):
        if path == READER or path in SCANS_EVERY_VALUE:
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if ENV_READ.search(line) and not any(allowed.search(line) for allowed in ALLOWED):
                stray.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not stray, "read these through harness.core.config (env / foreign_env):\n" + "\n".join(stray)


def _files_outside_the_package() -> list[Path]:
    files = [ROOT / "Makefile", ROOT / "conftest.py", *(ROOT / ".ci").iterdir()]
    for folder, pattern in (("gateway-docker", "*"), ("tests", "*.py"), ("benchmarks", "*.py"), ("examples", "*.py")):
        files += [p for p in (ROOT / folder).rglob(pattern) if p.is_file()]
    return files


def test_every_name_the_shell_compose_ci_and_tests_use_is_in_the_table() -> None:
    known = set(config.SETTINGS) | set(config.OLD_NAMES) | NOT_SETTINGS
    unknown = set()
    for path in _files_outside_the_package():
        try:
            text = path.read_text()
        except (UnicodeDecodeError, OSError):
            continue
        unknown |= {f"{path.relative_to(ROOT)}: {name}"
                    for name in re.findall(r"\b((?:IBGW|HARNESS)_[A-Z0-9_]*[A-Z0-9])\b", text) if name not in known}
    assert not unknown, f"add these to harness/core/config.py SETTINGS: {sorted(unknown)}"


def test_ci_and_make_set_no_deprecated_name() -> None:
    for path in (ROOT / ".ci" / "run", ROOT / "Makefile"):
        text = path.read_text()
        assert not [old for old in config.OLD_NAMES if old in text], path


def test_foreign_names_are_listed_and_blank_is_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    used = set()
    for path in (ROOT / "harness").rglob("*.py"):
        used |= set(re.findall(r"foreign_env\(\"([A-Z0-9_]+)\"", path.read_text()))
    assert used and used <= set(config.FOREIGN)
    monkeypatch.setenv("TRADING_MODE", "  ")
    assert config.foreign_env("TRADING_MODE", "paper") == "paper"
    monkeypatch.setenv("TRADING_MODE", " live ")
    assert config.foreign_env("TRADING_MODE", "paper") == "live"
    with pytest.raises(config.UnknownSetting, match="not listed in FOREIGN"):
        config.foreign_env("HOME")


def test_harness_config_is_the_same_table() -> None:
    assert public_config.SETTINGS is config.SETTINGS and public_config.env is config.env
    assert public_config.markdown_table() == config.markdown_table()


def test_the_mock_entry_points_read_the_table_with_only_core_protocol_and_mock(tmp_path: Path) -> None:
    """What the images carry (gateway-docker/mock/Dockerfile): the entry points
    parse their environment defaults, an old name included, with nothing else."""
    image = tmp_path / "opt"
    (image / "harness").mkdir(parents=True)
    (image / "harness" / "__init__.py").write_text((ROOT / "harness" / "__init__.py").read_text())
    for package in ("core", "protocol", "mock"):
        shutil.copytree(ROOT / "harness" / package, image / "harness" / package)
    probe = ("from harness.mock import healthcheck, serve, standin\n"
             "a = serve._parser().parse_args([])\n"
             "print(a.port, a.profile, a.strict, a.fault, a.accounts)\n")
    env = {"PYTHONPATH": str(image), "IBGW_MOCK_PORT": " 4711 ", "IBGW_PROFILE": "10.41", "IBGW_MOCK_STRICT": "1",
           "IBGW_FAULTS": "latency=5;max-clients=2", "IBGW_MOCK_ACCOUNTS": "DU1234567"}
    # -S: no site-packages, so only the standard library and the copied packages can be imported
    out = run([sys.executable, "-S", "-W", "default::DeprecationWarning", "-c", probe], env=env, timeout=60,
              cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == ["4711 10.41 True ['latency=5', 'max-clients=2'] DU1234567"]
    assert "IBGW_MOCK_ACCOUNTS is deprecated; set IBGW_ACCOUNTS" in out.stderr
