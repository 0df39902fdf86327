"""The trainable copy of the model: HF transformers + a peft LoRA, updated with GRPO (or the RFT baseline).

Per step: advantages per group → old logprobs (policy before the update, no grad) and reference logprobs
(adapter disabled, no grad) → clipped loss + KL over completion tokens with gradient accumulation over
micro-batches (token-level mean over each mini-batch) → AdamW on the LoRA parameters only.
NOTE: with one update per rollout batch (``epochs_per_batch == updates_per_step == 1``) the old logprobs
equal the detached current ones (ratio 1), so they come from the same forward instead of a second one.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from inference.compute_dtype import torch_dtype
from inference.heap import release_free_heap
from rl.anchor import Anchor
from rl.config import RLConfig
from rl.grpo import group_advantages, grpo_loss, rft_loss, select_rft
from rl.rollout import Rollout

log = logging.getLogger(__name__)


@dataclass
class Sample:
    """One rollout as the trainer needs it."""

    prompt_ids: list[int]
    completion_ids: list[int]
    advantage: float
    keep: bool
    """RFT: a distinct passing solution within its task's cap (``select_rft``)."""


class Trainer:
    """Owns the peft model and its optimizer. Invariant: only LoRA parameters require grad."""

    def __init__(self, config: RLConfig, model_path: Path) -> None:
        from peft import LoraConfig, get_peft_model
        from transformers import AutoModelForCausalLM

        self.config = config
        torch.set_num_threads(config.train.num_threads)
        dtype = torch_dtype(config.train.dtype)
        base = AutoModelForCausalLM.from_pretrained(model_path, dtype=dtype)
        lora = config.lora
        peft_config = LoraConfig(r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout,
                                 target_modules=list(lora.targets), task_type="CAUSAL_LM")
        self.model = get_peft_model(base, peft_config)
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(self.params, lr=config.train.lr, weight_decay=config.train.weight_decay)

    # --- state --------------------------------------------------------------------------------------------
    def save_adapter(self, folder: Path) -> None:
        self.model.save_pretrained(folder)

    def load_adapter(self, folder: Path) -> None:
        from peft import set_peft_model_state_dict
        from safetensors.torch import load_file

        set_peft_model_state_dict(self.model, load_file(str(Path(folder) / "adapter_model.safetensors")))

    # --- logprobs -----------------------------------------------------------------------------------------
    def logprobs(self, samples: Sequence[Sample], temperature: float) -> tuple[torch.Tensor, torch.Tensor]:
        """(logprobs [batch, max_completion], mask [batch, max_completion]) of each completion token."""
        max_c = max(1, max(len(s.completion_ids) for s in samples))
        mask = torch.zeros((len(samples), max_c), dtype=torch.float32)
        rows = []
        for i, (s, step_logits) in enumerate(zip(samples, self.completion_logits(samples), strict=True)):
            n = len(s.completion_ids)
            if n == 0:
                rows.append(torch.zeros(max_c))
                continue
            lp = torch.log_softmax(step_logits / temperature, dim=-1)
            lp = lp.gather(1, torch.tensor(s.completion_ids)[:, None])[:, 0]
            rows.append(torch.nn.functional.pad(lp, (0, max_c - n)))
            mask[i, :n] = 1
        return torch.stack(rows), mask

    def completion_logits(self, samples: Sequence[Sample | Anchor]) -> list[torch.Tensor]:
        """Per sample, the float32 logits [completion length, vocab] that predict its completion tokens."""
        seqs = [s.prompt_ids + s.completion_ids for s in samples]
        width = max(len(q) for q in seqs)
        input_ids = torch.zeros((len(seqs), width), dtype=torch.long)
        attention = torch.zeros((len(seqs), width), dtype=torch.long)
        for i, q in enumerate(seqs):
            input_ids[i, :len(q)] = torch.tensor(q)
            attention[i, :len(q)] = 1
        keep = width - min(len(s.prompt_ids) for s in samples) + 1
        logits = self.model(input_ids=input_ids, attention_mask=attention, logits_to_keep=keep).logits
        first = width - keep  # absolute position of logits[:, 0]
        out = []
        for i, s in enumerate(samples):
            start = len(s.prompt_ids) - 1 - first  # logits at position p predict token p + 1
            out.append(logits[i, start:start + len(s.completion_ids)].float())
        return out

    def anchor_kl(self, samples: Sequence[Sample | Anchor]) -> tuple[torch.Tensor, int]:
        """(sum over the completion tokens of KL(base || adapter) over the whole vocabulary, token count):
        rl/anchor.py's loss; zero, with a zero gradient, while the adapter leaves these answers as the base has them."""
        with torch.no_grad(), self.model.disable_adapter():
            base = [torch.log_softmax(x, dim=-1) for x in self.completion_logits(samples)]
        total = torch.zeros(())
        for ref, cur in zip(base, self.completion_logits(samples), strict=True):
            total = total + (ref.exp() * (ref - torch.log_softmax(cur, dim=-1))).sum()
        return total, sum(len(s.completion_ids) for s in samples)

    # --- one update ---------------------------------------------------------------------------------------
    def step(self, groups: Sequence[Sequence[Rollout]], anchors: Sequence[Anchor] = ()) -> dict[str, float]:
        """One training step on complete groups: ``epochs_per_batch`` passes over the rollouts, each split into
        ``updates_per_step`` optimizer updates (interleaved mini-batches); returns metrics averaged over updates.
        ``anchors`` (rl/anchor.py) add ``anchor.coef`` x their token-mean KL to the base to every update; they
        regularise an update, so a step with nothing to learn from its rollouts still makes none."""
        train = self.config.train
        samples = self._samples(groups)
        if train.algo == "grpo":
            samples = [s for s in samples if s.advantage != 0.0]
        else:
            samples = [s for s in samples if s.keep]
        metrics: dict[str, float] = {"num_train_samples": float(len(samples))}
        if not samples or sum(len(s.completion_ids) for s in samples) == 0:
            metrics["skipped_update"] = 1.0
            return metrics
        k = min(train.updates_per_step, len(samples))
        chunks = [[c[i:i + train.micro_batch] for i in range(0, len(c), train.micro_batch)]
                  for c in (samples[j::k] for j in range(k))]
        # GRPO's ratios compare the policy that sampled (tempered) with the trained one; RFT is SFT: T=1
        temperature = self.config.rollout.temperature if train.algo == "grpo" else 1.0
        off_policy = train.epochs_per_batch > 1 or k > 1
        self.model.eval()  # old / reference log-probs without dropout
        before = [self._reference(micro, temperature, off_policy) for micro in chunks]  # all before any update
        anchor_micro = [list(anchors[i:i + train.micro_batch]) for i in range(0, len(anchors), train.micro_batch)]
        self.model.train()  # the forwards that get gradients: LoRA dropout as configured
        try:
            updates = [self._update(micro, refs, olds, temperature, anchor_micro) for _ in range(train.epochs_per_batch)
                       for micro, (refs, olds) in zip(chunks, before, strict=True)]
        finally:
            self.model.eval()
            # NOTE: the backward's activations (~5 GiB for 2 x 1,100-token FIM samples of the 0.5B) come back to
            # glibc's heap as free chunks it keeps; without the trim the loop process stays at ~11 GiB between
            # updates (measured: one update left 5.2 GiB free in the heap, the trim took RSS 6.8 -> 1.7 GiB).
            release_free_heap()
        for key in updates[0]:
            metrics[key] = sum(u[key] for u in updates) / (1 if key == "num_tokens" else len(updates))
        metrics["num_updates"] = float(len(updates))
        metrics["skipped_update"] = 0.0
        return metrics

    def _update(self, micro, refs, olds, temperature: float, anchor_micro=()) -> dict[str, float]:
        """One optimizer update over the micro-batches of one mini-batch (token-level mean over all of them),
        plus the anchor's token-mean KL (``anchor.coef``) over ``anchor_micro``."""
        total_tokens = sum(len(s.completion_ids) for mb in micro for s in mb)
        self.optimizer.zero_grad(set_to_none=True)
        sums: dict[str, float] = {}
        for i, mb in enumerate(micro):
            lp, mask = self.logprobs(mb, temperature)
            loss, m = self._loss(mb, lp, mask, olds[i], refs[i])
            weight = float(mask.sum()) / max(1, total_tokens)
            (loss * weight).backward()
            for k, v in m.items():
                sums[k] = sums.get(k, 0.0) + v * (weight if k != "num_tokens" else 1.0)
        if anchor_micro:
            sums.update(self._anchor_backward(anchor_micro))
        sums["grad_norm"] = float(torch.nn.utils.clip_grad_norm_(self.params, self.config.train.max_grad_norm))
        self.optimizer.step()
        return sums

    def anchor_nll(self, samples: Sequence[Sample | Anchor]) -> tuple[torch.Tensor, int]:
        """(sum of the completion tokens' negative log-likelihood, token count): ``anchor.loss = "nll"``."""
        lp, mask = self.logprobs(samples, temperature=1.0)
        return -(lp * mask).sum(), int(mask.sum())

    def _anchor_backward(self, anchor_micro) -> dict[str, float]:
        tokens = sum(len(s.completion_ids) for mb in anchor_micro for s in mb)
        total = 0.0
        for mb in anchor_micro:
            loss, _ = self.anchor_kl(mb) if self.config.anchor.loss == "kl" else self.anchor_nll(mb)
            (loss * (self.config.anchor.coef / max(1, tokens))).backward()
            total += float(loss.detach())
        return {f"anchor_{self.config.anchor.loss}": total / max(1, tokens), "anchor_tokens": float(tokens)}

    def _samples(self, groups: Sequence[Sequence[Rollout]]) -> list[Sample]:
        samples = []
        size = len(groups[0]) if groups else 0
        for group in groups:
            if len(group) != size:
                raise ValueError("every group must have the same size")
        if not groups:
            return []
        rewards = torch.tensor([r.reward for g in groups for r in g])
        adv = group_advantages(rewards, size, self.config.grpo.eps).tolist()
        keep = select_rft(groups, self.config.train.rft_max_per_task)
        for r, a, k in zip((r for g in groups for r in g), adv, keep, strict=True):
            samples.append(Sample(r.prompt_token_ids, r.completion_token_ids, round(a, 6), k))
        return samples

    @torch.no_grad()
    def _reference(self, micro, temperature: float, off_policy: bool) -> tuple[list, list]:
        refs: list = []
        olds: list = []
        grpo = self.config.train.algo == "grpo"
        for mb in micro:
            if grpo and self.config.grpo.kl_coef > 0:
                with self.model.disable_adapter():
                    refs.append(self.logprobs(mb, temperature)[0])
            else:
                refs.append(None)
            olds.append(self.logprobs(mb, temperature)[0] if grpo and off_policy else None)
        return refs, olds

    def _loss(self, mb, lp, mask, old, ref) -> tuple[torch.Tensor, dict[str, float]]:
        if self.config.train.algo == "rft":
            keep = torch.tensor([1.0 if s.keep else 0.0 for s in mb])
            return rft_loss(lp, mask, keep)
        adv = torch.tensor([s.advantage for s in mb])
        old = lp.detach() if old is None else old
        ref = lp.detach() if ref is None else ref  # kl_coef == 0: no reference forward, KL term is 0
        return grpo_loss(lp, old, ref, adv, mask, self.config.grpo)
