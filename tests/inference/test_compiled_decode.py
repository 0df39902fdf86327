"""Compiled decode steps (``inference/compiled_decode.py``) on a tiny random Qwen2: the same tokens as eager.

The compiled graph runs steps of generated rows only; prompt rows, adapter steps and very short contexts
stay eager, and a step that would need a new graph after the warm-up runs eagerly instead of compiling.
"""

from __future__ import annotations

import logging

import pytest
import torch

from inference import compiled_decode, kernels
from inference.attention import get_backend
from inference.batch import SeqChunk
from inference.compiled_decode import CompiledDecode
from inference.models.hybrid_linear import HybridLinear
from tests.inference.test_speculative_tiny import PARAMS, PROMPTS, make_engine, tokens


@pytest.fixture(scope="module")
def eager(tiny_qwen2_dir) -> list[list[int]]:
    return tokens(make_engine(tiny_qwen2_dir, compile_decode="off").generate(PROMPTS, PARAMS))


def test_greedy_identical_compiled_batched_and_speculative(tiny_qwen2_dir, eager):
    """Five prompts decoded together (the 2+ row graph, then one row as they finish), then with n-gram
    drafts (verification rows through the same graph): every token as eager decoding gives it."""
    engine = make_engine(tiny_qwen2_dir, compile_decode="on")
    runner = engine.runner
    assert runner.compiled is not None and runner.compiled.ready
    assert tokens(engine.generate(PROMPTS, PARAMS)) == eager
    assert [tokens(engine.generate([p], PARAMS))[0] for p in PROMPTS] == eager
    spec = make_engine(tiny_qwen2_dir, method="ngram", compile_decode="on")
    assert tokens(spec.generate(PROMPTS, PARAMS)) == eager
    assert spec.stats().num_accepted_tokens > 0
    for r in (runner, spec.runner):
        assert r.compiled.num_runs >= PARAMS.max_tokens // 2 and r.compiled.misses == 0


def test_adapter_steps_run_eagerly(tiny_qwen2_dir, tmp_path):
    from tests.inference.lora_helpers import make_peft_adapter

    make_peft_adapter(tiny_qwen2_dir, tmp_path / "adapter")
    outs = {}
    for mode in ("off", "on"):
        engine = make_engine(tiny_qwen2_dir, compile_decode=mode)
        engine.load_adapter(tmp_path / "adapter", name="a")
        outs[mode] = [tokens(engine.generate([p], PARAMS, adapter_id="a"))[0] for p in PROMPTS[:2]]
    assert outs["on"] == outs["off"]


def test_without_a_compiler_decoding_stays_eager(tiny_qwen2_dir, eager, monkeypatch, caplog):
    def no_compiler(fn, **kwargs):
        def run(*args, **kw):
            raise RuntimeError("InductorError: C++ compiler not found")
        return run

    monkeypatch.setattr(compiled_decode.torch, "compile", no_compiler)
    with caplog.at_level(logging.WARNING, logger="inference.compiled_decode"):
        engine = make_engine(tiny_qwen2_dir, compile_decode="on")
    assert engine.runner.compiled is None
    assert "decoding eagerly" in caplog.text and "C++ compiler not found" in caplog.text
    assert tokens(engine.generate(PROMPTS, PARAMS)) == eager


def test_auto_compiles_only_packed_decode(tiny_qwen2_dir, monkeypatch):
    monkeypatch.delenv(compiled_decode.OFF_ENV, raising=False)
    calls = []
    monkeypatch.setattr(CompiledDecode, "warm_up", lambda self, step: calls.append(self) or False)
    make_engine(tiny_qwen2_dir, weight_quant="none")
    assert calls == []
    make_engine(tiny_qwen2_dir)  # hybrid_int4: generated rows take packed weights
    assert len(calls) == 1
    monkeypatch.setenv(compiled_decode.OFF_ENV, "off")
    make_engine(tiny_qwen2_dir)
    assert len(calls) == 1


def test_which_steps_take_the_graph(tiny_qwen2_dir):
    engine = make_engine(tiny_qwen2_dir, compile_decode="off")
    runner = engine.runner
    c = CompiledDecode(get_backend("sdpa"), block_size=4)

    def meta(*chunks):
        return runner.prepare_inputs(list(chunks))[2]

    decode = SeqChunk(0, [5], 9, [1, 2, 3], True, PARAMS)
    assert c.can_run(meta(decode), lora=False, max_rows=16)
    assert not c.can_run(meta(decode), lora=True, max_rows=16)
    assert not c.can_run(meta(decode, SeqChunk(1, [5], 9, [4, 5, 6], True, PARAMS)), lora=False, max_rows=1)
    assert not c.can_run(meta(SeqChunk(0, [5], 3, [1], True, PARAMS)), lora=False, max_rows=16)  # 1 block
    prompt = SeqChunk(1, [5, 6, 7], 0, [4], True, PARAMS)
    assert not c.can_run(meta(decode, prompt), lora=False, max_rows=16)
    draft = SeqChunk(0, [5, 6, 7], 9, [1, 2, 3], True, PARAMS, num_draft_tokens=2, num_prompt_tokens=9)
    assert c.can_run(meta(draft), lora=False, max_rows=16)
    with pytest.raises(ValueError, match="sdpa"):
        CompiledDecode(get_backend("triton"), block_size=4)


def test_a_step_outside_the_graphs_runs_eagerly(tiny_qwen2_dir, eager, monkeypatch):
    """After the warm-up nothing compiles: a step whose guards fail runs eagerly (counted, logged once)."""
    engine = make_engine(tiny_qwen2_dir, compile_decode="on")
    compiled = engine.runner.compiled

    def recompiling(*args):
        raise torch._dynamo.exc.RecompileError("guard failed")

    monkeypatch.setattr(compiled, "_forward", recompiling)
    assert tokens(engine.generate(PROMPTS[:1], PARAMS)) == eager[:1]
    assert compiled.misses > 0


@pytest.mark.skipif(not kernels.available(), reason="neither AVX-512 VNNI nor AVX2 here, or no C++ compiler")
@pytest.mark.parametrize("kind", ["int4x8", "int8x8"])
def test_our_vnni_kernels_inside_the_graph(tiny_qwen2_dir, kind):
    """Our int4 x int8 / int8 x int8 kernels (custom ops the graph calls through their fake impls): the compiled
    path gives the tokens the same kernel gives eagerly, batched and alone."""
    eager = tokens(make_engine(tiny_qwen2_dir, weight_quant=f"hybrid_{kind}", compile_decode="off")
                   .generate(PROMPTS, PARAMS))
    engine = make_engine(tiny_qwen2_dir, weight_quant=f"hybrid_{kind}", compile_decode="on")
    kinds = {m.packed.kind for m in engine.runner.model.modules() if isinstance(m, HybridLinear)}
    assert kinds == {kind}
    assert tokens(engine.generate(PROMPTS, PARAMS)) == eager
    assert [tokens(engine.generate([p], PARAMS))[0] for p in PROMPTS] == eager
    assert engine.runner.compiled.num_runs >= PARAMS.max_tokens and engine.runner.compiled.misses == 0
