"""``codeloop tasks mine --acceptance-log``: the editor's accepted suggestions in the fixture repository
(tests/evals/minirepo.py) join the mined tasks after the same gold check, split by the same file rule.

Slow and needs the bwrap backend; mines again on the session's ``mined`` fixture (coverage map and the mined
tasks' gold checks cached), so only the accepted suggestions' gold checks run here.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from evals.repo.miner import mine
from evals.repo.task import FimTask, read_tasks
from lsp.acceptance_log import AcceptanceEvent, AcceptanceLog
from sandbox.bwrap import available
from tests.evals.minirepo import accepted_event as accepted

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(available() is not None, reason=f"bwrap backend unavailable: {available()}")]
CLAMP_IFS = "if value < low:\n        return low\n    if value > high:\n        return high\n"
PRIME_HEAD = ("if n < 2:\n        return False\n    for d in range(2, int(n ** 0.5) + 1):\n"
              "        if n % d == 0:\n            return False\n")
INITIALS_HEAD = "parts = [p for p in name.split() if p]\n    letters = [p[0].upper() for p in parts]\n"


def events(root: Path, mined: FimTask) -> list[AcceptanceEvent]:
    """One accepted suggestion of each fate (``mined``: a multi-line mined task, suggested again)."""
    math, text = "minipkg/mathx.py", "minipkg/textx.py"
    return [
        accepted(root, math, CLAMP_IFS, CLAMP_IFS.replace("    if value > high", "    elif value > high"), "clamp"),
        accepted(root, math, PRIME_HEAD, PRIME_HEAD.replace("n < 2", "n < 1"), "wrong-prime"),
        accepted(root, text, INITIALS_HEAD, "words = name.split()\n    parts = [p for p in words if p]\n"
                 "    firsts = [p[0] for p in parts]\n    letters = [c.upper() for c in firsts]\n", "initials-heldout"),
        accepted(root, "minipkg/untested.py", "y = x + 1\n    return y\n", "y = 1 + x\n    return y\n", "untested"),
        accepted(root, math, "result = x * 3", "result = 3 * x", "single-line"),
        AcceptanceEvent("inline", True, CLAMP_IFS, prefix="def f(value, low, high):\n    ", path="/elsewhere/x.py",
                        event_id="outside"),
        AcceptanceEvent("inline", True, mined.middle, prefix=mined.prefix, suffix=mined.suffix,
                        path=str(root / mined.path), event_id="duplicate"),
        accepted(root, math, CLAMP_IFS, "pass\n    pass\n", "never-accepted", accepted=False),
    ]


@pytest.fixture(scope="module")
def with_accepted(mined, tmp_path_factory):
    target, options, _ = mined
    base = tmp_path_factory.mktemp("accepted")
    block = next(t for t in read_tasks(options.out, "train") if "\n" in t.middle.strip("\n"))
    log = AcceptanceLog(base / "acceptance.jsonl")
    for e in events(target.root, block):
        log.record(e)
    opts = replace(options, out=base / "tasks.jsonl", acceptance_log=log.path)
    return opts, mine(target, opts), block


def test_an_accepted_suggestion_in_a_tested_function_becomes_a_train_task(with_accepted, mined):
    options, report, _ = with_accepted
    tasks = {t.extra.get("acceptance_event"): t for t in read_tasks(options.out) if t.extra.get("acceptance_event")}
    clamp = tasks["clamp"]
    assert clamp.split == "train" and clamp.kind == "block" and clamp.function == "clamp"
    assert clamp.tests == ("tests/test_mathx.py::test_clamp",) and clamp.middle.count("elif") == 1
    assert report.accepted["clamp"] == f"task {clamp.task_id} (train)"
    mined_ids = {t.task_id for t in read_tasks(mined[1].out)}
    assert mined_ids <= {t.task_id for t in read_tasks(options.out)}  # the mined tasks are all still there


def test_a_held_out_file_s_suggestion_stays_held_out(with_accepted):
    options, report, _ = with_accepted
    held = next(t for t in read_tasks(options.out, "heldout") if t.extra.get("acceptance_event") == "initials-heldout")
    assert held.path == "minipkg/textx.py" and held.tests == ("tests/test_textx.py::test_initials",)
    assert not any(t.path == "minipkg/textx.py" for t in read_tasks(options.out, "train"))
    assert report.accepted["initials-heldout"] == f"task {held.task_id} (heldout)"


def test_every_accepted_suggestion_without_a_task_has_its_reason(with_accepted):
    options, report, block = with_accepted
    why = report.accepted
    assert why["wrong-prime"].startswith("dropped: gold fails its tests (failed)") and "test_is_prime" in why["wrong-prime"]
    assert not any(t.function == "is_prime" and t.extra for t in read_tasks(options.out))
    assert why["untested"] == "no passing test runs minipkg/untested.py::lonely"
    assert why["single-line"] == "single-line suggestion"
    assert why["outside"].startswith("outside the repository")
    assert why["duplicate"] == f"the same lines as task {block.task_id}"
    assert "never-accepted" not in why and len(why) == 7
    assert all("\n" not in reason for reason in why.values())
