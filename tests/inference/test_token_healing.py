"""Token healing on a real (tiny, random) model and its byte-level BPE tokenizer: the prompt's last token is
written again under a constraint, and what is reported starts at the prompt's end."""

from __future__ import annotations

import pytest
import torch

from inference.batch import SeqChunk
from inference.detokenizer import IncrementalDetokenizer
from inference.sampler import sample
from inference.sampling import SamplingParams
from inference.token_healing import VocabText, take_back
from tests.inference.test_speculative_tiny import make_engine

PROMPT = "def count(words):\n    counts = {}\n    for word in words:\n        counts[wo"


def test_the_tokens_that_agree_with_a_text(tiny_qwen2_dir):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_qwen2_dir)
    vocab = VocabText(tok, set(tok.all_special_ids))
    for rest in ("wo", "cou", " ", "e"):
        ids = vocab.agreeing(rest)
        texts = [tok.decode([i]) for i in ids]
        assert ids and all(t.startswith(rest) or rest.startswith(t) for t in texts)
        every = [i for i in range(len(tok)) if i not in tok.all_special_ids
                 and (t := tok.decode([i])) and (t.startswith(rest) or rest.startswith(t))]
        assert sorted(ids) == sorted(every)
    ids = tok.encode(PROMPT)
    kept, text = take_back(ids, tok, set(tok.all_special_ids))
    assert kept == ids[:-1] and tok.decode(kept) + text == PROMPT
    fim_end = tok.encode(PROMPT + "<|fim_middle|>")
    assert take_back(fim_end, tok, set(tok.all_special_ids)) == (fim_end, "")


def test_a_prepared_index_decodes_nothing_on_the_first_lookup(tiny_qwen2_dir):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_qwen2_dir)
    calls = []

    class Counting:
        def __len__(self):
            return len(tok)

        def decode(self, ids, **kw):
            calls.append(ids)
            return tok.decode(ids, **kw)

    vocab = VocabText(Counting(), set(tok.all_special_ids))
    vocab.build()
    built = len(calls)
    assert built >= len(tok) - len(tok.all_special_ids)
    assert vocab.agreeing("wo") and len(calls) == built


def test_the_sampler_keeps_only_the_allowed_tokens():
    logits = torch.tensor([[0.0, 5.0, 1.0, 2.0], [0.0, 5.0, 1.0, 2.0]])
    params = SamplingParams()
    chunks = [SeqChunk(0, [1], 3, [0], True, params, allowed_token_ids=(2, 3)), SeqChunk(1, [1], 3, [0], True, params)]
    out = sample(logits, chunks, torch.Generator().manual_seed(0))
    assert [t.token_id for t in out] == [3, 1]
    assert logits[0, 1] == 5.0  # the caller's logits are left alone


def test_the_detokenizer_skips_the_rewritten_text(tiny_qwen2_dir):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_qwen2_dir)
    ids = tok.encode("counts[word] = 1")
    detok = IncrementalDetokenizer(tok, [], skip=len("counts[wo"))
    for i in ids:
        detok.add_token(i)
    detok.flush()
    assert detok.text == "rd] = 1"


@pytest.mark.parametrize("method", ["none", "ngram"])
def test_a_healed_request_rewrites_its_last_token_and_reports_what_follows(tiny_qwen2_dir, method):
    engine = make_engine(tiny_qwen2_dir, weight_quant="hybrid_int8", method=method)
    tok = engine.tokenizer
    kept, text = take_back(tok.encode(PROMPT), tok, set(tok.all_special_ids))
    params = SamplingParams(max_tokens=10, ignore_eos=True, heal=True)
    out = engine.generate([PROMPT], params)[0]
    generated = tok.decode(out.outputs[0].token_ids, skip_special_tokens=True)
    assert out.num_prompt_tokens == len(kept) and out.healed == text
    assert generated.startswith(text) and out.outputs[0].text == generated[len(text):]
    again = engine.generate([PROMPT], params)[0]  # from the prefix cache: the same
    assert again.outputs[0].token_ids == out.outputs[0].token_ids
    assert engine.stats().num_blocks_owned == 0
    plain = engine.generate([PROMPT], SamplingParams(max_tokens=10, ignore_eos=True))[0]
    assert plain.num_prompt_tokens == len(kept) + 1 and plain.healed == ""


def test_healing_with_drafts_gives_the_same_tokens(tiny_qwen2_dir):
    params = SamplingParams(max_tokens=16, ignore_eos=True, heal=True)
    prompts = [PROMPT, PROMPT.replace("wo", "w"), "x = [1, 2, 3]\ny = [1, 2"]
    plain = make_engine(tiny_qwen2_dir, weight_quant="hybrid_int8").generate(prompts, params)
    drafted = make_engine(tiny_qwen2_dir, weight_quant="hybrid_int8", method="ngram").generate(prompts, params)
    assert [o.outputs[0].token_ids for o in drafted] == [o.outputs[0].token_ids for o in plain]


def test_every_sample_of_a_healed_request_writes_the_token_first(tiny_qwen2_dir):
    """Checked suggestions ask for several samples of one healed prompt: each is constrained on its own."""
    engine = make_engine(tiny_qwen2_dir, weight_quant="hybrid_int8", method="ngram")
    tok = engine.tokenizer
    _, text = take_back(tok.encode(PROMPT), tok, set(tok.all_special_ids))
    params = SamplingParams(max_tokens=8, ignore_eos=True, heal=True, n=3, temperature=1.0, seed=3,
                            greedy_first=True)
    out = engine.generate([PROMPT], params)[0]
    assert len(out.outputs) == 3
    for choice in out.outputs:
        generated = tok.decode(choice.token_ids, skip_special_tokens=True)
        assert generated.startswith(text) and choice.text == generated[len(text):]
    greedy = engine.generate([PROMPT], SamplingParams(max_tokens=8, ignore_eos=True, heal=True))[0]
    assert out.outputs[0].token_ids == greedy.outputs[0].token_ids
    assert engine.stats().num_blocks_owned == 0
