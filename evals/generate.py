"""Generators: our engine (continuous batching, every request in flight at once) or HF ``generate``.

Both yield a ``Generation`` per request as it finishes, so execution can start before generation ends.
A request the backend refuses (e.g. a prompt longer than the context) yields an empty text with
``error`` set: the run goes on.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from evals.spec import EvalSpec

Key = tuple[str, int]


@dataclass(frozen=True)
class GenRequest:
    key: Key
    prompt: str
    stop: tuple[str, ...]
    max_tokens: int
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int | None = None


@dataclass(frozen=True)
class Generation:
    key: Key
    text: str
    num_tokens: int = 0
    finish_reason: str = ""
    error: str = ""


class Generator(Protocol):
    tokenizer: Any

    def generate(self, requests: list[GenRequest]) -> Iterator[Generation]: ...


def cut_at_stop(text: str, stop: tuple[str, ...]) -> str:
    """Text before the earliest stop string."""
    cut = min((i for i in (text.find(s) for s in stop) if i >= 0), default=len(text))
    return text[:cut]


def engine_settings(config: Any, adapter_dir: str | Path | None = None) -> dict[str, Any]:
    """What decides an engine's answers besides the prompt: every ``EngineConfig`` field, the torch threads it
    runs with, and the sha256 of the adapter's weights (None: the base model). ``dtype``, ``weight_quant`` and
    the KV cache dtype are the ones that run ("auto" resolved on this machine)."""
    import dataclasses

    import torch

    from inference.compute_dtype import resolve_dtype, resolve_kv_dtype, resolve_weight_quant
    from inference.lora import adapter_digest

    settings = json.loads(json.dumps(dataclasses.asdict(config), default=str))
    settings["dtype"] = resolve_dtype(config.dtype, config.device)
    settings["weight_quant"] = resolve_weight_quant(config.weight_quant, config.dtype, config.device)
    settings["cache"]["kv_cache_dtype"] = resolve_kv_dtype(config.cache.kv_cache_dtype, config.dtype, config.device)
    settings["torch_threads"] = config.num_threads or torch.get_num_threads()
    settings["adapter_sha256"] = adapter_digest(Path(adapter_dir)) if adapter_dir else None
    return settings


class EngineGenerator:
    """Submits every request to one ``Engine`` and steps until all have finished."""

    def __init__(self, engine: Any, adapter_id: str | None = None, adapter_dir: str | Path | None = None) -> None:
        self.engine = engine
        self.adapter_id = adapter_id
        self.adapter_dir = adapter_dir
        """The adapter folder ``adapter_id`` was loaded from (its digest goes into the run's identity)."""
        self.tokenizer = engine.tokenizer
        self._ids = itertools.count()

    def settings(self) -> dict[str, Any]:
        return engine_settings(self.engine.config, self.adapter_dir)

    @classmethod
    def load(cls, model: str, adapter: str | None = None, **config: Any) -> EngineGenerator:
        """An engine for ``model`` with the peft LoRA adapter folder ``adapter`` merged (None: base)."""
        from pathlib import Path

        from inference.config import EngineConfig
        from inference.engine import Engine

        engine = Engine.from_config(EngineConfig(model=model, **config))
        key = engine.set_adapter(Path(adapter)) if adapter else None
        return cls(engine, key, adapter)

    def generate(self, requests: list[GenRequest]) -> Iterator[Generation]:
        from inference.request import Priority
        from inference.sampling import SamplingParams

        by_id: dict[str, GenRequest] = {}
        for req in requests:
            params = SamplingParams(temperature=req.temperature, top_p=req.top_p, max_tokens=req.max_tokens,
                                    stop=list(req.stop), seed=req.seed)
            try:
                rid = self.engine.add_request(req.prompt, params, priority=Priority.BATCH,
                                              adapter_id=self.adapter_id, request_id=f"eval-{id(self):x}-{next(self._ids)}")
            except ValueError as exc:
                yield Generation(req.key, "", error=f"engine refused the request: {exc}")
                continue
            by_id[rid] = req
        try:
            while by_id:
                for out in self.engine.step():
                    if out.finished and out.request_id in by_id:
                        req = by_id.pop(out.request_id)
                        sample = out.outputs[0]
                        reason = sample.finish_reason.value if sample.finish_reason else ""
                        yield Generation(req.key, sample.text, len(sample.token_ids), reason)
        finally:
            for rid in list(by_id):  # a consumer that stops early frees the engine
                self.engine.abort(rid)


class HFGenerator:
    """HF transformers ``generate``, one request at a time (the speed baseline)."""

    def __init__(self, model: Any, tokenizer: Any) -> None:
        self.model = model
        self.tokenizer = tokenizer

    def settings(self) -> dict[str, Any]:
        return {"backend": "hf", "dtype": str(self.model.dtype).removeprefix("torch.")}

    @classmethod
    def load(cls, model_path: Path, adapter_path: str | None = None, dtype: str = "auto") -> HFGenerator:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from inference.compute_dtype import torch_dtype

        tokenizer = AutoTokenizer.from_pretrained(model_path)
        model = AutoModelForCausalLM.from_pretrained(model_path, dtype=torch_dtype(dtype))
        if adapter_path:
            from peft import PeftModel

            model = PeftModel.from_pretrained(model, adapter_path)
        return cls(model.eval(), tokenizer)

    def generate(self, requests: list[GenRequest]) -> Iterator[Generation]:
        import torch

        for req in requests:
            ids = self.tokenizer(req.prompt, return_tensors="pt").input_ids
            sampling: dict[str, Any] = {"do_sample": False}
            if req.temperature > 0:
                sampling = {"do_sample": True, "temperature": req.temperature, "top_p": req.top_p}
                if req.seed is not None:
                    torch.manual_seed(req.seed)
            with torch.inference_mode():
                out = self.model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=req.max_tokens,
                                          stop_strings=list(req.stop) or None, tokenizer=self.tokenizer,
                                          pad_token_id=self.tokenizer.pad_token_id, **sampling)
            new = out[0, ids.shape[1]:]
            text = cut_at_stop(self.tokenizer.decode(new, skip_special_tokens=True), req.stop)
            reason = "length" if len(new) >= req.max_tokens else "stop"
            yield Generation(req.key, text, int(len(new)), reason)


def make_generator(spec: EvalSpec) -> Generator:
    """The generator ``spec`` asks for: our engine (default) or HF ``generate``, with its adapter."""
    if spec.backend == "hf":
        from inference.catalog import resolve_model

        return HFGenerator.load(resolve_model(spec.model), spec.adapter)
    return EngineGenerator.load(spec.model, spec.adapter, **spec.engine_options)
