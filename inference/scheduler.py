"""Continuous batching: which sequences run each step, within a token budget and the KV pool."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

from inference.batch import BlockCopy, SampledToken, SeqChunk, StepBatch
from inference.kv_cache.manager import KVCacheManager
from inference.request import FinishReason
from inference.sequence import Sequence, SequenceStatus


@dataclass
class SchedulerOutput:
    """One step's plan: ``batch.chunks[i]`` belongs to ``scheduled[i]``."""

    batch: StepBatch
    scheduled: list[Sequence] = field(default_factory=list)
    preempted: list[Sequence] = field(default_factory=list)


class Scheduler:
    """Waiting and running queues over one ``KVCacheManager``.

    Each step: decodes of running sequences first, then their prefill chunks, then new sequences, all by
    rank (priority, then arrival: FIFO within a priority), until ``max_num_batched_tokens`` is spent.
    When blocks run out the highest-ranked (lowest priority, newest) running sequence is preempted: its
    blocks are freed and it is recomputed later. A waiting sequence only preempts strictly lower priority.

    Speculative decoding: a decoding sequence with ``draft_token_ids`` runs its newest token and the drafts
    in one chunk (drafts are trimmed to the budget and dropped rather than preempting anyone for them);
    ``update`` keeps the drafts the model accepted and rolls the KV of the rest back.

    A request with n > 1 samples (and a prompt of 2+ tokens) starts as one sequence; once all but the last
    prompt token are computed, n - 1 siblings are forked sharing its blocks by reference, and each computes
    the last prompt token itself (copy-on-write of the shared partial block) before sampling.
    Invariant: a sequence is in exactly one of ``waiting`` / ``running`` unless finished, and only running
    sequences hold blocks.
    """

    def __init__(self, kv: KVCacheManager, max_num_seqs: int, max_num_batched_tokens: int) -> None:
        self.kv = kv
        self.max_num_seqs = max_num_seqs
        self.max_num_batched_tokens = max_num_batched_tokens
        self.waiting: list[Sequence] = []
        self.running: list[Sequence] = []
        self.requests: dict[str, list[Sequence]] = {}
        self._seq_ids = itertools.count()
        self._arrivals = itertools.count()
        self.num_preemptions = 0

    def new_seq_id(self) -> int:
        return next(self._seq_ids)

    def add(self, seqs: list[Sequence]) -> None:
        """Queue one request's initial sequences (they share an arrival number)."""
        arrival = next(self._arrivals)
        for seq in seqs:
            seq.arrival = arrival
            seq.status = SequenceStatus.WAITING
            self.waiting.append(seq)
            self.requests.setdefault(seq.request_id, []).append(seq)

    def has_unfinished(self) -> bool:
        return bool(self.waiting or self.running)

    def finish(self, seq: Sequence, reason: FinishReason) -> None:
        """End one sequence and free its blocks now."""
        if seq.is_finished:
            return
        if seq.status is SequenceStatus.RUNNING:
            self.running.remove(seq)
        else:
            self.waiting.remove(seq)
        self.kv.free(seq)
        seq.draft_token_ids = []
        seq.status = SequenceStatus.FINISHED
        seq.finish_reason = reason
        seq.num_forks_pending = 0
        seqs = self.requests.get(seq.request_id, [])
        if all(s.is_finished for s in seqs):
            self.requests.pop(seq.request_id, None)

    def abort(self, request_id: str) -> list[Sequence]:
        """Finish every unfinished sequence of a request; unknown or finished ids are a no-op."""
        seqs = [s for s in self.requests.get(request_id, []) if not s.is_finished]
        for seq in seqs:
            self.finish(seq, FinishReason.ABORT)
        return seqs

    def schedule(self) -> SchedulerOutput:
        self._fork_ready()
        plan = _Plan(self.max_num_batched_tokens)
        ranked = sorted(self.running, key=Sequence.rank)
        decodes = [s for s in ranked if s.num_uncomputed == 1]
        for seq in decodes + [s for s in ranked if s.num_uncomputed > 1]:
            if plan.budget == 0:
                break
            if seq.status is SequenceStatus.RUNNING:
                self._schedule_running(seq, plan)
        for seq in sorted(self.waiting, key=Sequence.rank):
            if plan.budget == 0 or not self._admit(seq, plan):
                break
        return self._build(plan)

    def update(self, out: SchedulerOutput, sampled: list[SampledToken]) -> list[tuple[Sequence, int]]:
        """Advance the computed positions, append sampled (and accepted draft) tokens, roll back rejected
        drafts; returns ``(sequence, number of tokens appended)`` for each sequence that grew."""
        by_seq = {t.seq_id: t for t in sampled}
        grown = []
        for seq in self.running:
            seq.draft_token_ids = []  # drafts are for one step, scheduled or not
        for seq, chunk in zip(out.scheduled, out.batch.chunks, strict=True):
            if seq.status is not SequenceStatus.RUNNING:
                continue
            if not chunk.sample:
                seq.num_computed_tokens += len(chunk.token_ids)
                self.kv.cache_full_blocks(seq)
                continue
            token = by_seq[seq.seq_id]
            num_drafts = chunk.num_draft_tokens
            accepted = len(token.accepted)
            if token.accepted != tuple(chunk.token_ids[len(chunk.token_ids) - num_drafts:][:accepted]):
                raise ValueError(f"seq {seq.seq_id}: accepted tokens are not a prefix of the drafts")
            seq.num_computed_tokens += len(chunk.token_ids) - num_drafts + accepted
            seq.num_draft_tokens += num_drafts
            seq.num_accepted_tokens += accepted
            seq.token_ids.extend(token.token_ids)
            if seq.params.logprobs:
                seq.logprobs.extend(lp if lp is not None else float("nan") for lp in token.logprobs)
            if num_drafts:
                self.kv.rollback(seq)
            self.kv.cache_full_blocks(seq)
            grown.append((seq, accepted + 1))
        return grown

    def _schedule_running(self, seq: Sequence, plan: _Plan) -> None:
        num_new = min(seq.num_uncomputed, plan.budget)
        if num_new <= 0:
            return
        drafts = seq.draft_token_ids[:plan.budget - num_new] if seq.is_decoding else []
        if drafts and (copies := self.kv.allocate(seq, num_new + len(drafts))) is not None:
            plan.add(seq, num_new, copies, drafts)
            return
        seq.draft_token_ids = []  # no room for drafts: run the plain decode (preempting if need be)
        while (copies := self.kv.allocate(seq, num_new)) is None:
            victim = max(self.running, key=Sequence.rank)
            self._preempt(victim, plan)
            if victim is seq:
                return
        plan.add(seq, num_new, copies)

    def _admit(self, seq: Sequence, plan: _Plan) -> bool:
        """Try to start a waiting sequence; False stops admission for this step."""
        group = 1 + seq.num_forks_pending
        while len(self.running) + group > self.max_num_seqs:
            if not self._preempt_lower(seq, plan):
                return False
        prefix = self.kv.match_prefix(seq)
        num_new = min(seq.num_uncomputed - len(prefix) * self.kv.block_size, plan.budget)
        while (copies := self.kv.allocate(seq, num_new, prefix)) is None:
            if not self._preempt_lower(seq, plan):
                return False
        if seq.num_cached_tokens is None:
            seq.num_cached_tokens = len(prefix) * self.kv.block_size
            self.kv.record_prefix_hit(seq, seq.num_cached_tokens)
        self.waiting.remove(seq)
        self.running.append(seq)
        seq.status = SequenceStatus.RUNNING
        plan.add(seq, num_new, copies)
        return True

    def _preempt_lower(self, seq: Sequence, plan: _Plan) -> bool:
        lower = [s for s in self.running if s.priority > seq.priority]
        if not lower:
            return False
        self._preempt(max(lower, key=Sequence.rank), plan)
        return True

    def _preempt(self, seq: Sequence, plan: _Plan) -> None:
        """Free a running sequence's blocks and queue it for recompute (dropping it from this step)."""
        plan.drop(seq)
        self.running.remove(seq)
        self.kv.free(seq)
        seq.draft_token_ids = []
        seq.status = SequenceStatus.WAITING
        seq.num_preemptions += 1
        self.num_preemptions += 1
        self.waiting.append(seq)

    def _fork_ready(self) -> None:
        for parent in list(self.running):
            if not parent.num_forks_pending or parent.num_uncomputed > 0:
                continue
            for k in range(1, parent.num_forks_pending + 1):
                child = Sequence(
                    seq_id=self.new_seq_id(), request_id=parent.request_id,
                    token_ids=parent.token_ids[:parent.num_prompt_tokens], params=parent.params,
                    priority=parent.priority, arrival=parent.arrival, sample_index=parent.sample_index + k,
                    extra_key=parent.extra_key, adapter_id=parent.adapter_id,
                    status=SequenceStatus.RUNNING, num_cached_tokens=parent.num_cached_tokens,
                )
                self.kv.fork(parent, child)
                self.running.append(child)
                self.requests[parent.request_id].append(child)
            parent.num_forks_pending = 0

    def _build(self, plan: _Plan) -> SchedulerOutput:
        out = SchedulerOutput(StepBatch(), preempted=plan.preempted)
        for seq, num_new in plan.num_new.items():
            start = seq.num_computed_tokens
            sample = start + num_new == seq.num_tokens
            drafts = plan.drafts.get(seq, [])
            out.batch.chunks.append(SeqChunk(
                seq_id=seq.seq_id, token_ids=seq.token_ids[start:start + num_new] + drafts,
                num_computed_tokens=start, block_table=list(seq.block_table), sample=sample, params=seq.params,
                num_generated=seq.num_generated, sample_index=seq.sample_index, adapter_id=seq.adapter_id,
                history=seq.token_ids if sample and seq.params.penalized else None, num_draft_tokens=len(drafts),
                num_prompt_tokens=seq.num_prompt_tokens,
            ))
            out.batch.copies.extend(plan.copies[seq])
            out.scheduled.append(seq)
        return out


class _Plan:
    """What one step schedules so far; preempting a planned sequence refunds its tokens."""

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self.num_new: dict[Sequence, int] = {}
        self.copies: dict[Sequence, list[BlockCopy]] = {}
        self.drafts: dict[Sequence, list[int]] = {}
        self.preempted: list[Sequence] = []

    def add(self, seq: Sequence, num_new: int, copies: list[BlockCopy], drafts: list[int] | None = None) -> None:
        self.num_new[seq] = num_new
        self.copies[seq] = copies
        if drafts:
            self.drafts[seq] = drafts
        self.budget -= num_new + len(drafts or ())

    def drop(self, seq: Sequence) -> None:
        self.budget += self.num_new.pop(seq, 0) + len(self.drafts.pop(seq, ()))
        self.copies.pop(seq, None)
        self.preempted.append(seq)
