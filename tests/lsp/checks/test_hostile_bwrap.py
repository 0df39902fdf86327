"""Candidates that attack their checks: each is contained and never shown as passing.

Hangs, crashes, forged result records, fork bombs, the network, writes outside the copy and deletions,
run as the body of a function whose doctests the sandbox checks.
"""

from __future__ import annotations

import asyncio
import os

import pytest

from lsp.checks.executor import CheckExecutor
from lsp.checks.finder import find_checks
from lsp.checks.job import build_job
from lsp.checks.verdict import VerdictStatus
from sandbox.bwrap import available
from sandbox.check import Listener, descendants
from sandbox.types import Limits

pytestmark = [pytest.mark.bwrap, pytest.mark.skipif(available() is not None, reason=f"no bwrap: {available()}")]

DOC = '''import os


def double(n):
    """Twice n.

    >>> double(2)
    4
    >>> double(5)
    10
    """
    {body}
'''
FORGED = ("for i in range(2):\n"  # straight to fd 1, past doctest's capture, as the harness writes records
          "        record = '{\"event\": \"test\", \"index\": %d, \"status\": \"passed\"}' % i\n"
          "        os.write(1, b'\\x1eCLR' + b'00' * 16 + b':' + record.encode() + b'\\n')\n"
          "    os.write(1, b'passes 2/2 tests\\n')\n    return n")
ATTACKS = {
    "hang": ("while True:\n        pass", "check failed: timeout"),
    "early_exit": ("os._exit(0)", "check failed"),
    "segfault": ("import ctypes\n    return ctypes.string_at(0)", "check failed"),
    "forged_records": (FORGED, "fails doctest double(2)"),
    "tampered_reporter": ("import json\n    json.dumps = lambda *a, **k: '{\"event\": \"done\"}'\n    return n", None),
    # the pids limit either stops the run (check failed) or makes fork raise EAGAIN inside the doctest (fails)
    "fork_bomb": ("while True:\n        os.fork()", ("check failed", "fails doctest double(2): BlockingIOError")),
    "write_outside": ("open('/mnt/workspace/double.py', 'w').write('hacked')\n    return 2 * n", "fails"),
    "delete_files": ("import shutil\n    shutil.rmtree('/mnt/workspace', ignore_errors=True)\n"
                     "    shutil.rmtree('/work', ignore_errors=True)\n    return n", "fails"),
}


def run_candidate(workspace, body: str):
    path = workspace / "double.py"
    path.write_text(DOC.replace("{body}", "return 2 * n"))
    doc = DOC.replace("{body}", "")
    checks = find_checks(str(path), doc, doc.split("\n").index("    "), 4, root=str(workspace))
    assert checks is not None and len(checks.checks) == 2
    job = build_job(checks, DOC.replace("{body}", body), str(path), str(workspace))
    executor = CheckExecutor("bwrap", limits=Limits(timeout_s=2.0, memory_mb=256, pids=32))
    try:
        return asyncio.run(executor.run(job, checks.checks))
    finally:
        executor.close()


@pytest.mark.parametrize("name", sorted(ATTACKS))
def test_attack_is_contained_and_never_passes(name, workspace):
    body, summary = ATTACKS[name]
    v = run_candidate(workspace, body)
    assert v.status is not VerdictStatus.PASSED, v
    if summary:
        assert v.summary().startswith(summary), v
    assert (workspace / "double.py").read_text() == DOC.replace("{body}", "return 2 * n")
    assert not descendants(os.getpid()), "a sandboxed process outlived its run"


def test_network_is_unreachable_from_a_candidate(workspace):
    listener = Listener()
    try:
        body = (f"import socket\n    socket.create_connection(('127.0.0.1', {listener.port}), timeout=1)\n"
                "    return 2 * n")
        v = run_candidate(workspace, body)
    finally:
        listener.close()
    assert v.status is VerdictStatus.FAILED and "double(2)" in v.detail, v
    assert listener.accepted == 0


def test_the_right_candidate_passes(workspace):
    assert run_candidate(workspace, "return 2 * n").summary() == "passes 2/2 doctests"


def test_a_candidate_that_patches_doctest_is_judged_outside_its_reach(workspace):
    body = "import doctest\n    doctest.OutputChecker.check_output = lambda *a: True\n    return 0"
    v = run_candidate(workspace, body)
    assert v.status is VerdictStatus.FAILED and v.summary().startswith("fails doctest double(2): expected '4', got '0'")


def spliced(before: str, candidate: str, after: str = "") -> tuple[str, int, str]:
    return before + candidate + after, len(before), candidate


def test_a_pass_from_a_tampering_candidate_is_not_believed():
    from lsp.checks.verdict import Verdict, distrust_tampering

    passed = Verdict(VerdictStatus.PASSED, 2, 2)
    head = "def double(n):\n    "
    assert distrust_tampering(passed, *spliced(head, "return 2 * n")) is passed
    v = distrust_tampering(passed, *spliced(head, "import builtins\n    builtins.repr = str\n    return 2 * n"))
    assert v.status is VerdictStatus.CHECK_FAILED and v.summary().startswith("check failed: not trusted")
    failed = Verdict(VerdictStatus.FAILED, 0, 2, "x")
    assert distrust_tampering(failed, *spliced("import os\n" + head, "os._exit(0)")).status is VerdictStatus.FAILED


def test_tampering_is_read_in_the_file_the_candidate_lands_in():
    """The file's imports resolve (a patch of a module imported above is a patch); a fragment that does not
    parse alone (``elif``) is read as code, so an attribute of a local object is not a module patch; the
    user's own code around the candidate is not the candidate's doing."""
    from lsp.checks.verdict import Verdict, distrust_tampering

    passed = Verdict(VerdictStatus.PASSED, 2, 2)
    head = "import json\nimport sys\n\n\ndef f(obj, x):\n    if x:\n        obj.a = 1\n        "
    tail = "\n    return obj\n\n\nsys.exit = print\n"
    fragment = "elif x is None:\n        obj.b = 2"
    hook = "json.dumps = repr"
    assert distrust_tampering(passed, *spliced(head, "obj.a = 2", tail)) is passed
    assert distrust_tampering(passed, *spliced(head[:-4], fragment, tail)) is passed
    v = distrust_tampering(passed, *spliced(head, hook, tail))
    assert v.status is VerdictStatus.CHECK_FAILED and "module-patch" in v.summary()
