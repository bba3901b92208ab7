"""The table of causes: every row names its public source (or says it has none)."""

from __future__ import annotations

import pytest

from harness.scenarios.causes import CAUSES, FIELD_REPORTS_ONLY, Cause, cause, cause_for_text


@pytest.mark.parametrize("row", list(CAUSES.values()), ids=list(CAUSES))
def test_every_cause_names_its_source(row: Cause) -> None:
    assert row.source.strip(), f"cause {row.key!r} has no source"
    # A public report (repo#issue), a public document, or the plain admission.
    assert ("#" in row.source or FIELD_REPORTS_ONLY in row.source or "RFC" in row.source
            or "documentation" in row.source or "behaviour" in row.source or "safety check" in row.source
            or ".py" in row.source), row.source
    assert row.title and row.meaning and row.fix


def test_keys_match_and_titles_are_unique() -> None:
    assert all(key == row.key for key, row in CAUSES.items())
    titles = [row.title for row in CAUSES.values()]
    assert len(titles) == len(set(titles))


def test_cause_for_text_finds_a_row_from_a_diagnosis_line() -> None:
    row = cause("sync")
    assert cause_for_text(f"{row.title}: positions never ended") is row
    assert cause_for_text(row.title) is row
    assert cause_for_text("something no table row says") is None
    with pytest.raises(KeyError, match="valid"):
        cause("nope")


def test_every_gateway_category_groups_sourced_causes() -> None:
    """The report's categories point at rows of the same table, so a
    category's causes carry the same public sources doctor prints."""
    from harness.core import categories as c

    gateway_categories = set(c.CATEGORY_TEXT) - {c.HARNESS_ERROR, c.RUN_CONFIGURATION}
    assert gateway_categories <= set(c.CATEGORY_CAUSES)
    for keys in c.CATEGORY_CAUSES.values():
        assert keys and all(CAUSES[key].source for key in keys)


def test_too_old_category_reads_the_shared_version_wording() -> None:
    from harness.clients.raw import version_out_of_range
    from harness.core import categories as c

    record = {"outcome": "failed", "failed_phase": "server_version", "client": {"name": "raw", "min_version": 157},
              "cause": version_out_of_range(150, 157, 178, "this client")}
    assert c.categorize(record) == c.BUILD_TOO_OLD
