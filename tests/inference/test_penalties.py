"""Repetition / frequency / presence penalties: HF semantics, OpenAI semantics, batching, engine wiring."""

from __future__ import annotations

import pytest
import torch

from inference.batch import SeqChunk
from inference.penalties import apply_penalties, penalize_chunks
from inference.sampler import sample
from inference.sampling import SamplingParams

VOCAB = 50


def _logits(rows: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(rows, VOCAB, generator=torch.Generator().manual_seed(seed)) * 3  # both signs


def test_repetition_penalty_equals_transformers_processor() -> None:
    from transformers import RepetitionPenaltyLogitsProcessor

    logits = _logits(3)
    histories = [[1, 2, 2, 7, 40], [3, 3, 3], [0, 49, 10, 11, 12, 13]]
    prompts = [[1, 2], [3], [0, 49, 10]]
    for penalty in (1.05, 1.3, 0.8):
        params = [SamplingParams(repetition_penalty=penalty)] * 3
        got = apply_penalties(logits, params, prompts, [h[len(p):] for h, p in zip(histories, prompts, strict=True)])
        for row, history in enumerate(histories):  # HF runs one sequence of input_ids (prompt + generated)
            want = RepetitionPenaltyLogitsProcessor(penalty)(torch.tensor([history]), logits[row:row + 1].clone())
            torch.testing.assert_close(got[row], want[0])


def test_frequency_and_presence_follow_openai_formula_over_generated_tokens_only() -> None:
    logits = _logits(1)
    prompt, output = [5, 5, 5, 6], [7, 7, 8, 5]
    got = apply_penalties(logits, [SamplingParams(frequency_penalty=0.5, presence_penalty=0.25)], [prompt], [output])
    want = logits[0].clone()
    for token, count in {7: 2, 8: 1, 5: 1}.items():
        want[token] -= 0.5 * count + 0.25
    torch.testing.assert_close(got[0], want)
    assert got[0, 6] == logits[0, 6]  # in the prompt only: OpenAI penalties ignore the prompt


def test_rows_are_independent_and_rows_without_penalty_untouched() -> None:
    logits = _logits(4, seed=1)
    params = [SamplingParams(), SamplingParams(repetition_penalty=1.5), SamplingParams(),
              SamplingParams(presence_penalty=1.0)]
    prompts, outputs = [[1], [2], [3], [4]], [[9], [9], [9], [9]]
    got = apply_penalties(logits, params, prompts, outputs)
    torch.testing.assert_close(got[0], logits[0])
    torch.testing.assert_close(got[2], logits[2])
    alone = apply_penalties(logits[1:2], params[1:2], prompts[1:2], outputs[1:2])
    torch.testing.assert_close(got[1], alone[0])  # batch-independent
    assert got[3, 9] == logits[3, 9] - 1.0 and got[3, 4] == logits[3, 4]


def test_greedy_pick_changes_when_the_top_token_repeats() -> None:
    logits = torch.zeros(1, VOCAB)
    logits[0, 3], logits[0, 4] = 2.0, 1.9
    chunk = SeqChunk(seq_id=0, token_ids=[3], num_computed_tokens=2, block_table=[0], sample=True,
                     params=SamplingParams(repetition_penalty=1.2), history=[1, 2, 3], num_prompt_tokens=2)
    assert sample(logits, [chunk], torch.Generator())[0].token_id == 4
    plain = SeqChunk(seq_id=0, token_ids=[3], num_computed_tokens=2, block_table=[0], sample=True,
                     params=SamplingParams(), history=None)
    assert sample(logits, [plain], torch.Generator())[0].token_id == 3
    assert penalize_chunks(logits, [plain]) is logits  # no penalty: no copy, no work


@pytest.mark.parametrize("kwargs", [{"repetition_penalty": 0.0}, {"frequency_penalty": 2.5},
                                    {"presence_penalty": -3.0}, {"repetition_penalty": True}])
def test_out_of_range_penalties_are_rejected(kwargs: dict) -> None:
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        SamplingParams(**kwargs)


def test_engine_penalised_greedy_equals_hf_generate_with_repetition_penalty(tiny_qwen2_dir) -> None:
    """End to end through scheduler + runner: the history the sampler sees is the sequence's own."""
    from transformers import AutoModelForCausalLM

    from inference.config import EngineConfig
    from inference.engine import Engine

    engine = Engine.from_config(EngineConfig(model=str(tiny_qwen2_dir), dtype="float32"))
    prompts = ["def add(a, b):", "x = [n for n in", "The quick brown"]
    params = SamplingParams(max_tokens=16, repetition_penalty=1.3, ignore_eos=True)
    outs = engine.generate(prompts, params)
    hf = AutoModelForCausalLM.from_pretrained(tiny_qwen2_dir, dtype=torch.float32)
    for prompt, out in zip(prompts, outs, strict=True):
        ids = engine.tokenizer(prompt).input_ids
        want = hf.generate(torch.tensor([ids]), attention_mask=torch.ones(1, len(ids), dtype=torch.long),
                           max_new_tokens=16, do_sample=False, repetition_penalty=1.3,
                           eos_token_id=None, pad_token_id=0)[0, len(ids):].tolist()
        assert out.outputs[0].token_ids == want
    plain = engine.generate(prompts, SamplingParams(max_tokens=16, ignore_eos=True))
    assert [o.outputs[0].token_ids for o in plain] != [o.outputs[0].token_ids for o in outs]  # not vacuous
