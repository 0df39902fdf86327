"""``InProcessClient``: the engine client over an ``AsyncEngine`` inside the language server's process."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from typing import Any

from inference.config import EngineConfig
from inference.repo_adapter_sync import RepoAdapterSync
from inference.request import Priority
from lsp.engine_client import Chunk, ClientStats, EngineError, Generation, Sample, Samples, tracked


class InProcessClient:
    """An AsyncEngine in this process; the model loads in a background thread on ``start()``.

    ``engine``: an AsyncEngine to use instead of loading ``model`` (the RL loop evaluates its own rollout
    engine, LoRA adapter included, this way). The client owns it: ``aclose`` shuts it down, which stops its
    thread and leaves the ``Engine`` under it usable.
    """

    def __init__(self, model: str, *, engine_options: dict[str, Any] | None = None,
                 home: str | os.PathLike[str] | None = None, engine: Any = None) -> None:
        self.model = model
        self.engine_options = engine_options or {}
        self._given = engine
        self.stats = ClientStats()
        self._engine: Any = None
        self._loading: asyncio.Future[Any] | None = None
        self._repos = RepoAdapterSync(self._load_adapter, home=home)
        """Repository adapters, loaded into this engine when a document of their root is first completed."""

    def start(self) -> None:
        """Begin loading the model off the event loop (idempotent)."""
        if self._loading is None:
            self._loading = asyncio.get_running_loop().run_in_executor(None, self._load)

    def _load(self) -> Any:
        from inference import async_engine, engine

        if self._given is not None:
            return self._given
        try:
            config = EngineConfig(model=self.model, **self.engine_options)
            loaded = engine.Engine.from_config(config)
            loaded.prepare_healing()  # the editor heals its prompts (spm): not on the first suggestion
            return async_engine.AsyncEngine(loaded)
        except Exception as exc:  # noqa: BLE001 - any load failure is reported as one EngineError
            raise EngineError(f"cannot load model {self.model!r}: {exc}") from exc

    async def ready(self) -> None:
        await self.engine()

    async def engine(self) -> Any:
        self.start()
        assert self._loading is not None
        self._engine = await asyncio.shield(self._loading)
        return self._engine

    async def adapter_for(self, path: str) -> str | None:
        entry = self._repos.find(path)  # one stat of the registry's STAMP while nothing was promoted
        if entry is None:
            return None
        if self._repos.is_current(entry):
            return self._repos.served(entry)
        await self.engine()
        return await asyncio.to_thread(self._repos.served, entry)  # loads (or reloads) it off the event loop

    def _load_adapter(self, path: Any, name: str) -> str:
        return self._engine.load_adapter(path, name)

    def stream(self, gen: Generation) -> AsyncIterator[Chunk]:
        return tracked(self.stats, self._stream(gen))

    async def _stream(self, gen: Generation) -> AsyncIterator[Chunk]:
        from inference.catalog import chat_defaults
        from inference.sampling import SamplingParams

        aeng = await self.engine()
        sampling = chat_defaults(self.model).as_dict() if gen.recommended else {"temperature": gen.temperature}
        params = SamplingParams(max_tokens=gen.max_tokens, stop=list(gen.stop), seed=gen.seed, heal=gen.heal,
                                **sampling)
        agen = aeng.generate(gen.prompt, params, priority=gen.priority, request_id=gen.request_id,
                             adapter_id=gen.adapter)
        try:
            async for out in agen:
                comp = out.outputs[0]
                yield Chunk(comp.text, comp.delta_text, out.finished, out.num_prompt_tokens, out.num_cached_tokens)
        finally:
            await agen.aclose()  # NOTE: closing AsyncEngine.generate early aborts the request

    def samples(self, gen: Generation, n: int) -> AsyncIterator[Samples]:
        return tracked(self.stats, self._samples(gen, n))

    async def _samples(self, gen: Generation, n: int) -> AsyncIterator[Samples]:
        from inference.sampling import SamplingParams

        aeng = await self.engine()
        params = SamplingParams(temperature=gen.temperature, max_tokens=gen.max_tokens, stop=list(gen.stop),
                                n=n, greedy_first=gen.greedy_first and n > 1, logprobs=True, heal=gen.heal)
        agen = aeng.generate(gen.prompt, params, priority=gen.priority, request_id=gen.request_id,
                             adapter_id=gen.adapter)
        try:
            async for out in agen:
                samples = [Sample(o.index, o.text, sum(o.logprobs) if o.logprobs is not None else None,
                                  o.finished) for o in out.outputs]
                yield Samples(samples, out.finished, out.num_prompt_tokens, out.num_cached_tokens)
        finally:
            await agen.aclose()

    def chat(self, messages: list[dict[str, str]], max_tokens: int,
             temperature: float | None = None, *, seed: int | None = None) -> AsyncIterator[Chunk]:
        return tracked(self.stats, self._chat(messages, max_tokens, temperature, seed))

    async def _chat(self, messages: list[dict[str, str]], max_tokens: int,
                    temperature: float | None, seed: int | None) -> AsyncIterator[Chunk]:
        aeng = await self.engine()
        prompt = aeng.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        gen = Generation(prompt=prompt, max_tokens=max_tokens, temperature=temperature or 0.0, priority=Priority.CHAT,
                         seed=seed, recommended=temperature is None)
        async for chunk in self._stream(gen):
            yield chunk

    def engine_stats(self) -> dict[str, Any]:
        return {} if self._engine is None else _plain(self._engine.stats())

    def count_tokens(self, text: str) -> int | None:
        return None if self._engine is None else len(self._engine.tokenizer.encode(text))

    def max_prompt_tokens(self, max_tokens: int) -> int | None:
        return None if self._engine is None else self._engine.engine.max_model_len - max_tokens

    async def aclose(self) -> None:
        if self._engine is not None:
            self._engine.shutdown()
        elif self._given is not None:
            self._given.shutdown()


def _plain(value: Any) -> dict[str, Any]:
    if isinstance(value, dict):
        return value
    as_dict = getattr(value, "as_dict", None)
    return as_dict() if callable(as_dict) else {"repr": repr(value)}
