"""Repository RL (task source ``repo``, ``codeloop loop --repo``) on the fixture repository and the tiny model:
the prompts are eval fim's, the reward is the fraction of covering tests passing in the real sandbox, and a
two-step loop runs mine → eval → train → eval → promote → report and resumes after an interruption.

Slow and needs the bwrap backend (the tasks come from the session's ``mined`` fixture, tests/conftest.py).
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from evals.repo.task import read_tasks
from rl.config import config_from_dict
from sandbox.bwrap import available

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(available() is not None, reason=f"bwrap backend unavailable: {available()}")]
SETTINGS = {"maxTokens": 6, "maxTokensMultiline": 12, "contextBudgetChars": 1200, "snippetBudgetChars": 300}


def repo_config(model_dir: Path, run_dir: Path, tasks_file: Path, **train):
    return config_from_dict({
        "model": str(model_dir), "run_dir": str(run_dir), "seed": 3, "engine_dtype": "float32",
        "max_model_len": 512, "kv_cache_mb": 8, "lora": {"r": 4, "alpha": 8},
        "tasks": {"sources": ["repo"], "repo_tasks": str(tasks_file), "repo_settings": SETTINGS, "limit": 4},
        "rollout": {"group_size": 2, "prompts_per_step": 2, "temperature": 1.0, "sandbox": "bwrap"},
        "train": {"dtype": "float32", "num_threads": 1, "lr": 1e-2, "micro_batch": 2, **train},
        "eval": {"fim_limit": 3},
    })


def _lines(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


def test_repo_source_prompts_are_the_ones_eval_fim_sends(mined, tmp_path, tiny_qwen2_dir):
    from evals.repo.completions import EngineChoice
    from evals.repo.fim import FimEvalSpec, evaluate_fim
    from inference.async_engine import AsyncEngine
    from lsp.inprocess_client import InProcessClient
    from rl.repo_source import RepoSource
    from rl.training_phase import make_engine

    _, options, _ = mined
    config = repo_config(tiny_qwen2_dir, tmp_path / "run", options.out)
    engine = make_engine(config)
    sent: list[str] = []

    class Recording(InProcessClient):
        def stream(self, gen):
            sent.append(gen.prompt)
            return super().stream(gen)

    spec = FimEvalSpec(options.out, EngineChoice(model=config.model), tmp_path / "fim", split=None, limit=6,
                       settings=SETTINGS, checks=False, concurrency=1)
    evaluate_fim(spec, Recording(config.model, engine=AsyncEngine(engine)))
    tasks = {t.task_id: t for t in read_tasks(options.out)}
    made = _lines(spec.run_dir / "generations.jsonl")
    assert {tasks[g["task_id"]].kind for g in made} >= {"line", "block"}  # both editor modes are compared
    source = RepoSource(config)
    prompts = {g["task_id"]: source.context(tasks[g["task_id"]], engine).prompt for g in made}
    assert sorted(sent) == sorted(prompts.values()) and len(sent) == len(made)
    assert all(len(prompts[g["task_id"]]) == g["prompt_chars"] for g in made)
    # and the rollouts sample from exactly those prompts
    picked = [tasks[made[0]["task_id"]], tasks[made[1]["task_id"]]]
    batch = source.collect(engine, picked, config.rollout, None, seed=1)  # type: ignore[arg-type]
    for r in batch.rollouts:
        # the editor heals (spm): the engine continues the prompt without its last token, written again first
        sent = engine.tokenizer.encode(prompts[r.task_id])
        assert source.settings.heals and r.prompt_token_ids == sent[:-1]
        assert engine.tokenizer.decode(r.prompt_token_ids + r.completion_token_ids).startswith(
            engine.tokenizer.decode(sent))
        assert r.status in ("passed", "failed", "syntax_error", "broken") and not r.skipped
        assert len(r.completion_token_ids) <= SETTINGS["maxTokensMultiline"]
    # greedy: every rollout is the suggestion the editor showed for its task
    sampled = source.params
    source.params = lambda ctx, settings, seed: replace(sampled(ctx, settings, seed), temperature=0.0)
    greedy = source.collect(engine, picked, config.rollout, None, seed=1)
    shown = {g["task_id"]: g["completion"] for g in made}
    assert len(greedy.rollouts) == 4 and all(r.completion == shown[r.task_id] for r in greedy.rollouts)
    # GRPO and RFT both train on these groups (one sample swapped for the gold span, which passes its tests)
    from inference.catalog import resolve_model_path
    from rl.trainer import Trainer

    groups = batch.groups(config.rollout.group_size)
    gold = picked[0]
    groups = [[replace(g[0], completion_token_ids=engine.tokenizer.encode(gold.middle), completion=gold.middle,
                       code=gold.middle, status="passed", reward=1.01, fraction_passed=1.0), *g[1:]]
              if g[0].task_id == gold.task_id else g for g in groups]
    for algo in ("grpo", "rft"):
        data = config.as_dict()
        data["train"]["algo"] = algo
        metrics = Trainer(config_from_dict(data), resolve_model_path(config.model)).step(groups)
        assert metrics["skipped_update"] == 0.0 and metrics["num_train_samples"] >= 1, (algo, metrics)


def test_reward_is_the_fraction_of_covering_tests_passing(mined, tmp_path, tiny_qwen2_dir):
    from rl.repo_source import RepoSource, repo_reward

    _, options, _ = mined
    config = repo_config(tiny_qwen2_dir, tmp_path / "run", options.out)
    source = RepoSource(config)
    task = next(t for t in read_tasks(options.out) if t.function == "clamp" and t.kind == "body")
    wrong, broken = "return value", "return ("
    records = source.check_all([(task, task.middle), (task, wrong), (task, broken), (task, task.middle)])
    assert len(records) == 3  # one check per distinct completion
    good, _ = repo_reward(records[task.task_id, task.middle], config.tasks.repo_similarity_weight)
    assert good == pytest.approx(1.0 + 0.01 * 1.0)
    bad, parts = repo_reward(records[task.task_id, wrong], config.tasks.repo_similarity_weight)
    assert parts["tests_fraction"] == 0.0 and 0.0 < bad < 0.01  # similarity only breaks ties
    assert records[task.task_id, wrong]["check"]["status"] == "failed"
    assert repo_reward(records[task.task_id, broken], 0.01)[1]["tests_fraction"] == 0.0
    assert records[task.task_id, broken]["check"]["status"] == "syntax_error"


def test_two_step_repo_loop_end_to_end_resumes_without_double_counting(mined, tmp_path, tiny_qwen2_dir):
    from inference.repo_adapters import find_repo_adapter
    from rl.repo_loop import RepoSpec, run_repo_loop
    from rl.report import write_report

    target, options, _ = mined
    run, home = tmp_path / "run", tmp_path / "home"
    config = repo_config(tiny_qwen2_dir, run, options.out, steps=2)
    spec = RepoSpec(repo=str(target.root), cache_dir=options.cache_dir, heldout_fraction=0.5)
    events: list[str] = []

    def interrupt_after_first_step(kind: str, rec: dict) -> None:
        events.append(kind)
        if kind == "step":
            raise KeyboardInterrupt  # killed after step 1 was checkpointed

    with pytest.raises(KeyboardInterrupt):
        run_repo_loop(config, spec, 1, interrupt_after_first_step, home=home)
    assert events == ["base", "step"]
    assert [t.task_id for t in read_tasks(run / "repo" / "tasks.jsonl")] == [t.task_id for t in read_tasks(options.out)]
    base_results = (run / "evals" / "iter-0000" / "fim" / "results.jsonl").read_text()

    events.clear()
    records = run_repo_loop(config, spec, 1, lambda kind, rec: events.append(kind), home=home)
    assert events == ["base", "step", "iteration"]  # step 2 only; the base eval is read back
    assert (run / "evals" / "iter-0000" / "fim" / "results.jsonl").read_text() == base_results
    assert [r["step"] for r in _lines(run / "metrics.jsonl")] == [1, 2]
    assert sorted(p.name for p in (run / "rollouts").iterdir()) == ["step-000001.jsonl", "step-000002.jsonl"]
    train_ids = {t.task_id for t in read_tasks(options.out, "train")}
    assert all(r["task_id"] in train_ids for step in (1, 2) for r in _lines(run / "rollouts" / f"step-00000{step}.jsonl"))
    rec = records[0]
    fim = rec["scores"]["fim"]
    assert fim["num_tasks"] == 3 and len(_lines(Path(fim["run_dir"]) / "results.jsonl")) == 3
    heldout_ids = {t.task_id for t in read_tasks(options.out, "heldout")}
    assert {r["task_id"] for r in _lines(Path(fim["run_dir"]) / "results.jsonl")} <= heldout_ids
    comparison = rec["promotion_comparison"]
    assert comparison["tests_pass"]["num_tasks"] == 3
    # a random model passes nothing before or after: not lower, so promoted, and registered for the editor
    assert rec["promoted"] is True and (run / "promoted" / "adapter_config.json").is_file()
    entry = find_repo_adapter(target.root / "minipkg" / "textx.py", home=home)
    assert entry is not None and Path(entry.adapter_dir, "adapter_config.json").is_file()
    assert find_repo_adapter(tmp_path, home=home) is None

    assert len(run_repo_loop(config, spec, 1, home=home)) == 1  # finished: nothing is trained or evaluated again
    assert [r["step"] for r in _lines(run / "metrics.jsonl")] == [1, 2]
    text = write_report(run).read_text()
    assert "fim held-out: tests-pass" in text and "fim held-out: exact match" in text
    assert "`minipkg/broken.py`: syntax error" in text and "no test executes it" in text


def test_a_repository_without_tests_is_a_one_line_error(tmp_path, capsys):
    from codeloop.cli import main
    from tests.evals.minirepo import FILES, make_minirepo

    root = make_minirepo(tmp_path / "notests", {k: v for k, v in FILES.items() if not k.startswith("tests/")})
    run = tmp_path / "run"
    assert main(["loop", "--repo", str(root), "--run-dir", str(run), "--model", "/no-model-needed"]) == 2
    errors = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("codeloop: error:")]
    assert len(errors) == 1 and "no tests collected" in errors[0]
    assert not (run / "repo" / "tasks.jsonl").exists()  # a rerun mines again
    assert json.loads((run / "repo" / "tasks.jsonl.report.json").read_text())["reason"]


def test_the_acceptance_log_joins_the_mined_tasks_once_and_resume_keeps_them(mined, tmp_path):
    from evals.repo.miner import report_path
    from lsp.acceptance_log import AcceptanceLog
    from rl.repo_loop import RepoLoopError, RepoSpec, prepare_tasks
    from rl.report import repository_lines
    from tests.evals.minirepo import accepted_event

    target, options, _ = mined
    clamp = "if value < low:\n        return low\n    if value > high:\n        return high\n"
    log = AcceptanceLog(tmp_path / "acceptance.jsonl")
    log.record(accepted_event(target.root, "minipkg/mathx.py", clamp, clamp.replace("    if value >", "    elif value >"), "clamp"))
    log.record(accepted_event(target.root, "minipkg/mathx.py", "result = x * 3", "result = 3 * x", "single"))
    spec = RepoSpec(repo=str(target.root), cache_dir=options.cache_dir, heldout_fraction=0.5, acceptance_log=log.path)
    run = tmp_path / "run"
    dest = prepare_tasks(run, spec)
    task = next(t for t in read_tasks(dest, "train") if t.extra.get("acceptance_event") == "clamp")
    assert task.tests == ("tests/test_mathx.py::test_clamp",) and "elif value > high" in task.middle
    before = dest.read_bytes()
    initials = "parts = [p for p in name.split() if p]\n    letters = [p[0].upper() for p in parts]\n"
    log.record(accepted_event(target.root, "minipkg/textx.py", initials, "a = 1\n    b = 2\n", "later"))
    assert prepare_tasks(run, spec) == dest and dest.read_bytes() == before  # resumed: not mined again
    assert "later" not in json.loads(report_path(dest).read_text())["accepted"]
    text = "\n".join(repository_lines(run))
    assert "Accepted editor suggestions (acceptance log): 1 of 2 became tasks." in text
    assert "- `single`: single-line suggestion" in text
    with pytest.raises(RepoLoopError, match="acceptance log joins the tasks when mining"):
        RepoSpec(tasks=dest, acceptance_log=log.path)
