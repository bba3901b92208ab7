"""Issue 19: the harness's own tests start a child process one way,
tests/support/processes.py (run, arun, run_cli, Started, Spawned, MockServe).
A test file that calls the subprocess module or asyncio's child-process
functions itself fails here, with the file and line that does it.

Left alone, and listed by name: the Docker/sshd rigs (their children are
docker, openssl, ssh-keygen, sshd, a container's pytest victim) and the
child script that the interrupt tests run under a signal."""

from __future__ import annotations

import re
from pathlib import Path

from tests.support import ROOT

RUNNER = "tests/support/processes.py"
LEFT_ALONE = frozenset({
    "tests/support/engine_rig.py",
    "tests/targets/test_container_target.py",
    "tests/packaging/test_mock_service.py",
    "tests/mock/test_mock_image_entrypoints.py",
    "tests/watch/test_watch.py",
    "tests/interrupt_target/run_under_signal.py",
})
# a call, not a type annotation such as subprocess.Popen[str] or subprocess.CompletedProcess
OWN_CHILD = re.compile(r"\bsubprocess\.(?:Popen|run|call|check_output|check_call)\s*\("
                       r"|\bcreate_subprocess_(?:exec|shell)\s*\("
                       r"|^\s*from\s+subprocess\s+import\b.*\b(?:Popen|run|call|check_output|check_call)\b",
                       re.M)


def own_children(text: str) -> list[int]:
    """The line numbers in text that start a child without the runner."""
    return [text.count("\n", 0, match.start()) + 1 for match in OWN_CHILD.finditer(text)]


def _python_files() -> list[Path]:
    return sorted(p for top in ("tests", "suites") for p in (ROOT / top).rglob("*.py"))


def test_the_pattern_finds_each_way_of_starting_a_child() -> None:
    sp = "subprocess"  # spelled apart, so this file's own source is no offender
    sample = (f"a = {sp}.run(['x'])\nb = {sp}.Popen(cmd)\nc = {sp}.check_output(cmd)\n"
              f"d = {sp}.check_call(cmd)\ne = await asyncio.create_{sp}_exec('x')\n"
              f"f = await asyncio.create_{sp}_shell('x')\nfrom {sp} import Popen\n"
              f"g: {sp}.Popen[str]\nh: {sp}.CompletedProcess[str]\n")
    assert own_children(sample) == [1, 2, 3, 4, 5, 6, 7]


def test_only_the_runner_and_the_listed_rigs_start_children_themselves() -> None:
    files = _python_files()
    assert any(p.relative_to(ROOT).as_posix() == RUNNER for p in files)  # the walk does see the tests
    offenders = [f"{rel}:{line}" for path in files
                 if (rel := path.relative_to(ROOT).as_posix()) != RUNNER and rel not in LEFT_ALONE
                 for line in own_children(path.read_text())]
    assert offenders == [], (f"start a child through {RUNNER} (run, arun, run_cli, Started, Spawned), "
                             f"not by hand: {offenders}")


def test_the_left_alone_list_names_files_that_exist() -> None:
    missing = sorted(rel for rel in LEFT_ALONE if not (ROOT / rel).is_file())
    assert missing == [], f"moved or gone: update LEFT_ALONE: {missing}"
