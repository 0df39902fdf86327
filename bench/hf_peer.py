"""HF transformers `generate` as the peer in engine benchmarks: same weights, same dtype, same process."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import torch

from inference.compute_dtype import torch_dtype


@dataclass(frozen=True)
class HFTiming:
    seconds: float
    new_tokens: int
    first_token_s: float | None = None

    @property
    def tokens_per_s(self) -> float:
        return self.new_tokens / self.seconds if self.seconds > 0 else 0.0


class HFPeer:
    """Greedy generation with ``AutoModelForCausalLM.generate``, EOS ignored so lengths match ours."""

    def __init__(self, model_dir: Path, dtype: str) -> None:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.model = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=torch_dtype(dtype))
        self.model.eval()

    def _generate(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, max_new: int) -> torch.Tensor:
        with torch.inference_mode():
            return self.model.generate(
                input_ids=input_ids, attention_mask=attention_mask, max_new_tokens=max_new,
                min_new_tokens=max_new, do_sample=False, pad_token_id=self.tokenizer.pad_token_id,
            )

    def one(self, token_ids: list[int], max_new: int) -> HFTiming:
        ids = torch.tensor([token_ids])
        mask = torch.ones_like(ids)
        start = time.perf_counter()
        self._generate(ids, mask, 1)
        first = time.perf_counter() - start
        start = time.perf_counter()
        out = self._generate(ids, mask, max_new)
        return HFTiming(time.perf_counter() - start, out.shape[1] - ids.shape[1], first)

    def one_at_a_time(self, prompts: list[list[int]], max_new: int) -> HFTiming:
        start = time.perf_counter()
        total = 0
        for token_ids in prompts:
            ids = torch.tensor([token_ids])
            total += self._generate(ids, torch.ones_like(ids), max_new).shape[1] - ids.shape[1]
        return HFTiming(time.perf_counter() - start, total)

    def static_batch(self, prompts: list[list[int]], max_new: int) -> HFTiming:
        width = max(len(p) for p in prompts)
        pad = self.tokenizer.pad_token_id
        ids = torch.tensor([[pad] * (width - len(p)) + p for p in prompts])
        mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts])
        start = time.perf_counter()
        out = self._generate(ids, mask, max_new)
        return HFTiming(time.perf_counter() - start, (out.shape[1] - width) * len(prompts))
