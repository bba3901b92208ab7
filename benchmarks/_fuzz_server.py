"""The mock Gateway under fuzz, in its own process (driven by fuzz_mock.py).

    python benchmarks/_fuzz_server.py [--coverage] [--max-clients N] [--idle-timeout S]

Why a separate process: "the server did not crash" and "its memory stayed
bounded" are then facts about a process (alive, its RSS), not about objects
that share an interpreter with the fuzzer; and coverage measures the mock's
code only. Prints `PORT <n>` once listening. Control over stdin, one JSON
line back per command:

* `stats`  -> accepted / closed-with-cause / open counts, causes by kind,
              internal errors (mock bugs), the largest live read and write
              buffers, RSS.
* `stop` or EOF -> stops the mock, answers a final `stats` with `coverage`
              (per file: statements, missed lines, percent) and exits.

Every connection's end is counted from the mock's own log line
(`conn N closed: CAUSE`, or the refusal lines, or, for routine closes beyond
the mock's line rate, the count in its `connections: ...` summary), so
"closed with a logged cause" is checked against what an operator would
actually see.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import re
import sys
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: make the repository importable
    sys.path.insert(0, str(ROOT))

COVERED = ["harness/mock/session.py", "harness/mock/gateway.py", "harness/mock/transcript.py",
           "harness/protocol/framing.py", "harness/protocol/handshake.py", "harness/protocol/messages.py",
           "harness/protocol/wire.py", "harness/protocol/protobuf.py", "harness/protocol/proto_bridge.py",
           "harness/protocol/orders.py"]
_DIGITS = re.compile(r"\d+")


def _start_coverage() -> Any:
    # Started before the harness is imported, so module-level lines count.
    import coverage

    cov = coverage.Coverage(data_file=None, include=[str(ROOT / p) for p in COVERED], config_file=False)
    cov.start()
    return cov


def cause_kind(cause: str) -> str:
    """'protocol error: frame length 123 exceeds ...' -> 'protocol error: frame length N exceeds ...'
    (numbers folded so the histogram groups by kind)."""
    return _DIGITS.sub("N", cause.split(" (")[0])[:90]


class CloseCounter(logging.Handler):
    """Counts the mock's per-connection end lines (what the log shows)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        # A count, not a set of ids: 100,000 ids would be the fuzz bookkeeping
        # growing the very RSS we measure. Each connection logs exactly one
        # of the lines matched below, so the count is the number closed.
        self.closed = 0
        self.causes: Counter[str] = Counter()
        self.internal: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        msg = record.msg if isinstance(record.msg, str) else ""
        args = record.args if isinstance(record.args, tuple) else ()
        if msg == "conn %d closed: %s" and len(args) == 2:
            _, cause = args
        elif msg in ("conn %d from %s refused: %s", "conn %d from %s: %s") and len(args) == 3:
            _, _, cause = args
        elif msg.startswith("connections: ") and len(args) >= 2:
            # Routine closes beyond the mock's line rate come as a count in
            # its summary (harness/mock/connlog.py): what an operator sees.
            closed = int(args[1])
            self.closed += closed
            self.causes["routine close (counted in the summary line)"] += closed
            return
        elif msg == "conn %d: internal error":
            if len(self.internal) < 20:
                self.internal.append(self.format(record)[-2000:])
            return
        else:
            return
        self.closed += 1
        self.causes[cause_kind(str(cause))] += 1


async def serve(args: argparse.Namespace, cov: Any) -> None:
    import psutil

    from harness.mock.gateway import MockGateway
    from harness.mock.session import Session

    counter = CloseCounter()
    logger = logging.getLogger("harness.mock")
    logger.setLevel(logging.INFO)
    logger.propagate = False  # 100,000 connections: count the lines, do not print them
    logger.addHandler(counter)
    # asyncio warns for each write to a socket the client already reset: expected here.
    logging.getLogger("asyncio").setLevel(logging.ERROR)

    class CountingGateway(MockGateway):
        accepted = 0

        def _admit(self, transport: asyncio.Transport, writer: asyncio.StreamWriter | None = None) -> Session | None:
            CountingGateway.accepted += 1  # every connection, served from callbacks or through the streams
            return super()._admit(transport, writer)

    gw = CountingGateway("127.0.0.1", 0, max_clients=args.max_clients, profile=args.profile,
                          idle_timeout=args.idle_timeout or None)
    proc = psutil.Process()

    def stats() -> dict[str, Any]:
        sessions: list[Session] = list(gw._sessions)
        return {
            "accepted": CountingGateway.accepted,
            "closed_logged": counter.closed,
            "open": gw.active_connections,
            "causes": dict(counter.causes.most_common()),
            "internal_errors": counter.internal,
            "max_read_buffer": max((s.frames.pending + (len(s.reader._buffer) if s.reader is not None else 0)
                                    for s in sessions), default=0),
            "max_write_buffer": max((s.transport.get_write_buffer_size() for s in sessions
                                     if not s.transport.is_closing()), default=0),
            "rss": proc.memory_info().rss,
        }

    await gw.start()
    sys.stdout.write(f"PORT {gw.port}\n")
    sys.stdout.flush()
    loop = asyncio.get_running_loop()
    stdin = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stdin), sys.stdin)
    while True:
        line = (await stdin.readline()).strip()
        if line == b"stats":
            print(json.dumps(stats()), flush=True)
        elif line in (b"stop", b""):
            break
    await gw.stop()
    final = stats()
    if cov is not None:
        cov.stop()
        final["coverage"] = {}
        for rel in COVERED:
            _, statements, _, missing, _ = cov.analysis2(str(ROOT / rel))
            done = len(statements) - len(missing)
            final["coverage"][rel] = {"statements": len(statements), "missed": missing,
                                      "percent": round(100.0 * done / len(statements), 1) if statements else 100.0}
    print(json.dumps(final), flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--coverage", action="store_true")
    parser.add_argument("--max-clients", type=int, default=512)
    parser.add_argument("--idle-timeout", type=float, default=0.0)
    parser.add_argument("--profile", default="default")
    args = parser.parse_args()
    cov = _start_coverage() if args.coverage else None
    try:
        asyncio.run(serve(args, cov))
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
