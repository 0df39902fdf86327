"""``codeloop eval fim`` end to end on the fixture repository: the tiny random model through the editor's own
completion path, every completion spliced in and its covering tests run in bubblewrap; resume after a kill;
the HTTP client path against a real ``codeloop serve``; the side-by-side report.

Slow and needs the bwrap backend (the tasks come from the session's ``mined`` fixture).
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from evals.repo.completions import EngineChoice, Workspace
from evals.repo.fim import FimEvalSpec, evaluate_fim
from evals.repo.fim_report import compare
from evals.repo.task import read_tasks
from lsp.completer import Completer
from lsp.inprocess_client import InProcessClient
from sandbox.bwrap import available
from tests.inference.server_fixtures import serve_subprocess

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(available() is not None, reason=f"bwrap backend unavailable: {available()}")]
THREADS = {"num_threads": 1}


def _spec(mined, tmp_path: Path, engine: EngineChoice, name: str = "run", **kw) -> FimEvalSpec:
    _, options, _ = mined
    return FimEvalSpec(options.out, engine, tmp_path / name, split=None, **kw)


def _lines(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


def test_tiny_model_end_to_end_and_resume(mined, tmp_path, tiny_qwen2_dir):
    spec = _spec(mined, tmp_path, EngineChoice(model=str(tiny_qwen2_dir), engine_options=THREADS))
    summary = evaluate_fim(spec)
    tasks = read_tasks(mined[1].out)
    assert summary.num_results == summary.num_tasks == len(tasks)
    assert set(summary.by_kind) == {"body", "block", "line", "all"}
    results = _lines(spec.run_dir / "results.jsonl")
    for r in results:
        assert {"completion", "gold", "exact_match", "edit_similarity", "tests_pass", "check"} <= set(r)
        assert r["check"]["num_tests"] >= 1 and r["check"]["status"] in ("passed", "failed", "syntax_error")
    assert (spec.run_dir / "report.md").read_text().startswith("# codeloop eval fim")

    # a kill: the last results lost, the new last line torn, one completion never written
    gens = (spec.run_dir / "generations.jsonl").read_text().splitlines()
    (spec.run_dir / "generations.jsonl").write_text("\n".join(gens[:-1]) + "\n")
    kept = (spec.run_dir / "results.jsonl").read_text().splitlines()[: len(results) // 2]
    (spec.run_dir / "results.jsonl").write_text("\n".join(kept) + "\n" + kept[-1][:30])
    with pytest.raises(Exception, match="--resume"):
        evaluate_fim(spec)
    resumed = evaluate_fim(FimEvalSpec(**{**spec.__dict__, "resume": True}))
    assert resumed.num_results == len(tasks)
    assert len(_lines(spec.run_dir / "generations.jsonl")) == len(tasks)  # only the lost one was redone
    ids = [r["task_id"] for r in _lines(spec.run_dir / "results.jsonl")]
    assert sorted(ids) == sorted(t.task_id for t in tasks)


def test_the_eval_shows_what_the_editor_shows(mined, tmp_path, tiny_qwen2_dir):
    target, options, _ = mined
    tasks = read_tasks(options.out)[:3]
    spec = _spec(mined, tmp_path, EngineChoice(model=str(tiny_qwen2_dir), engine_options=THREADS), checks=False)
    evaluate_fim(spec)
    made = {g["task_id"]: g["completion"] for g in _lines(spec.run_dir / "generations.jsonl")}

    async def editor() -> dict[str, str]:
        client = InProcessClient(str(tiny_qwen2_dir), engine_options=THREADS)
        completer = Completer(client, spec.lsp_settings(), str(target.root))
        ws = Workspace(target.root)
        try:
            shown = {}
            for t in tasks:
                suggestion = await completer.suggest(ws.document(t), t.line, t.character, ws.index)
                shown[t.task_id] = suggestion.text if suggestion else ""
            return shown
        finally:
            await client.aclose()

    assert asyncio.run(editor()) == {t.task_id: made[t.task_id] for t in tasks}


SMALL = {"contextBudgetChars": 500, "snippetBudgetChars": 100}
"""The HTTP client cannot count tokens, so it cannot shrink a prompt to the tiny model's 512-token context."""


def test_http_client_path_matches_in_process(mined, tmp_path, tiny_qwen2_dir):
    local = _spec(mined, tmp_path, EngineChoice(model=str(tiny_qwen2_dir), engine_options=THREADS), "local",
                  checks=False, limit=4, settings=SMALL)
    evaluate_fim(local)
    with serve_subprocess(tiny_qwen2_dir) as url:
        remote = _spec(mined, tmp_path, EngineChoice(engine_url=url), "remote", checks=False, limit=4, settings=SMALL)
        summary = evaluate_fim(remote)
    errors = [g["error"] for g in _lines(remote.run_dir / "generations.jsonl") if g.get("error")]
    assert summary.num_errors == 0, errors
    by_id = {g["task_id"]: g["completion"] for g in _lines(local.run_dir / "generations.jsonl")}
    assert {g["task_id"]: g["completion"] for g in _lines(remote.run_dir / "generations.jsonl")} == by_id
    md, js = compare([local.run_dir, remote.run_dir], tmp_path / "report")
    rows = json.loads(js.read_text())
    assert rows[1]["exact_match"]["delta_vs_first"] == 0.0 and rows[1]["exact_match"]["common_tasks"] == 4
    assert "side by side" in md.read_text()


def test_engine_choice_is_exactly_one():
    with pytest.raises(ValueError, match="exactly one"):
        EngineChoice(model="m", engine_url="http://x")
    with pytest.raises(ValueError, match="exactly one"):
        EngineChoice()
