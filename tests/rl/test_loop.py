"""The loop end to end on a tiny model: train → held-out eval → promotion rule → report; config errors."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from rl.config import ConfigError, load_config
from rl.loop import promote, run_loop
from tests.rl.helpers import tiny_config


def test_config_from_toml_and_errors(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('model = "m"\n[train]\nsteps = 3\nalgo = "rft"\n[lora]\nr = 4\n')
    config = load_config(path, {"eval.limit": 5})
    assert config.train.steps == 3 and config.train.algo == "rft" and config.lora.r == 4 and config.eval.limit == 5
    path.write_text("[train]\nstep = 3\n")
    with pytest.raises(ConfigError, match="unknown key.*step"):
        load_config(path)
    path.write_text("[rollout]\ngroup_size = 1\n")
    with pytest.raises(ConfigError, match="group_size"):
        load_config(path)
    path.write_text("[tasks]\nsources = ['mbpp-validation']\n")
    with pytest.raises(ConfigError, match="held out"):
        load_config(path)
    path.write_text("[[[")
    with pytest.raises(ConfigError, match="TOML"):
        load_config(path)
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "missing.json")


def test_executor_from_the_command_line_and_config(tmp_path):
    from codeloop.cli import build_parser
    from codeloop.commands.train import _config

    args = build_parser().parse_args(["loop", "--executor", "ray", "--ray-address", "10.0.0.5:6379"])
    config = _config(args)
    assert (config.rollout.executor, config.rollout.ray_address) == ("ray", "10.0.0.5:6379")
    assert load_config(None).rollout.executor == "local"  # the default: this machine, no Ray
    path = tmp_path / "c.toml"
    path.write_text('[rollout]\nexecutor = "spark"\n')
    with pytest.raises(ConfigError, match="rollout.executor"):
        load_config(path)


def test_per_benchmark_eval_limits(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('[eval]\nlimit = 7\nlimits = { mbppplus = 0, swebench = 3 }\n')
    ev = load_config(path).eval
    assert (ev.limit_for("mbppplus"), ev.limit_for("swebench"), ev.limit_for("humanevalplus")) == (None, 3, 7)
    path.write_text('[eval]\nlimits = { nosuch = 1 }\n')
    with pytest.raises(ConfigError, match="limits keys"):
        load_config(path)
    assert load_config(Path(__file__).parents[2] / "rl/configs/cpu-long.toml").grpo.kl_coef == 0.0


def test_no_usable_task_is_a_clear_cli_error(tmp_path, capsys):
    from codeloop.cli import main

    path = tmp_path / "c.json"
    path.write_text(json.dumps({"model": "/nonexistent-model", "run_dir": str(tmp_path / "run")}))
    assert main(["train", "--config", str(path)]) == 2
    assert "codeloop: error:" in capsys.readouterr().err


def _results(folder: Path, outcomes: dict[str, str]) -> Path:
    folder.mkdir(parents=True)
    lines = [json.dumps({"task_id": t, "sample_index": 0, "passed": s == "passed", "status": s}) for t, s in outcomes.items()]
    (folder / "results.jsonl").write_text("\n".join(lines) + "\n")
    return folder


def test_promotion_compares_only_tasks_judged_in_both_runs(tmp_path):
    from rl.heldout import beats

    base = _results(tmp_path / "base", {"a": "passed", "b": "sandbox_error", "c": "failed", "d": "failed"})
    same = _results(tmp_path / "same", {"a": "passed", "b": "passed", "c": "failed"})  # b not judged in base
    better = _results(tmp_path / "better", {"a": "passed", "b": "failed", "c": "passed"})
    assert beats(same, base) == (False, 0.5, 0.5, 2)
    assert beats(better, base) == (True, 1.0, 0.5, 2)
    assert beats(_results(tmp_path / "empty", {}), base)[0] is False


def test_promote_swaps_a_symlink_atomically(tmp_path):
    for name in ("a", "b"):
        (tmp_path / "adapters" / name).mkdir(parents=True)
    link = promote(tmp_path, tmp_path / "adapters" / "a", {"iteration": 1})
    assert Path(os.path.realpath(link)).name == "a"
    promote(tmp_path, tmp_path / "adapters" / "b", {"iteration": 2})
    assert Path(os.path.realpath(link)).name == "b"
    assert json.loads((link / "promotion.json").read_text())["iteration"] == 2


def test_loop_iteration_on_tiny_model(tiny_qwen2_dir, tmp_path):
    config = tiny_config(tiny_qwen2_dir, tmp_path / "run", steps=1)
    data = config.as_dict()
    data["tasks"].update(limit=3, validate=False, sources=["mbpp-train", "synth"], synth_count=1)
    data["rollout"]["sandbox"] = "bwrap"
    data["eval"].update(benchmarks=["mbpp-validation", "humanevalplus", "bigcodebench"], limit=2, max_tokens=8)
    from rl.config import config_from_dict

    config = config_from_dict(data)
    events = []
    records = run_loop(config, 1, on_event=lambda kind, rec: events.append(kind))
    assert events == ["base", "step", "iteration"]
    rec = records[0]
    assert rec["new_tasks"] == 0  # a random model writes no parseable task (the format is tested in test_synth)
    assert set(rec["scores"]) == {"mbpp-validation", "humanevalplus", "bigcodebench"}
    assert all(s["num_tasks"] == 2 for s in rec["scores"].values())
    # a random model scores 0, like the random base: not strictly better, so nothing is promoted
    assert rec["promoted"] is False and rec["promotion_comparison"]["candidate"] == 0.0
    assert not (tmp_path / "run" / "promoted").exists()
    assert (tmp_path / "run" / "adapters" / "iter-0001" / "adapter_config.json").is_file()
    again = run_loop(config, 1)  # already done: resumes without training or evaluating again
    assert len(again) == 1
    from rl.report import write_report

    report = write_report(tmp_path / "run")
    text = report.read_text()
    assert "pass@1" in text and "limit" in text
    assert (tmp_path / "run" / "report" / "reward.png").is_file()


def test_shipped_config_is_valid():
    config = load_config(Path(__file__).resolve().parents[2] / "rl" / "configs" / "cpu-smoke.toml")
    assert config.eval.limit == 10 and config.rollout.sandbox == "bwrap"


def test_repo_source_config_rules(tmp_path):
    root = Path(__file__).resolve().parents[2]
    config = load_config(root / "rl" / "configs" / "repo-cpu.toml")
    assert config.train.algo == "rft" and config.tasks.repo_similarity_weight == 0.01
    assert (config.anchor.per_step, config.anchor.coef, config.anchor.loss) == (8, 2.0, "nll")
    path = tmp_path / "c.toml"
    for text, message in (("[tasks]\nsources = ['repo', 'mbpp-train']\nrepo_tasks = 't.jsonl'\n", "cannot be mixed"),
                          ("[tasks]\nsources = ['repo']\n", "needs tasks.repo_tasks"),
                          ("[tasks]\nrepo_similarity_weight = 0.5\n", "repo_similarity_weight")):
        path.write_text(text)
        with pytest.raises(ConfigError, match=message):
            load_config(path)


def test_the_repository_loop_without_config_takes_the_shipped_repo_config(tmp_path):
    from codeloop.cli import build_parser
    from codeloop.commands.train import _config

    parser = build_parser()
    repo = _config(parser.parse_args(["loop", "--repo", "r", "--run-dir", str(tmp_path)]))
    assert (repo.anchor.per_step, repo.tasks.repo_similarity_weight, repo.run_dir) == (8, 0.01, str(tmp_path))
    assert _config(parser.parse_args(["loop"])).anchor.per_step == 0  # the MBPP loop keeps the base defaults
    own = tmp_path / "c.toml"
    own.write_text("[train]\nsteps = 3\n")
    assert _config(parser.parse_args(["loop", "--repo", "r", "--config", str(own)])).anchor.per_step == 0
