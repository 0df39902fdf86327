"""``codeloop tasks mine`` on the fixture repository (tests/evals/minirepo.py), its suite run in bubblewrap.

Slow (a dozen sandboxed pytest sessions) and needs the bwrap backend; the ``mined`` fixture (tests/conftest.py)
mines once per session.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from codeloop.cli import main
from evals.repo.check import check_completion
from evals.repo.miner import mine
from evals.repo.target import TargetError, resolve_target
from evals.repo.task import read_tasks
from sandbox.bwrap import available
from tests.evals.minirepo import FILES, make_minirepo

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(available() is not None, reason=f"bwrap backend unavailable: {available()}")]


def test_tasks_have_covering_tests_and_no_test_files(mined):
    target, options, report = mined
    assert report.reason == ""
    tasks = read_tasks(options.out)
    assert {t.kind for t in tasks} == {"body", "block", "line"}
    suite = {f"tests/{name}" for name in ("test_mathx.py", "test_textx.py")}
    for t in tasks:
        assert t.tests and all(x.split("::")[0] in suite for x in t.tests), t
        assert t.path in ("minipkg/mathx.py", "minipkg/textx.py")
        assert t.splice(t.middle) == (target.root / t.path).read_text()
    assert len({t.task_id for t in tasks}) == len(tasks)
    clamp = [t for t in tasks if t.function == "clamp"]
    assert clamp and all(t.tests == ("tests/test_mathx.py::test_clamp",) for t in clamp)


def test_split_by_file_without_leakage(mined):
    _, options, report = mined
    tasks = read_tasks(options.out)
    split_of = {}
    for t in tasks:
        assert split_of.setdefault(t.path, t.split) == t.split, f"{t.path} is in both splits"
    assert set(split_of.values()) == {"train", "heldout"}
    assert sum(n for kinds in report.tasks.values() for n in kinds.values()) == len(tasks)


def test_every_bad_input_has_a_one_line_reason(mined):
    _, _, report = mined
    assert "ModuleNotFoundError" in report.collect_errors["tests/test_broken.py"]
    assert report.failing_tests["tests/test_net.py::test_fetch"].startswith("needs the network")
    assert report.files["minipkg/broken.py"].startswith("syntax error")
    assert report.files["minipkg/untested.py"] == "no test executes it"
    assert report.files["minipkg/_vendor/six_like.py"] == "vendored"
    assert report.files["minipkg/schema_pb2.py"].startswith("generated")
    assert report.files["tests/test_mathx.py"] == "test file"
    for reason in report.files.values():
        assert "\n" not in reason


def test_order_dependent_gold_is_dropped(mined):
    _, options, report = mined
    triple = [tid for tid in report.dropped if ":minipkg/mathx.py:" in tid]
    assert triple and all("test_needs_ready" in report.dropped[t] for t in triple)
    assert not any(t.function == "triple" for t in read_tasks(options.out))


def test_check_fails_a_wrong_completion(mined):
    target, options, _ = mined
    task = next(t for t in read_tasks(options.out) if t.function == "clamp" and t.kind == "body")
    assert check_completion(target.env, task, task.middle).passed
    wrong = check_completion(target.env, task, "return value")
    assert wrong.status == "failed" and wrong.num_passed == 0 and "test_clamp" in wrong.message
    assert check_completion(target.env, task, "return (").status == "syntax_error"


def test_second_mine_uses_the_cached_coverage_and_gold(mined):
    target, options, first = mined
    again = mine(target, options)
    assert again.coverage_cached and again.tasks == first.tasks and again.dropped == first.dropped
    assert again.seconds["gold"] < 2.0


def test_cli_reports_a_repository_without_tests(tmp_path, capsys):
    root = make_minirepo(tmp_path / "notests", {k: v for k, v in FILES.items() if not k.startswith("tests/")})
    assert main(["tasks", "mine", str(root), "--out", str(tmp_path / "t.jsonl")]) == 1
    assert "no tests collected" in capsys.readouterr().out
    report = json.loads(Path(f"{tmp_path / 't.jsonl'}.report.json").read_text())
    assert report["reason"].startswith("the test suite did not run: no tests collected")


def test_unknown_target_is_a_one_line_error(tmp_path):
    with pytest.raises(TargetError, match="neither a folder nor a SWE-bench instance"):
        resolve_target("no-such-instance", swebench_dir=Path(__file__).parent / "data_missing")
