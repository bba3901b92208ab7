"""Plots of a run's evidence: PNGs saved under reports/ and attached to allure.

Why pictures: the question behind a pinning decision is "is this Gateway
build (or this client) slower to become ready than that one?", and a strip
of every measured point per build and client answers it at a glance where
a table of medians hides the spread.

matplotlib is imported lazily with the non-interactive Agg backend, so this
module costs nothing until a plot is drawn and never needs a display.
"""

from __future__ import annotations

import json
import re
import sys
from collections import defaultdict
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from ..extras import require

# Handshake phases in order (harness.clients.base.PHASES).
PHASES = ("tcp_connect", "server_version", "next_valid_id", "managed_accounts", "first_account_value", "api_ready")
PHASE_PLOT = "handshake_phase_latency.png"


def phase_points(records: Iterable[Mapping[str, Any]]) -> dict[tuple[str, str], dict[str, list[float]]]:
    """(Gateway version, client) -> phase -> the ms values measured for it.

    Only passed runs without injected mock faults: a failed run's partial
    phases, or a delay a fault injected, would read as a slow Gateway.
    """
    points: dict[tuple[str, str], dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for record in records:
        if not isinstance(record, Mapping) or record.get("outcome") != "passed":  # e.g. fault_matrix.json
            continue
        if (record.get("parameters") or {}).get("mock_faults"):
            continue
        m = record.get("measurements") or {}
        key = (str((record.get("target") or {}).get("build", "unknown")),
               str((record.get("client") or {}).get("name", "?")))
        for phase in PHASES:
            value = m.get(f"{phase}_ms")
            if isinstance(value, (int, float)) and value > 0:
                points[key][phase].append(float(value))
    return {k: dict(v) for k, v in points.items() if v}


def plot_phase_latency(records: Iterable[Mapping[str, Any]], out: Path) -> Path | None:
    """A strip plot with a box per phase: one panel per Gateway version,
    one colour per client; the y axis is logarithmic because a healthy
    phase takes a millisecond and a slow one seconds. None if no passed run
    measured any phase."""
    points = phase_points(records)
    if not points:
        return None
    require("matplotlib", "plots")  # the [report] extra; MissingExtra is an ImportError
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    versions = sorted({v for v, _ in points}, key=_natural)
    clients = sorted({c for _, c in points})
    colours = plt.get_cmap("tab10")
    ncols = min(3, len(versions))
    nrows = -(-len(versions) // ncols)
    fig, grid = plt.subplots(nrows, ncols, figsize=(5.2 * ncols + 1.6, 4.0 * nrows + 0.8), squeeze=False,
                             sharey=True)
    axes = [list(grid.flat)]
    for spare in axes[0][len(versions):]:
        spare.set_visible(False)
    width = 0.8 / max(1, len(clients))
    for ax, version in zip(axes[0], versions):
        for ci, client in enumerate(clients):
            by_phase = points.get((version, client), {})
            for pi, phase in enumerate(PHASES):
                values = by_phase.get(phase)
                if not values:
                    continue
                x = pi - 0.4 + width * (ci + 0.5)
                ax.boxplot(values, positions=[x], widths=width * 0.8, showfliers=False,
                           medianprops={"color": colours(ci)}, boxprops={"color": colours(ci)},
                           whiskerprops={"color": colours(ci)}, capprops={"color": colours(ci)})
                # Deterministic spread across the box so overlapping points stay visible.
                xs = [x + width * 0.3 * ((i % 7) / 6 - 0.5) for i in range(len(values))]
                ax.scatter(xs, values, s=10, alpha=0.7, color=colours(ci),
                           label=client if pi == next(i for i, p in enumerate(PHASES) if by_phase.get(p)) else None)
        ax.set_yscale("log")
        ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
        ax.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.set_xticks(range(len(PHASES)), [p.replace("_", "\n") for p in PHASES], fontsize=8)
        ax.set_title(f"Gateway {version}")
        ax.grid(axis="y", which="both", alpha=0.3)
    for row in grid:
        row[0].set_ylabel("ms since the connect began (log)")
    handles, labels = axes[0][0].get_legend_handles_labels()
    for ax in axes[0][1:len(versions)]:
        h, lab = ax.get_legend_handles_labels()
        handles += [x for x, n in zip(h, lab) if n not in labels]
        labels += [n for n in lab if n not in labels]
    fig.legend(handles, labels, title="client", loc="center right")
    fig.suptitle("Handshake phase latency per Gateway version and client (passed runs, no injected faults)")
    fig.tight_layout(rect=(0, 0, 1 - 1.4 / (5.2 * ncols + 1.6), 1 - 0.5 / (4.0 * nrows + 0.8)))
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def _natural(version: str) -> list[Any]:
    """10.9 before 10.19 before 10.30.1; letters compare as text."""
    return [(0, int(part)) if part.isdigit() else (1, part) for part in re.split(r"(\d+)", version) if part]


def plot_run(records: list[Mapping[str, Any]], out_dir: Path) -> list[Path]:
    """Every plot this run's evidence supports, written into out_dir: the
    phase latency plot, and a soak timeline (latency, outages, reconnects;
    drawn by evidence.soak_plot from the soak's JSON Lines file) for each
    soak the run recorded."""
    made = [plot_phase_latency(records, out_dir / PHASE_PLOT)]
    for record in records:
        jsonl = ((record.get("details") or {}).get("jsonl") if isinstance(record, Mapping)
                 and record.get("scenario") == "soak" else None)
        if jsonl and Path(jsonl).is_file():
            from .soak_plot import plot_timeline

            made.append(plot_timeline(Path(jsonl), out_dir / f"soak_timeline_{Path(jsonl).parent.name}.png"))
    return [p for p in made if p is not None]


def load_tree(evidence_dir: Path) -> list[Mapping[str, Any]]:
    """Every evidence record under the directory, sub-directories included
    (the version matrix writes to evidence/matrix/); other JSON is skipped."""
    records = []
    for path in sorted(evidence_dir.rglob("*.json")):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(data, Mapping) and "scenario" in data:
            records.append(data)
    return records


def main(argv: list[str] | None = None) -> int:
    """python -m harness.evidence.plots [EVIDENCE_DIR [OUT_DIR]]"""
    args = argv if argv is not None else sys.argv[1:]
    evidence_dir = Path(args[0] if args else "reports/evidence")
    out_dir = Path(args[1] if len(args) > 1 else evidence_dir.parent / "plots")
    made = plot_run(load_tree(evidence_dir), out_dir)
    for path in made:
        print(path)
    if not made:
        print(f"no passed run with phase timings in {evidence_dir}: nothing to plot", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
