"""`codeloop bench lsp` on the tiny random model: every keystroke is accounted for and the report adds up."""

from __future__ import annotations

import asyncio

import pytest

from bench.editor_session import replay


@pytest.mark.slow
def test_replay_accounts_for_every_keystroke(tiny_qwen2_dir):
    report = asyncio.run(replay(_textwrap(), str(tiny_qwen2_dir), None, 24, seed=1, pause=(8, 0.5)))
    assert report.num_keystrokes == 24 and report.unanswered == 0 and report.errors == 0
    assert report.answered + report.cancelled == 24
    assert report.answered >= 1  # the pauses leave time for answers
    engine = report.engine_answers
    assert 1 <= engine["answered"] <= report.engine_requests_started
    assert engine["p50_ms"] <= engine["p95_ms"]
    assert report.engine_prefix_hit_rate is not None and report.engine_prefix_hit_rate > 0.3


def _textwrap():
    import textwrap
    from pathlib import Path

    return Path(textwrap.__file__)


@pytest.mark.slow
def test_replay_side_by_side_with_and_without_speculation(tiny_qwen2_dir, tmp_path):
    import json

    from codeloop.cli import main

    out = tmp_path / "lsp.json"
    code = main(["bench", "lsp", "--model", str(tiny_qwen2_dir), "--keystrokes", "12", "--pause-every", "6",
                 "--pause-ms", "300", "--weight-quant", "hybrid_int4", "--speculative", "none,ngram", "--out", str(out)])
    result = json.loads(out.read_text())
    assert code == 0 and set(result["configs"]) == {"none", "ngram"}
    assert all(r["num_keystrokes"] == 12 and r["unanswered"] == 0 for r in result["configs"].values())
    assert set(result["ngram_vs_none"]) == {"single_line_p50_ratio", "multi_line_p50_ratio", "engine_answers_p50_ratio"}
