"""The engine: requests in, streamed outputs out; Scheduler + KVCacheManager + ModelRunner."""

from __future__ import annotations

import itertools
import time
from collections.abc import Sequence as Seq
from pathlib import Path
from typing import Any

from inference.adapter_registry import AdapterRegistry
from inference.config import EngineConfig
from inference.engine_stats import EngineStats
from inference.kv_cache.manager import KVCacheManager
from inference.kv_cache.sizing import num_kv_blocks
from inference.request import Priority, RequestOutput
from inference.request_state import RequestState
from inference.sampling import SamplingParams
from inference.scheduler import Scheduler
from inference.sequence import Sequence
from inference.stop_requests import StepInterrupted, StopRequests, may_stop
from inference.token_healing import Healing


class Engine:
    """Continuous-batching generation over one model runner.

    Every request added is eventually reported finished exactly once (finish reason STOP, LENGTH or ABORT),
    and when ``has_unfinished()`` is False no KV block is owned. Not thread-safe: use ``AsyncEngine``
    to share one engine between threads or asyncio tasks.
    """

    def __init__(self, config: EngineConfig, runner: Any = None) -> None:
        if runner is None:
            from inference.model_runner import ModelRunner

            runner = ModelRunner(config)
        self.config = config
        self.runner = runner
        self.max_model_len = min(config.max_model_len or runner.max_model_len, runner.max_model_len)
        self.block_size = config.cache.block_size
        blocks_per_seq = -(-self.max_model_len // self.block_size)
        self.num_blocks = num_kv_blocks(config.cache, runner.bytes_per_block(), config.device,
                                        max_useful_blocks=config.max_num_seqs * blocks_per_seq,
                                        max_model_len=self.max_model_len)
        runner.allocate_kv(self.num_blocks)
        self.kv = KVCacheManager(self.num_blocks, self.block_size, config.cache.enable_prefix_caching)
        self.scheduler = Scheduler(self.kv, config.max_num_seqs, config.max_num_batched_tokens)
        from inference.speculative import make_speculator

        self.speculator = make_speculator(config.speculative, runner, self.max_model_len, self.num_blocks)
        self._requests: dict[str, RequestState] = {}
        self._pending: list[RequestOutput] = []
        self._request_ids = itertools.count()
        self._num_steps = self._num_tokens = self._num_generated = self._max_batch = 0
        self._num_finished = 0
        self._adapters = AdapterRegistry()
        self._num_drafts = self._num_accepted = 0
        self._stops = StopRequests()
        self._healing = Healing(runner.tokenizer, runner.eos_token_ids)
        self._num_interrupted = 0

    @classmethod
    def from_config(cls, config: EngineConfig) -> Engine:
        return cls(config)

    @property
    def tokenizer(self) -> Any:
        return self.runner.tokenizer

    def add_request(self, prompt: str | list[int], params: SamplingParams | None = None,
                    priority: Priority = Priority.INTERACTIVE, adapter_id: str | None = None,
                    request_id: str | None = None) -> str:
        """Queue a request; raises ValueError (naming the problem) before any work if it cannot run."""
        params = SamplingParams() if params is None else params
        if not isinstance(params, SamplingParams):
            raise ValueError(f"params must be SamplingParams, got {type(params).__name__}")
        priority = Priority(priority)
        token_ids = self._tokenize(prompt)
        self._validate(token_ids, params)
        adapter_key = self._adapters.resolve(adapter_id)
        if request_id is None:
            request_id = f"req-{next(self._request_ids)}"
        if request_id in self._requests:
            raise ValueError(f"request_id {request_id!r} is already in use")
        healed = ""
        if params.heal:
            token_ids, healed = self._healing.take_back(request_id, token_ids)
        self._requests[request_id] = RequestState(request_id, token_ids, params, self.tokenizer,
                                                  set(self.runner.eos_token_ids), self.max_model_len, healed)
        fork = params.n > 1 and len(token_ids) > 1
        num_seqs = 1 if fork else params.n
        seqs = [Sequence(seq_id=self.scheduler.new_seq_id(), request_id=request_id, token_ids=list(token_ids),
                         params=params, priority=priority, sample_index=i, extra_key=adapter_key,
                         adapter_id=adapter_key, num_forks_pending=params.n - 1 if fork else 0)
                for i in range(num_seqs)]
        self.scheduler.add(seqs)
        return request_id

    def prepare_healing(self) -> None:
        """Index the vocabulary for token healing now, not on the first healed request (editors heal every
        keystroke's prompt: their first suggestion should not pay it)."""
        self._healing.prepare()

    def request_stop(self, request_id: str) -> None:
        """Thread-safe, from any thread: an ``abort(request_id)`` is on its way. If every request of the step
        running now is so marked, the step ends between two layers, keeping nothing (``abort`` still has to
        follow on the engine's thread; it unmarks the request)."""
        self._stops.add(request_id)

    def abort(self, request_id: str) -> None:
        """Stop a request and free its blocks now; the next ``step()`` reports it (finish reason ABORT).

        Unknown or already finished ids are ignored.
        """
        self._stops.discard(request_id)
        self._healing.forget(request_id)
        state = self._requests.pop(request_id, None)
        if state is None:
            return
        self.scheduler.abort(request_id)
        state.abort()
        self._num_finished += 1
        self._pending.append(state.output())

    def has_unfinished(self) -> bool:
        return bool(self._requests or self._pending)

    def step(self) -> list[RequestOutput]:
        """Run one batch; returns an output for every request that made visible progress or finished."""
        outputs, self._pending = self._pending, []
        if not self.scheduler.has_unfinished():
            return outputs
        if self.speculator is not None:
            self.speculator.propose(self.scheduler.running)
        self._healing.hold_drafts(self.scheduler.running)
        plan = self.scheduler.schedule()
        self._healing.constrain(plan.scheduled, plan.batch.chunks)
        if not plan.batch.chunks:
            raise RuntimeError("scheduler planned an empty step with unfinished requests")
        started = time.perf_counter()
        step_requests = [seq.request_id for seq in plan.scheduled]
        try:
            check = self._stops.check(step_requests) if may_stop(plan.batch.chunks) else None
            sampled = self.runner.execute(plan.batch, check=check)
        except StepInterrupted:  # every request of the step was aborted meanwhile: end them now, keep nothing
            self._num_interrupted += 1
            for request_id in dict.fromkeys(step_requests):
                self.abort(request_id)
            outputs, self._pending = outputs + self._pending, []
            return outputs
        if self.speculator is not None and all(c.num_prompt_rows == 0 for c in plan.batch.chunks):
            self.speculator.observe_step(time.perf_counter() - started, plan.batch.num_tokens)
        grown = self.scheduler.update(plan, sampled)
        self._num_steps += 1
        self._num_tokens += plan.batch.num_tokens
        self._max_batch = max(self._max_batch, len(plan.batch.chunks))
        if len(self._adapters.resident) > len(self._adapters.current):
            self._drop_unused_adapters()
        self._record_drafts(plan.batch.chunks, sampled)
        progressed: dict[str, RequestState] = {}
        for seq, num_new in grown:
            state = self._requests[seq.request_id]
            first = seq.num_tokens - num_new
            for index in range(first, seq.num_tokens):
                self._num_generated += 1
                reason = state.on_token(seq, index)
                if reason is not None:
                    seq.truncate(index + 1)  # accepted drafts after a stop are not output
                    self.scheduler.finish(seq, reason)
                    state.finish(seq.sample_index, reason)
                    break
            progressed[seq.request_id] = state
        for request_id, state in progressed.items():
            out = state.output()
            if state.finished:
                del self._requests[request_id]
                self._healing.forget(request_id)
                self._num_finished += 1
            outputs.append(out)
        return outputs

    def _record_drafts(self, chunks: list, sampled: list) -> None:
        accepted = {t.seq_id: len(t.accepted) for t in sampled}
        for chunk in chunks:
            if chunk.num_draft_tokens:
                self._num_drafts += chunk.num_draft_tokens
                self._num_accepted += accepted.get(chunk.seq_id, 0)
                if self.speculator is not None:
                    self.speculator.observe(chunk.num_draft_tokens, accepted.get(chunk.seq_id, 0))

    def generate(self, prompts: Seq[str | list[int]] | str,
                 params: SamplingParams | Seq[SamplingParams] | None = None,
                 priority: Priority = Priority.INTERACTIVE, adapter_id: str | None = None) -> list[RequestOutput]:
        """Run prompts to completion (all under ``adapter_id``, see ``add_request``); final outputs in input order.

        Outputs of requests added separately are kept and returned by the next ``step()``.
        """
        if isinstance(prompts, str) or (prompts and isinstance(prompts[0], int)):
            prompts = [prompts]  # type: ignore[list-item]
        param_list = list(params) if isinstance(params, (list, tuple)) else [params] * len(prompts)
        if len(param_list) != len(prompts):
            raise ValueError(f"got {len(param_list)} params for {len(prompts)} prompts")
        ids: list[str] = []
        try:
            for prompt, p in zip(prompts, param_list, strict=True):
                ids.append(self.add_request(prompt, p, priority=priority, adapter_id=adapter_id))
        except ValueError:
            for request_id in ids:
                self.abort(request_id)
            self._pending.clear()
            raise
        wanted, final, others = set(ids), {}, []
        while len(final) < len(ids):
            for out in self.step():
                if out.request_id not in wanted:
                    others.append(out)  # another caller's request: handed out by the next step()
                elif out.finished:
                    final[out.request_id] = out
        self._pending = others + self._pending
        return [final[request_id] for request_id in ids]

    # --- LoRA adapters (inference/adapter_registry.py) -------------------------------------------------------
    @property
    def adapters(self) -> dict[str, str]:
        """Loaded adapters: name -> current key ("name@version")."""
        return dict(self._adapters.current)

    @property
    def adapter_key(self) -> str | None:
        """Key of the default adapter (what requests without ``adapter_id`` run under; None: the base model)."""
        return self._adapters.resolve(None)

    def load_adapter(self, path: Path | str, name: str | None = None) -> str:
        """Load the peft LoRA folder ``path`` as ``name`` (default: the folder's name); returns its new key.

        Requests that name it (``adapter_id=name``) run with its deltas, unmerged, in the same steps as requests
        of other adapters or of the base model. Loading a name again is a hot reload: new requests get the new
        weights, requests in flight finish with the ones they started with. Raises ``inference.lora.AdapterError``
        (a ValueError) for an unreadable, unsupported or mismatched adapter, changing nothing.
        """
        if not getattr(self.runner, "supports_adapters", False):
            raise ValueError("this model runner does not support adapters")
        from inference.lora import read_adapter

        name = name or Path(path).name
        adapter = read_adapter(Path(path))
        key = self._adapters.new_key(name)
        self.runner.add_adapter(key, adapter)
        self._adapters.add(name, key)
        self._drop_unused_adapters()
        return key

    def unload_adapter(self, name: str) -> None:
        """New requests can no longer use ``name``; requests in flight finish with it, then its weights go."""
        self._adapters.remove(name)
        self._drop_unused_adapters()

    def set_adapter(self, path: Path | str | None, name: str | None = None) -> str | None:
        """Load ``path`` (``load_adapter``) and make it the default adapter of requests that name none,
        unloading the previous default; None: back to the base model. Returns the new default key."""
        previous = self._adapters.default
        if path is None:
            if previous is not None:
                self.unload_adapter(previous)
            return None
        name = name or Path(path).name
        key = self.load_adapter(path, name)
        self._adapters.default = name
        if previous is not None and previous != name:
            self.unload_adapter(previous)
        return key

    def _drop_unused_adapters(self) -> None:
        in_use = {s.adapter_id for s in (*self.scheduler.waiting, *self.scheduler.running)}
        for key in self._adapters.collect(in_use):
            self.runner.remove_adapter(key)

    def reset_prefix_cache(self) -> None:
        """Forget every cached prompt block not in use (benchmarks that time fresh prompts)."""
        self.kv.pool.reset_cache()

    def stats(self) -> EngineStats:
        pool, prefix = self.kv.pool, self.kv.stats
        return EngineStats(
            num_waiting=len(self.scheduler.waiting), num_running=len(self.scheduler.running),
            num_blocks_total=pool.num_blocks, num_blocks_free=pool.num_free, num_blocks_cached=pool.num_cached,
            num_blocks_owned=pool.num_owned, prefix_hit_rate=prefix.token_hit_rate,
            prefix_hit_tokens=prefix.num_hit_tokens, prefix_queried_tokens=prefix.num_queried_tokens,
            prefix_hit_requests=prefix.num_hit_requests, num_tokens_processed=self._num_tokens,
            num_generated_tokens=self._num_generated, num_steps=self._num_steps, max_batch_size=self._max_batch,
            num_preemptions=self.scheduler.num_preemptions, num_requests_finished=self._num_finished,
            num_draft_tokens=self._num_drafts, num_accepted_tokens=self._num_accepted,
            num_interrupted_steps=self._num_interrupted,
        )

    def _tokenize(self, prompt: str | list[int]) -> list[int]:
        if isinstance(prompt, str):
            token_ids = list(self.tokenizer.encode(prompt))
        elif isinstance(prompt, (list, tuple)) and all(isinstance(t, int) for t in prompt):
            token_ids = list(prompt)
        else:
            raise ValueError("prompt must be a str or a list of int token ids")
        if not token_ids:
            raise ValueError("prompt must not be empty")
        vocab_size = self.runner.model_config.vocab_size
        if any(t < 0 or t >= vocab_size for t in token_ids):
            raise ValueError(f"prompt token ids must be in [0, {vocab_size})")
        return token_ids

    def _validate(self, token_ids: list[int], params: SamplingParams) -> None:
        if len(token_ids) > self.max_model_len:
            raise ValueError(f"prompt has {len(token_ids)} tokens, more than max_model_len={self.max_model_len}")
        if params.n > self.config.max_num_seqs:
            raise ValueError(f"n={params.n} is more than max_num_seqs={self.config.max_num_seqs}")
        longest = min(len(token_ids) + params.max_tokens - 1, self.max_model_len)  # positions ever in KV
        if -(-longest // self.block_size) > self.num_blocks:
            raise ValueError(
                f"max_tokens={params.max_tokens}: prompt + output needs more than the {self.num_blocks} KV "
                "blocks of the cache"
            )
