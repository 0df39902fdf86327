"""Draft-model drafts: a smaller model with the same tokenizer (the 0.5B for the 1.5B) proposes greedily.

The draft model keeps its own paged KV (its own ``KVCacheManager`` and runner). Each target sequence has a
shadow sequence there holding the target's tokens plus the shadow's last proposals. Before proposing, the
shadow is synced to the target: its KV is rolled back to the longest common prefix (the drafts the target
accepted stay computed) and the target's new tokens are appended; then ``k`` batched greedy steps of the
draft model, one per draft position, over every shadow at once.
"""

from __future__ import annotations

import itertools
import logging
import time
import weakref
from typing import Any

from inference.batch import SeqChunk, StepBatch
from inference.config import CacheConfig, EngineConfig, SpeculativeConfig
from inference.kv_cache.manager import KVCacheManager
from inference.sampling import SamplingParams
from inference.sequence import Sequence, SequenceStatus

log = logging.getLogger(__name__)
GREEDY = SamplingParams(temperature=0.0, max_tokens=1)


class DraftModelProposer:
    """Greedy drafts from a draft model over its own paged KV cache (one shadow sequence per target)."""

    def __init__(self, config: SpeculativeConfig, target_runner: Any, num_blocks: int | None = None,
                 runner: Any = None) -> None:
        target = target_runner.config
        if runner is None:
            from inference.model_runner import ModelRunner

            runner = ModelRunner(EngineConfig(
                model=config.draft_model or "", device=target.device, dtype=target.dtype,
                weight_quant=config.draft_weight_quant, max_model_len=target_runner.max_model_len,
                cache=CacheConfig(block_size=target.cache.block_size), num_threads=target.num_threads))
        check_same_vocabulary(target_runner.tokenizer, runner.tokenizer)
        self.runner = runner
        blocks = num_blocks or target.max_num_seqs * -(-target_runner.max_model_len // target.cache.block_size)
        runner.allocate_kv(blocks)
        self.kv = KVCacheManager(blocks, target.cache.block_size, enable_prefix_caching=True)
        self._shadows: dict[int, tuple[weakref.ref[Sequence], Sequence]] = {}
        self._ids = itertools.count()
        self.step_seconds = 0.0
        """Running wall time of one draft step (one token for every shadow), prompts' catch-up excluded."""

    def propose(self, seqs: list[Sequence], limits: list[int]) -> list[list[int]]:
        self._drop_finished()
        active = [(shadow, limit) for seq, limit in zip(seqs, limits, strict=True)
                  if limit > 0 and (shadow := self._sync(seq)) is not None]
        for step in range(max((limit for _, limit in active), default=0)):
            stepping = [shadow for shadow, limit in active if step < limit]
            done = self._step(stepping, keep={id(s) for s, _ in active})
            active = [(shadow, limit) for shadow, limit in active if shadow in done or step >= limit]
        out = []
        for seq in seqs:
            entry = self._shadows.get(id(seq))
            out.append(entry[1].token_ids[seq.num_tokens:] if entry else [])
        return out

    def _sync(self, seq: Sequence) -> Sequence | None:
        """The shadow of ``seq`` with the target's tokens and KV rolled back to what they share."""
        entry = self._shadows.get(id(seq))
        if entry is None or entry[0]() is not seq:
            if entry is not None:
                self._free(entry[1])
            shadow = Sequence(seq_id=next(self._ids), request_id=seq.request_id, token_ids=[], params=GREEDY,
                              status=SequenceStatus.RUNNING)
            shadow.num_prompt_tokens = seq.num_prompt_tokens  # rows computed the way the target computes them
            self._shadows[id(seq)] = (weakref.ref(seq), shadow)
        else:
            shadow = entry[1]
        common = 0
        for a, b in zip(shadow.token_ids, seq.token_ids, strict=False):
            if a != b:
                break
            common += 1
        self.kv.rollback(shadow, min(common, seq.num_tokens - 1))
        shadow.token_ids = list(seq.token_ids)
        if not shadow.block_table:
            prefix = self.kv.match_prefix(shadow)
            if self.kv.allocate(shadow, 0, prefix) is None:
                return None
        return shadow

    def _step(self, shadows: list[Sequence], keep: set[int]) -> list[Sequence]:
        """One greedy draft token for each shadow (computing whatever it has not computed yet); returns the
        shadows that got one. When the draft KV runs short, shadows not in ``keep`` are freed first."""
        chunks, ready, copies_all = [], [], []
        for shadow in shadows:
            num_new = shadow.num_tokens - shadow.num_computed_tokens
            copies = self.kv.allocate(shadow, num_new)
            if copies is None and self._free_idle(keep):
                copies = self.kv.allocate(shadow, num_new)
            if copies is None:
                self._free(shadow)
                continue
            start = shadow.num_computed_tokens
            chunks.append(SeqChunk(seq_id=shadow.seq_id, token_ids=shadow.token_ids[start:], sample=True,
                                   num_computed_tokens=start, block_table=list(shadow.block_table),
                                   params=GREEDY, num_prompt_tokens=shadow.num_prompt_tokens))
            ready.append(shadow)
            copies_all.extend(copies)
        if not chunks:
            return []
        batch = StepBatch(chunks=chunks, copies=copies_all)
        start = time.perf_counter()
        sampled = {t.seq_id: t.token_id for t in self.runner.execute(batch)}
        if all(len(c.token_ids) <= 2 for c in chunks):  # a plain draft step, not a prompt catching up
            seconds = time.perf_counter() - start
            self.step_seconds = seconds if not self.step_seconds else 0.8 * self.step_seconds + 0.2 * seconds
        for shadow in ready:
            shadow.num_computed_tokens = shadow.num_tokens
            self.kv.cache_full_blocks(shadow)
            shadow.token_ids.append(sampled[shadow.seq_id])
        return ready

    def _free(self, shadow: Sequence) -> None:
        self.kv.free(shadow)
        shadow.token_ids = []

    def _free_idle(self, keep: set[int]) -> bool:
        """Free the KV of shadows not drafting now; True if any held blocks."""
        freed = False
        for _ref, shadow in self._shadows.values():
            if id(shadow) not in keep and shadow.block_table:
                self._free(shadow)
                freed = True
        return freed

    def _drop_finished(self) -> None:
        for key, (ref, shadow) in list(self._shadows.items()):
            seq = ref()
            if seq is None or seq.is_finished:
                self._free(shadow)
                del self._shadows[key]


def check_same_vocabulary(target: Any, draft: Any) -> None:
    """Raise ValueError unless both tokenizers map text to the same ids (drafts are token ids)."""
    probe = "def f(x):\n    return x + 1  # é\n"
    same = (len(target) == len(draft) and target.encode(probe, add_special_tokens=False)
            == draft.encode(probe, add_special_tokens=False))
    if not same:
        raise ValueError("the draft model's tokenizer differs from the target model's; drafts would be "
                         "meaningless token ids")

