"""The decision on the HTML report's first screen: which Gateway build to
pin, why, the builds rejected with their reasons and links to the evidence,
and the fault x client table, above the Allure report.

Why injected into index.html: Allure 3's awesome report has no landing
section a plugin can fill (its options are sections, charts and groupBy),
and a report a team sends around must say the verdict before anyone
scrolls or clicks. The block is static HTML and CSS written into the
single file, so the report stays one file that opens offline. Links to a
test open it inside the report (`#<test id>`, ids from the report's own
test-results.json). Links to evidence open inside the report too: the
matrix cell's test page on its Attachments tab (`#<test id>/attachments`,
the awesome report's own route `/:testResultId/:tab?`), where the cell's
`<scenario>.evidence.json` is embedded. Never a file link: the single file
is sent around without reports/evidence/ beside it.

The same step sets a monospace font without ligatures for code and
attachments, so a transcript's `|-1|` never renders as a ligature glyph.
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

from .allure_io import read_results
from .text import shorten

MARKER = "ibgw-first-screen"
REASON_WIDTH = 110

MONO_CSS = """
pre, code, kbd, samp, [class*="code"], [class*="Code"], [class*="attachment"] pre {
  font-family: "DejaVu Sans Mono", "Liberation Mono", Menlo, Consolas, monospace !important;
  font-variant-ligatures: none !important; font-feature-settings: "liga" 0, "calt" 0, "clig" 0 !important;
}"""

CSS = """
#ibgw-first-screen { font: 13px/1.35 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1f2328;
  background: #fff; border-bottom: 1px solid #d0d7de; padding: 10px 16px; display: flex; gap: 24px;
  flex-wrap: wrap; justify-content: center; }
#ibgw-first-screen section { flex: 1 1 520px; max-width: 680px; min-width: 0; }
#ibgw-first-screen h2 { font-size: 17px; margin: 0 0 4px; }
#ibgw-first-screen h3 { font-size: 13px; margin: 8px 0 3px; text-transform: uppercase; letter-spacing: .03em;
  color: #57606a; }
#ibgw-first-screen .pin { color: #1a7f37; } #ibgw-first-screen .nopin { color: #cf222e; }
#ibgw-first-screen ul { margin: 0; padding-left: 18px; }
#ibgw-first-screen li { margin: 2px 0; }
#ibgw-first-screen details summary { cursor: pointer; }
#ibgw-first-screen details[open] summary { font-weight: 600; }
#ibgw-first-screen .full { white-space: pre-wrap; margin: 3px 0; }
#ibgw-first-screen .rej { color: #cf222e; font-weight: 600; }
#ibgw-first-screen a { color: #0969da; }
#ibgw-first-screen table { border-collapse: collapse; font-size: 12px; }
#ibgw-first-screen th, #ibgw-first-screen td { border: 1px solid #d0d7de; padding: 0 6px; text-align: left;
  white-space: nowrap; line-height: 1.3; }
#ibgw-first-screen td.other { white-space: normal; max-width: 240px; }
#ibgw-first-screen ul.cells { padding-left: 14px; list-style: disc; }
#ibgw-first-screen td.ok { background: #dafbe1; } #ibgw-first-screen td.bad { background: #ffebe9; }
#ibgw-first-screen td.na { color: #8c959f; }
#ibgw-first-screen .note { color: #57606a; font-size: 12px; }
"""


# A link from the first screen into the report: the report's own router
# opens the test page (`#<id>/attachments`) below this block; this scrolls
# there and opens the named attachment (its header's button, as a click
# would), so the evidence itself is what the reader sees. Bounded: it gives
# up after about 5 s of frames, leaving the page where the router put it.
LINK_JS = """
document.getElementById("ibgw-first-screen").addEventListener("click", (event) => {
  const link = event.target.closest("a[href^='#']");
  if (!link) return;
  const wanted = link.dataset.attachment;
  let frames = 300;
  const open = () => {
    const block = document.getElementById("ibgw-first-screen");
    const header = wanted && [...document.querySelectorAll('[data-testid="test-result-attachment-header"]')]
      .find((h) => h.innerText.trim().split("\\n").some((line) => line.trim() === wanted));
    if (header) {
      const arrow = header.querySelector("svg");
      if (!(arrow && String(arrow.getAttribute("class")).includes("--opened"))) header.querySelector("button")?.click();
      header.scrollIntoView({ block: "start" });
      return;
    }
    if (--frames > 0) { requestAnimationFrame(open); return; }
    window.scrollTo(0, block.offsetTop + block.offsetHeight);
  };
  window.scrollTo(0, document.getElementById("ibgw-first-screen").offsetHeight);
  requestAnimationFrame(open);
});
"""


def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _test_ids(output: Path) -> dict[str, str]:
    """Test name -> the report's id for it (the awesome report's test-results.json)."""
    try:
        data = json.loads((output / "test-results.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    by_id = data.get("byId", data) if isinstance(data, dict) else {}
    return {str(v.get("name")): str(k) for k, v in by_id.items() if isinstance(v, dict)}


def _regression_tests(results: Path) -> dict[str, list[str]]:
    """Gateway version -> names of the tests that caught its regression."""
    found: dict[str, list[str]] = {}
    for _path, data, labels in read_results(results):
        if labels.get("gateway_regression") and data.get("status") in ("failed", "broken"):
            found.setdefault(str(labels["gateway_regression"]), []).append(str(data.get("name")))
    return {v: sorted(names) for v, names in found.items()}


def _cell_attachments(results: Path) -> dict[tuple[str, str], tuple[str, list[str]]]:
    """(Gateway version, client) of each matrix cell -> its test name and the
    names of the attachments the report embeds for it."""
    found: dict[tuple[str, str], tuple[str, list[str]]] = {}
    for _path, data, labels in read_results(results):
        if labels.get("feature") != "version matrix" or not labels.get("gateway_version") or not labels.get("client"):
            continue
        names: list[str] = []
        pending = [data]
        while pending:  # attachments of the test and of its steps, at any depth
            item = pending.pop()
            names += [str(a.get("name")) for a in item.get("attachments") or []]
            pending += item.get("steps") or []
        found[(str(labels["gateway_version"]), str(labels["client"]))] = (str(data.get("name")), names)
    return found


def _evidence_links(pinning: dict[str, Any], version: str, results: Path,
                    ids: dict[str, str]) -> list[tuple[str, str, str | None]]:
    """(what, attachment name, in-report link) per failing cell of this
    build: the cell's test page on its Attachments tab, where the report
    embeds `<scenario>.evidence.json`; None when this report holds no such
    test (the evidence came from another run): then no link at all, since a
    file path would break once the report travels alone."""
    cells = _cell_attachments(results)
    links: list[tuple[str, str, str | None]] = []
    for cell in pinning.get("cells") or []:
        if cell.get("version") != version or cell.get("status") not in ("fail", "flaky"):
            continue
        client, scenario = str(cell.get("client")), str(cell.get("scenario"))
        test, attached = cells.get((version, client), ("", []))
        name = f"{scenario}.evidence.json"
        if cell.get("evidence"):  # one link per cell and scenario: the report embeds its runs in one file
            href = f"#{ids[test]}/attachments" if test in ids and name in attached else None
            links.append((f"{client} x {scenario}: {name}", name, href))
    return links


def _reason_lines(pinning: dict[str, Any], version: str) -> list[str]:
    """One line per failing cell of a rejected build (and its probe), in
    the words of the pinning report; each is shortened at a word boundary
    when shown, the whole reason being one click away."""
    lines = []
    info: dict[str, Any] = next((v for v in pinning.get("versions") or [] if v.get("version") == version), {})
    if info.get("probe") == "fail":
        lines.append(f"version probe: {info.get('probe_cause')}")
    for cell in pinning.get("cells") or []:
        if cell.get("version") == version and cell.get("status") in ("fail", "flaky"):
            cause = (cell.get("causes") or [""])[0]
            lines.append(f"{cell.get('client')} x {cell.get('scenario')} {cell.get('status')} "
                         f"{cell.get('passed')}/{cell.get('runs')}: {cause}")
    return lines


def _pinning_html(pinning: dict[str, Any], results: Path, output: Path) -> str:
    ids = _test_ids(output)
    tests = _regression_tests(results)
    status, version = pinning.get("status"), pinning.get("recommended")
    parts = ["<section>"]
    if status == "recommended":
        parts.append(f'<h2 class="pin" data-testid="ibgw-recommended">Pin Gateway {_e(version)}</h2>')
    else:
        parts.append(f'<h2 class="nopin" data-testid="ibgw-recommended">No build to pin: {_e(status)}</h2>')
    parts.append(f"<div>{_e(pinning.get('reason', ''))}</div>")
    rejected = pinning.get("rejected") or {}
    regressed = {v: why for v, why in rejected.items() if not str(why).startswith(("passed, but older", "incomplete"))}
    older = [v for v in rejected if v not in regressed]
    if regressed:
        parts.append("<h3>Rejected builds</h3><ul>")
        for v, why in regressed.items():
            links = [f'<a href="#{_e(ids[name])}">{_e(name)}</a>' for name in tests.get(v, []) if name in ids]
            files = [f'<a data-testid="ibgw-evidence" data-attachment="{_e(name)}" href="{_e(href)}">{_e(what)}</a>'
                     if href else f'{_e(what)} (not in this report)'
                     for what, name, href in _evidence_links(pinning, v, results, ids)]
            lines = "".join(f"<li>{_e(shorten(line, REASON_WIDTH))}</li>" for line in _reason_lines(pinning, v))
            more = f'<div class="full">{_e(why)}</div>'
            if links:
                more += "<div>tests in this report: " + ", ".join(links) + "</div>"
            if files:
                more += "<div>evidence (opens the cell's attachments): " + ", ".join(files) + "</div>"
            parts.append(f'<li data-testid="ibgw-rejected" data-version="{_e(v)}"><span class="rej">{_e(v)}</span>'
                         f'<ul class="cells">{lines}</ul><details><summary>full reason, tests and evidence'
                         f"</summary>{more}</details></li>")
        parts.append("</ul>")
    if older:
        parts.append(f'<div class="note">Passed but older (or incomplete): {_e(", ".join(older))}.</div>')
    too_old = pinning.get("too_old") or {}
    if too_old:
        parts.append('<div class="note">Too old for a client (not a regression): '
                     + _e("; ".join(f"{v}: {shorten(w, 80)}" for v, w in too_old.items())) + "</div>")
    parts.append('<div class="note">Red version groups below are these regressions; tests grouped under '
                 '"+ injected faults" are detector self-tests, not findings about a build.</div>')
    parts.append("</section>")
    return "".join(parts)


def _faults_html(rows: list[dict[str, Any]]) -> str:
    """Fault rows x the clients most faults ran through; the rarer client
    variants (a minimum version, a codec check) share one last column."""
    counts: dict[str, int] = {}
    for r in rows:
        counts[str(r.get("client"))] = counts.get(str(r.get("client")), 0) + 1
    clients = [c for c, n in counts.items() if n >= 3] or list(counts)
    faults = list(dict.fromkeys(str(r.get("fault")) for r in rows))
    cells: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in rows:
        client = str(r.get("client"))
        cells.setdefault((str(r.get("fault")), client if client in clients else "other"), []).append(r)
    others = any(key[1] == "other" for key in cells)
    out = ['<section><h3>Fault x client: did each detector see the injected fault?</h3>',
           '<table data-testid="ibgw-fault-table"><tr><th>fault</th>',
           *(f"<th>{_e(c)}</th>" for c in clients), "<th>other clients</th>" if others else "", "</tr>"]
    for fault in faults:
        out.append(f"<tr><td>{_e(fault)}</td>")
        for client in [*clients, *(["other"] if others else [])]:
            got = cells.get((fault, client))
            if not got:
                out.append('<td class="na">-</td>')
                continue
            ok = all(r.get("outcome") in ("passed", "xfailed") for r in got)
            title = "; ".join(f"{r.get('client')}: expected {r.get('expected')}; observed {r.get('observed')}"
                              for r in got)
            mark = "\u2713" if ok else "\u2717 " + "/".join(sorted({str(r.get("outcome")) for r in got}))
            if client == "other":
                mark = ", ".join(f"{r.get('client')} " + ("\u2713" if r.get("outcome") in ("passed", "xfailed")
                                                          else "\u2717") for r in got)
            css = ("ok" if ok else "bad") + (" other" if client == "other" else "")
            out.append(f'<td class="{css}" title="{_e(title)}">{_e(mark)}</td>')
        out.append("</tr>")
    out.append('</table><div class="note">\u2713: the scenario failed (or slowed) the way the fault should make '
               "it; hover a cell for what was observed.</div></section>")
    return "".join(out)


def first_screen_html(results: Path, output: Path, pinning: dict[str, Any] | None,
                      fault_rows: list[dict[str, Any]] | None) -> str:
    body = []
    if pinning is not None:
        body.append(_pinning_html(pinning, results, output))
    if fault_rows:
        body.append(_faults_html(fault_rows))
    block = f'<div id="{MARKER}" data-testid="{MARKER}">' + "".join(body) + "</div>" if body else ""
    script = f"<script>{LINK_JS}</script>" if body else ""
    return f"<style>{MONO_CSS}{CSS if body else ''}</style>{block}{script}"


def inject(index: Path, results: Path, pinning_file: Path | None, fault_matrix_file: Path | None) -> bool:
    """Write the block after <body> of the generated index.html; True if a
    decision or fault table was there to show (the font rule is always set)."""
    pinning = _read_json(pinning_file)
    rows = _read_json(fault_matrix_file)
    block = first_screen_html(results, index.parent, pinning if isinstance(pinning, dict) else None,
                              rows if isinstance(rows, list) else None)
    text = index.read_text(encoding="utf-8")
    if MARKER in text.split("<body", 1)[-1][:200]:
        return True  # already injected
    head, sep, rest = text.partition("<body>")
    if not sep:
        raise ValueError(f"{index}: no <body> element; the Allure template changed")
    index.write_text(head + sep + block + rest, encoding="utf-8")
    return bool(pinning) or bool(rows)


def _read_json(path: Path | None) -> Any:
    if path is None:
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


__all__ = ["first_screen_html", "inject"]
