"""`codeloop bench fim`: cursors from real code, and a smoke run on the tiny model (no peer, no timing claims)."""

from __future__ import annotations

import json

import pytest

from bench.fim import pick_cursors, source_root


def test_cursors_alternate_blocks_and_line_ends():
    cursors = pick_cursors(source_root("email"), 6)
    assert [c.kind for c in cursors] == ["body", "line"] * 3
    for cur in cursors:
        row = cur.text.splitlines()[cur.line]
        if cur.kind == "body":  # an empty indented line where a function body was
            assert not row.strip() and cur.character == len(row)
            assert cur.text.splitlines()[cur.line - 1].rstrip().endswith(":")
        else:  # code before the cursor, nothing after it
            assert row[:cur.character].strip() and cur.character == len(row)
    assert pick_cursors(source_root("email"), 6) == cursors  # deterministic


@pytest.mark.slow
def test_bench_fim_runs_each_configuration_on_the_same_cursors(tiny_qwen2_dir, tmp_path, capsys):
    from codeloop.cli import main

    out = tmp_path / "fim.json"
    assert main(["bench", "fim", "--model", str(tiny_qwen2_dir), "--weight-quant", "hybrid_int4", "--cursors", "2",
                 "--speculative", "none,ngram,none+eager", "--no-peer", "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    none, ngram = result["configs"]["none"], result["configs"]["ngram"]
    assert result["configs"]["none+eager"]["kernels"]["compiled_decode"] is None
    assert result["configs"]["none+eager"]["identical_outputs"] == 2
    assert result["cursors"] == 2 and none["kernels"]["decode"] == "int4"
    assert ngram["identical_outputs"] == 2 and ngram["consistent_raw"] == 2  # speculation never changes an output
    assert set(ngram["speedup_vs_none"]) >= {"multi_line_p50_ratio", "single_line_p50_ratio"}
    assert none["latency_s"]["multi_line"]["n"] == 1 and none["latency_s"]["single_line"]["n"] == 1
