"""Bad paths and ignored options of `ibgw record`, `proxy`, `pin`, `diff`
and `mock serve`, each as a real subprocess.

What these tests establish: an output path that cannot be written is a
usage error (exit 2, the option named, a cause and a hint) found before the
command does its work: `record` before it listens (its capture lives in
memory, so a late failure would lose it), `proxy` before it binds (the
transcript used to be blamed on the port), `pin` before it prints a
decision. A write that still fails at the end of a recording keeps the
capture in a fallback file named on stderr. A busy port is named by its
option. Every --recording given to `pin` is read up front. A truncated
recording (a complete one has an end line; FORMAT.md) is refused by every
command that reads one. Options a replay would ignore are refused.
"""

from __future__ import annotations

import json
import re
import shutil
import signal
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.recording import load
from tests.evidence.test_pinning import full_grid
from tests.evidence.test_pinning import write as write_results
from tests.support.processes import CLI, MockServe, Spawned, cli_env, run_cli

HOST = "127.0.0.1"
BANNER_TIMEOUT = 15.0


def usage_error(proc: subprocess.CompletedProcess[str], option: str, *needles: str) -> str:
    """The one `Error:` line of an exit-2 usage error about `option`, with its hint."""
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    assert "Traceback" not in proc.stderr, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1, proc.stderr
    assert option in errors[0] and "hint: " in errors[0], errors[0]
    for needle in needles:
        assert needle in errors[0], (needle, errors[0])
    return errors[0]


@pytest.fixture
def afile(tmp_path: Path) -> Path:
    """A regular file where a directory is expected."""
    path = tmp_path / "afile"
    path.write_text("not a directory\n")
    return path


# ---------------------------------------------------------------- a recording made by the real CLI


class Recorder(Spawned):
    """`ibgw record` as a subprocess; its port read from the banner on stderr."""

    def __init__(self, upstream: int, out: Path, *, env: dict[str, str] | None = None) -> None:
        super().__init__([*CLI, "record", "--upstream", f"{HOST}:{upstream}", "--listen", f"{HOST}:0",
                          "--out", str(out), "--gateway-build", "10.30.1"],
                         env={**cli_env(), "PYTHONUNBUFFERED": "1", **(env or {})}, stream="stderr")
        try:
            banner = self.wait_for(r".*", timeout=BANNER_TIMEOUT).string  # the first line it prints
        except AssertionError:
            self.close()
            raise
        match = re.search(r"recording 127\.0\.0\.1:(\d+)", banner)
        if match is None:
            self.close()
            raise AssertionError(f"no banner: {banner}{self.rest()}")
        self.port = int(match.group(1))

    def stop(self, sig: int = signal.SIGINT, timeout: float = BANNER_TIMEOUT) -> tuple[int, str]:  # type: ignore[override]
        """(exit code, what it printed on stderr after the banner)."""
        return super().stop(sig, timeout), self.rest()

    def close(self) -> None:
        super().stop(signal.SIGKILL)


def probe_through(port: int) -> None:
    """One real client session through the recorder (`ibgw probe`)."""
    proc = run_cli("probe", "--port", str(port), "--json", "--timeout", "10")
    assert proc.returncode == 0, proc.stderr


@pytest.fixture(scope="module")
def upstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MockServe]:
    server = MockServe(tmp_path_factory.mktemp("mock") / "mock.err")
    yield server
    server.close()


@pytest.fixture(scope="module")
def recording(upstream: MockServe, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("rec") / "full.jsonl"
    recorder = Recorder(upstream.port, out)
    try:
        probe_through(recorder.port)
        code, err = recorder.stop()
    finally:
        recorder.close()
    assert code == 0, err
    return out


# ---------------------------------------------------------------- ibgw record --out


@pytest.mark.parametrize("where", ["under-a-file", "proc"])
def test_record_refuses_an_unwritable_out_before_listening(where: str, afile: Path) -> None:
    if where == "proc" and not Path("/proc").is_dir():
        pytest.skip("no /proc on this system")
    out = afile / "x.jsonl" if where == "under-a-file" else Path("/proc/ibgw-not-writable.jsonl")
    proc = run_cli("record", "--upstream", f"{HOST}:1", "--listen", f"{HOST}:0", "--out", str(out), timeout=20)
    line = usage_error(proc, "--out", f"cannot write {out}")
    if where == "under-a-file":
        assert f"{afile} is a file, not a directory" in line
    assert "recording 127.0.0.1" not in proc.stderr  # it never listened
    assert not out.exists()


def test_record_keeps_the_capture_when_out_fails_at_the_end(upstream: MockServe, tmp_path: Path) -> None:
    """--out was fine at start; its directory is replaced by a file while
    recording. The capture is written to a fallback file, named, exit 1."""
    directory, fallback_dir = tmp_path / "d", tmp_path / "fallback"
    directory.mkdir()
    fallback_dir.mkdir()
    recorder = Recorder(upstream.port, directory / "x.jsonl", env={"TMPDIR": str(fallback_dir)})
    try:
        probe_through(recorder.port)
        shutil.rmtree(directory)
        directory.write_text("a file where the directory was\n")
        code, err = recorder.stop(signal.SIGTERM)
    finally:
        recorder.close()
    assert code == 1, err
    assert "Traceback" not in err
    match = re.search(r"cannot write .*x\.jsonl: .*; the recording was written to (\S+) instead; hint: ", err)
    assert match, err
    saved = Path(match.group(1))
    assert saved.parent == fallback_dir
    rec = load(saved)
    assert rec.header.connections == 1 and rec.header.frames > 0
    assert f"-> {saved}" in err and err.endswith("\n")


# ---------------------------------------------------------------- ibgw proxy


def test_proxy_blames_an_unwritable_transcript_not_the_port(afile: Path) -> None:
    transcript = afile / "x.jsonl"
    proc = run_cli("proxy", "--listen", f"{HOST}:0", "--upstream", f"{HOST}:1", "--transcript", str(transcript),
                   timeout=20)
    line = usage_error(proc, "--transcript", f"{afile} is a file, not a directory")
    assert "cannot listen" not in proc.stderr and "port" not in line
    assert proc.stderr.endswith("\n")


@pytest.mark.parametrize("option", ["--control-port", "--listen"])
def test_proxy_names_the_busy_port_and_its_option(option: str) -> None:
    with socket.create_server((HOST, 0)) as busy:
        port = busy.getsockname()[1]
        args = ["--listen", f"{HOST}:{port}"] if option == "--listen" else ["--listen", f"{HOST}:0",
                                                                             "--control-port", str(port)]
        proc = run_cli("proxy", "--upstream", f"{HOST}:1", *args, timeout=20)
    assert proc.returncode == 1, proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and proc.stderr.endswith("\n"), proc.stderr
    assert lines[0].startswith(f"Error: cannot listen on {HOST}:{port} ({option}): "), lines[0]
    assert f"hint: is the port in use? choose another {option}" in lines[0]
    assert "Traceback" not in proc.stderr


# ---------------------------------------------------------------- ibgw pin


def test_pin_refuses_an_out_under_a_regular_file_before_deciding(tmp_path: Path, afile: Path) -> None:
    results = write_results(tmp_path, full_grid())
    proc = run_cli("pin", str(results), "--out", str(afile / "sub"))
    usage_error(proc, "--out", f"{afile} is a file, not a directory")
    assert "Overall" not in proc.stdout  # refused before the decision is printed


def test_pin_reads_every_recording_even_when_none_is_cited(tmp_path: Path) -> None:
    """10.30 is not the recommended version (10.45 is, with no recording):
    its file used to be read never, and a non-recording passed with exit 0."""
    results = write_results(tmp_path, full_grid())
    notrec = tmp_path / "notrec.jsonl"
    notrec.write_text(json.dumps({"hello": "world"}) + "\n")
    proc = run_cli("pin", str(results), "--out", str(tmp_path / "out"), "--recording", f"10.30={notrec}")
    usage_error(proc, "--recording", "not an ibgw-recording file")
    assert not (tmp_path / "out" / "pinning.json").exists()


def test_pin_refuses_a_truncated_recording(recording: Path, tmp_path: Path) -> None:
    results = write_results(tmp_path, full_grid())
    cut = truncate(recording, tmp_path / "cut.jsonl", keep=3)
    proc = run_cli("pin", str(results), "--out", str(tmp_path / "out"), "--recording", f"10.30={cut}")
    usage_error(proc, "--recording", "recording is truncated")


# ---------------------------------------------------------------- truncated recordings


def truncate(src: Path, dst: Path, *, keep: int) -> Path:
    """The first `keep` lines of a recording, as a cut-off copy leaves it."""
    dst.write_text("".join(src.read_text().splitlines(keepends=True)[:keep]))
    return dst


def as_version_1(src: Path, dst: Path) -> Path:
    """The same recording as the previous format wrote it: no end line."""
    lines = [json.loads(line) for line in src.read_text().splitlines()]
    assert lines[-1]["type"] == "end"
    lines[0]["version"] = 1
    dst.write_text("".join(json.dumps(line) + "\n" for line in lines[:-1]))
    return dst


def test_a_complete_recording_ends_with_its_end_line(recording: Path) -> None:
    lines = [json.loads(line) for line in recording.read_text().splitlines()]
    header, end = lines[0], lines[-1]
    frames = sum(1 for line in lines if line.get("type") == "frame")
    assert header["version"] == 2 and header["frames"] == frames > 3
    assert end == {"type": "end", "connections": 1, "frames": frames}


def test_diff_and_replay_refuse_a_truncated_recording(recording: Path, tmp_path: Path) -> None:
    cut = truncate(recording, tmp_path / "cut.jsonl", keep=3)
    declared = load(recording).header.frames
    kept = sum('"type": "frame"' in line for line in cut.read_text().splitlines())
    for proc in (run_cli("diff", str(recording), str(cut)), run_cli("mock", "serve", "--port", "0", "--replay", str(cut))):
        assert proc.returncode == 2, proc.stderr
        assert f"recording is truncated: header declares {declared} frames, file has {kept}" in proc.stderr, proc.stderr
        assert "hint: " in proc.stderr and "Traceback" not in proc.stderr
        assert "listening" not in proc.stdout and "added" not in proc.stdout


@pytest.mark.parametrize("cut", ["end-line-only", "mid-line"])
def test_any_cut_is_detected(recording: Path, tmp_path: Path, cut: str) -> None:
    text = recording.read_text()
    damaged = tmp_path / f"{cut}.jsonl"
    if cut == "end-line-only":
        damaged.write_text("".join(text.splitlines(keepends=True)[:-1]))
    else:
        damaged.write_text(text[:-7])  # the end line loses its tail: the file stops mid-line
    proc = run_cli("diff", str(recording), str(damaged))
    assert proc.returncode == 2 and "recording is truncated" in proc.stderr, proc.stderr


def test_version_1_recordings_still_load_and_their_truncation_is_detected(recording: Path, tmp_path: Path) -> None:
    old = as_version_1(recording, tmp_path / "v1.jsonl")
    same = run_cli("diff", str(recording), str(old))
    assert same.returncode == 0 and "no change on the wire" in same.stdout, same.stderr
    cut = truncate(old, tmp_path / "v1-cut.jsonl", keep=3)
    proc = run_cli("diff", str(old), str(cut))
    assert proc.returncode == 2 and "recording is truncated: header declares" in proc.stderr, proc.stderr


# ---------------------------------------------------------------- ibgw mock serve: options a replay ignores


def test_replay_speed_without_replay_is_refused() -> None:
    proc = run_cli("mock", "serve", "--port", "0", "--replay-speed", "2")
    usage_error(proc, "--replay-speed", "only applies with --replay")
    assert "listening" not in proc.stdout


@pytest.mark.parametrize("option", [["--profile", "10.19"], ["--accounts", "DU111"]])
def test_profile_and_accounts_are_refused_with_replay(recording: Path, option: list[str]) -> None:
    proc = run_cli("mock", "serve", "--port", "0", "--replay", str(recording), *option)
    usage_error(proc, option[0], "come from the recording")
    assert "listening" not in proc.stdout


def test_replay_with_its_own_options_still_serves(recording: Path, tmp_path: Path) -> None:
    """Only options given on the command line are refused: defaults never trip the check."""
    server = MockServe(tmp_path / "replay.err", "--replay", str(recording), "--replay-speed", "0")
    try:
        assert "profile replay" in server.listening_line
    finally:
        server.close()
