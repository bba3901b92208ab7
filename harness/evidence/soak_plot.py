"""The soak's timeline plot, drawn from its JSON Lines file alone.

Why from the file: a soak that was killed, or one run on another machine,
must plot the same way as one that finished here; the file is the evidence
and the plot is only a view of it. Three panels share the time axis: ping
latency per client (p50 and p99 per interval) with missed pings; outages
(fault windows shaded, each client's connection and data outages as bars);
and this process's RSS with CLOSE_WAIT on the Gateway port.

    python -m harness.evidence.soak_plot reports/soak/<run>/soak.jsonl [out.png]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from ..core.errors import HarnessError
from ..extras import require


class NotASoakRecord(HarnessError, ValueError):
    """A file with no soak start line: plotting it would draw an empty timeline that looks like evidence."""


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Every complete JSON object line; a half-written last line (a killed run) is skipped."""
    records = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict):
            records.append(record)
    return records


def read_soak_records(path: Path) -> list[dict[str, Any]]:
    """The records of a soak's JSON Lines file, or NotASoakRecord. Every soak
    writes its start line first, so even a run killed a second in has one."""
    records = read_jsonl(path)
    if not any(r.get("type") == "start" and isinstance(r.get("config"), dict) for r in records):
        raise NotASoakRecord(f"not a soak record: {path} has no soak start line")
    return records


def _outages(records: list[dict[str, Any]]) -> dict[str, list[tuple[str, float, float | None]]]:
    """client -> [(kind, start, end)] rebuilt from the event lines."""
    open_: dict[tuple[str, str], float] = {}
    bars: dict[str, list[tuple[str, float, float | None]]] = {}
    for r in records:
        if r.get("type") != "event" or not r.get("client"):
            continue
        client, kind, t = r["client"], r["kind"], r["t"]
        if kind == "disconnected":
            open_[(client, "connection")] = t
        elif kind == "recovered" and (client, "connection") in open_:
            bars.setdefault(client, []).append(("connection", open_.pop((client, "connection")), t))
        elif kind == "data_lost":
            open_[(client, "data")] = t
        elif kind == "data_restored" and (client, "data") in open_:
            bars.setdefault(client, []).append(("data", open_.pop((client, "data")), t))
    for (client, kind), start in open_.items():
        bars.setdefault(client, []).append((kind, start, None))
    return bars


def plot_timeline(jsonl: Path, png: Path) -> Path:
    """Draw png from the soak JSON Lines file jsonl; NotASoakRecord (nothing written) for any other file."""
    records = read_soak_records(jsonl)  # before matplotlib: a wrong file costs nothing and writes nothing
    require("matplotlib", "the soak timeline plot")  # the [report] extra; MissingExtra is an ImportError
    import matplotlib

    matplotlib.use("Agg")  # files only; never a window
    import matplotlib.pyplot as plt

    intervals = [r for r in records if r.get("type") == "interval"]
    start = next((r for r in records if r.get("type") == "start"), {})
    summary = next((r for r in records if r.get("type") == "summary"), None)
    end_t = max([r.get("t", 0.0) for r in records] or [1.0])
    clients = list(start.get("config", {}).get("clients", [])) or sorted(
        {c for r in intervals for c in r.get("clients", {})})
    faults: dict[str, dict[str, Any]] = {}
    for r in records:
        if r.get("type") == "event" and r.get("kind") in ("fault_start", "fault_end"):
            key = f"{r['fault']}@{r['t'] if r['kind'] == 'fault_start' else ''}"
            if r["kind"] == "fault_start":
                faults[key] = {"kind": r["fault"], "start": r["t"], "end": None}
            else:
                for f in faults.values():
                    if f["kind"] == r["fault"] and f["end"] is None:
                        f["end"] = r["t"]

    fig, (ax_lat, ax_out, ax_res) = plt.subplots(3, 1, sharex=True, figsize=(12, 8),
                                                 gridspec_kw={"height_ratios": [3, 1.4, 2]})
    title = f"soak {start.get('target', {}).get('label', '')}: {end_t:.0f} s"
    if summary:
        title += f", {summary.get('outcome', '?').upper()}"
    else:
        title += " (no summary: the run was killed)"
    fig.suptitle(title)

    for f in faults.values():
        for ax in (ax_lat, ax_out, ax_res):
            ax.axvspan(f["start"], f["end"] if f["end"] is not None else end_t, color="tab:red", alpha=0.12)
        ax_out.text(f["start"], len(clients) + 0.15, f["kind"], fontsize=7, color="tab:red")

    for i, client in enumerate(clients):
        xs = [r["t"] for r in intervals if client in r.get("clients", {})]
        rows = [r["clients"][client] for r in intervals if client in r.get("clients", {})]
        color = f"C{i}"
        ax_lat.plot(xs, [row.get("p50_ms") for row in rows], color=color, label=f"{client} p50")
        ax_lat.plot(xs, [row.get("p99_ms") for row in rows], color=color, linestyle=":", label=f"{client} p99")
        missed = [(x, row["missed"]) for x, row in zip(xs, rows, strict=True) if row.get("missed")]
        if missed:
            ax_lat.scatter([x for x, _ in missed], [0] * len(missed), marker="v", color=color, s=12,
                           label=f"{client} missed pings")
        for kind, a, b in _outages(records).get(client, []):
            ax_out.barh(i, (b if b is not None else end_t) - a, left=a, height=0.6 if kind == "connection" else 0.3,
                        color=color, alpha=0.9 if kind == "connection" else 0.45)
            if b is not None:
                ax_out.text(b, i, f" {b - a:.1f}s", va="center", fontsize=7)
    ax_lat.set_ylabel("ping ms (per interval)")
    ax_lat.set_yscale("symlog", linthresh=1.0)
    # Legends sit outside the plotting area (right of it), so they never cover the data.
    ax_lat.legend(fontsize=7, ncol=1, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)
    ax_out.set_yticks(range(len(clients)), clients)
    ax_out.set_ylim(-0.6, len(clients) + 0.6)
    ax_out.set_ylabel("outages")

    xs = [r["t"] for r in intervals]
    ax_res.plot(xs, [r.get("rss_mb") for r in intervals], color="tab:purple", label="RSS MB")
    ax_res.set_ylabel("RSS MB")
    ax_cw = ax_res.twinx()
    ax_cw.step(xs, [r.get("close_wait") for r in intervals], color="tab:orange", where="post",
               label="CLOSE_WAIT")
    ax_cw.step(xs, [r.get("fds") for r in intervals], color="tab:gray", where="post", label="open fds")
    ax_cw.set_ylabel("count")
    lines = ax_res.get_legend_handles_labels()[0] + ax_cw.get_legend_handles_labels()[0]
    labels = ax_res.get_legend_handles_labels()[1] + ax_cw.get_legend_handles_labels()[1]
    ax_res.legend(lines, labels, fontsize=7, loc="upper left", bbox_to_anchor=(1.08, 1.0), borderaxespad=0.0)
    ax_res.set_xlabel("seconds since the soak started")
    fig.tight_layout()
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=110)
    plt.close(fig)
    return png


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args:
        print("usage: python -m harness.evidence.soak_plot SOAK.jsonl [OUT.png]", file=sys.stderr)
        return 2
    jsonl = Path(args[0])
    if not jsonl.is_file():
        print(f"no such file: {jsonl}", file=sys.stderr)
        return 2
    try:
        out = plot_timeline(jsonl, Path(args[1]) if len(args) > 1 else jsonl.with_name("timeline.png"))
    except NotASoakRecord as exc:
        print(exc, file=sys.stderr)
        print("hint: plot the soak.jsonl that `ibgw soak` writes in reports/soak/<UTC time>/", file=sys.stderr)
        return 2
    print(out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
