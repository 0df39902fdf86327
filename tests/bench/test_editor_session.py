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
