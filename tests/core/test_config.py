"""Configuration in one table (harness/config.py): one IBGW_ prefix, old
names accepted with a deprecation warning, the README's table generated
from it, and no variable read anywhere in harness/ that it does not list."""

from __future__ import annotations

import re

import pytest

from harness.core import config
from harness.targets.mock_target import _accounts_from_env
from tests.support import ROOT

# Quoted names that are not environment variables (an evidence category).
NOT_SETTINGS = {"HARNESS_ERROR"}


def test_every_setting_has_the_one_prefix_and_says_what_it_does() -> None:
    for setting in config.SETTINGS.values():
        assert setting.name.startswith(config.PREFIX) and setting.help and setting.used_by
    assert config.OLD_NAMES == {"HARNESS_REQUIRE_DOCKER": "IBGW_REQUIRE_DOCKER", "HARNESS_REQUIRE_BROWSER":
                                "IBGW_REQUIRE_BROWSER", "IBGW_MOCK_ACCOUNTS": "IBGW_ACCOUNTS"}


def test_the_readme_table_is_the_settings_table() -> None:
    assert config.markdown_table() in (ROOT / "README.md").read_text()


def test_no_variable_is_read_outside_the_table() -> None:
    names = set()
    for path in [*(ROOT / "harness").rglob("*.py"), *(ROOT / "suites").rglob("*.py")]:
        names |= set(re.findall(r"[\"']((?:IBGW|HARNESS)_[A-Z0-9_]+)[\"']", path.read_text()))
    unknown = names - set(config.SETTINGS) - set(config.OLD_NAMES) - NOT_SETTINGS
    assert not unknown, f"add these to harness/config.py SETTINGS: {sorted(unknown)}"


def test_an_old_name_still_works_and_warns(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("IBGW_ACCOUNTS", raising=False)
    monkeypatch.setenv("IBGW_MOCK_ACCOUNTS", " DU1111111,DU2222222 ")
    monkeypatch.setattr(config, "_warned", set())
    with pytest.warns(DeprecationWarning, match="IBGW_MOCK_ACCOUNTS is deprecated; set IBGW_ACCOUNTS"):
        assert _accounts_from_env() == ["DU1111111", "DU2222222"]
    monkeypatch.setenv("IBGW_ACCOUNTS", "DU3333333")  # the new name wins
    assert _accounts_from_env() == ["DU3333333"] and config.source("IBGW_ACCOUNTS") == "IBGW_ACCOUNTS"


def test_defaults_and_unknown_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("IBGW_REPLAY_SPEED", raising=False)
    assert config.env("IBGW_REPLAY_SPEED") == "1" and config.env("IBGW_REPLAY_SPEED", "") == ""
    monkeypatch.setenv("IBGW_REPLAY_SPEED", "   ")
    assert config.source("IBGW_REPLAY_SPEED") is None  # blank is unset
    with pytest.raises(config.UnknownSetting, match="not a harness setting"):
        config.env("IBGW_NO_SUCH_THING")
