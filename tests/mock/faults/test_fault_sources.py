"""Every fault the harness can play says what it rests on: a public report
(repo#issue) or, plainly, "field reports only". A fault added without a
source fails here, and `ibgw mock faults` / `ibgw mock profiles` show the
sources to the person choosing a fault."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from harness.cli.mock_serve import mock
from harness.mock.faults import SPECS, FaultSpec
from harness.mock.profiles import PROFILES
from harness.mock.sources import FIELD_REPORTS_ONLY, NO_GATEWAY_CLAIM, is_sourced, public_citations
from harness.proxy.faults import SPECS as PROXY_SPECS


@pytest.mark.parametrize("name", sorted(SPECS))
def test_every_mock_fault_has_a_source(name: str) -> None:
    assert is_sourced(SPECS[name].source), f"fault {name} has no source: cite repo#issue or say {FIELD_REPORTS_ONLY!r}"


@pytest.mark.parametrize("name", sorted(PROXY_SPECS))
def test_every_proxy_fault_has_a_source(name: str) -> None:
    assert is_sourced(PROXY_SPECS[name].source), name


def test_faults_without_public_reports_say_so() -> None:
    """No public report shows these: the listing must not dress them up."""
    for name in ("red-after-disconnect", "close-wait-leak", "delayed-accounts", "delayed-next-id"):
        assert SPECS[name].source == FIELD_REPORTS_ONLY, name
        assert public_citations(SPECS[name].source) == []


@pytest.mark.parametrize("name, cited", [
    ("client-id-stuck", "ib-api-reloaded/ib_async#152"),
    ("read-only-api", "bankroll-py/bankroll#65"),
    ("connectivity-loss", "IbcAlpha/IBC#251"),
    ("restart-at", "manhinhang/ib-gateway-docker PR #157"),
    ("silent-handshake", "ib-api-reloaded/ib_async#18"),
    ("close-after-accept", "gnzsnz/ib-gateway-docker#119"),
])
def test_public_faults_cite_their_report(name: str, cited: str) -> None:
    assert cited in public_citations(SPECS[name].source)


def test_profiles_with_a_regression_fixture_cite_a_public_report() -> None:
    fixtures = {name: p for name, p in PROFILES.items() if p.default_faults}
    assert fixtures, "no profile carries a regression fixture"
    for name, profile in fixtures.items():
        assert public_citations(profile.regression_source), f"profile {name}: {profile.regression_source!r}"


@pytest.mark.parametrize("text", ["", "   ", "ib_async", "see the issue", "a Gateway bug", "#336", "field reports"])
def test_a_missing_or_vague_source_is_rejected(text: str) -> None:
    assert not is_sourced(text)
    assert not is_sourced(FaultSpec("made-up", "", "a fault someone forgot to source", lambda v: True,
                                    source=text).source)


@pytest.mark.parametrize("text", ["gnzsnz/ib-gateway-docker#336", "manhinhang/ib-gateway-docker PR #157",
                                  FIELD_REPORTS_ONLY, f"{FIELD_REPORTS_ONLY}: note", NO_GATEWAY_CLAIM])
def test_a_citation_or_an_honest_label_is_accepted(text: str) -> None:
    assert is_sourced(text)


def test_mock_faults_lists_every_fault_with_its_source() -> None:
    result = CliRunner().invoke(mock, ["faults"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    for spec in SPECS.values():
        at = next(i for i, line in enumerate(lines) if line.startswith(spec.usage + " "))
        assert lines[at + 1].strip() == f"source: {spec.source}", spec.name
    assert result.output.count("source: ") == len(SPECS)


def test_mock_profiles_names_each_fixture_and_its_source() -> None:
    result = CliRunner().invoke(mock, ["profiles"])
    assert result.exit_code == 0, result.output
    for profile in PROFILES.values():
        if profile.default_faults:
            assert f"regression fixture: {' '.join(profile.default_faults)}; source: {profile.regression_source}" \
                in result.output


def test_the_default_profile_is_a_named_mock_build_without_a_fixture() -> None:
    """Healthy default runs must not carry the label of a build the pinning rejects (10.30.1 negotiates 187
    and carries a regression fixture; the default negotiates 178)."""
    default = PROFILES["default"]
    assert not default.default_faults and not default.regression_source
    assert default.build == f"mock-{default.max_server_version}"
    fixture_builds = {p.build for p in PROFILES.values() if p.default_faults}
    assert default.build not in fixture_builds


def test_a_build_label_means_one_server_version() -> None:
    seen: dict[str, int] = {}
    for profile in PROFILES.values():
        assert seen.setdefault(profile.build, profile.max_server_version) == profile.max_server_version, profile.build
