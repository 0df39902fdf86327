"""`EvalSpec` (what to evaluate, validated) and `EvalSummary` (what came of it)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sandbox.executor import EXECUTORS

BACKENDS = ("engine", "hf")
SANDBOX_BACKENDS = ("auto", "bwrap", "docker")
PROMPT_MODES = ("auto", "chat", "completion")
DEFAULT_TIMEOUT_S = 20.0
BENCHMARK_TIMEOUT_S = {"bigcodebench": 240.0}
"""Wall clock per sandbox run where the benchmark's official harness sets its own: BigCodeBench gives a
task's whole unittest suite 240 s (``BIGCODEBENCH_TIMEOUT_PER_TASK``), and canonical suites that sleep
or run servers take 45-80 s."""
DEFAULT_MAX_TOKENS = 512
BENCHMARK_MAX_TOKENS = {"bigcodebench": 1280}
"""New tokens per sample where the official harness sets its own (BigCodeBench: ``max_new_tokens`` 1280;
its solutions are longer than HumanEval's and 512 truncates some)."""


@dataclass(frozen=True)
class EvalSpec:
    """One evaluation run. Built at the entry point (CLI or RL loop) and passed down unchanged.

    ``run_dir`` holds everything the run writes; with ``resume`` a run continues where it stopped.
    """

    benchmark: str
    model: str = "qwen2.5-coder-0.5b-instruct"
    adapter: str | None = None
    """LoRA adapter path/id passed to the engine as ``adapter_id``."""
    split: str | None = None
    subset: str | None = None
    samples: int = 1
    temperature: float = 0.0
    top_p: float = 0.95
    max_tokens: int | None = None
    """None: ``BENCHMARK_MAX_TOKENS`` for the benchmark, else ``DEFAULT_MAX_TOKENS`` (resolved at creation)."""
    limit: int | None = None
    """Evaluate only the first ``limit`` tasks."""
    run_dir: Path | None = None
    resume: bool = False
    backend: str = "engine"
    sandbox: str = "auto"
    prompt_mode: str = "auto"
    """``auto``: chat when the tokenizer has a chat template, else completion."""
    seed: int = 0
    concurrency: int = 2
    """Sandbox runs at once (local executor)."""
    executor: str = "local"
    """Where sandbox runs happen: ``local`` or ``ray`` (``sandbox.executor``). Not part of the identity: a run
    started on one executor may be resumed on the other, and gives the same verdicts."""
    ray_address: str | None = None
    engine_replicas: int = 1
    """Engines that generate: 1, in this process; N > 1, Ray actors on the cluster (``--executor ray``) with
    requests routed by prompt head (``evals.replicas``). Part of the identity through ``engine``."""
    timeout_s: float | None = None
    """Seconds per sandbox run; None: ``BENCHMARK_TIMEOUT_S`` for the benchmark, else ``DEFAULT_TIMEOUT_S``."""
    memory_mb: int = 1024
    swebench_dir: Path | None = None
    data_path: Path | None = None
    """The JSONL file of a ``custom`` benchmark (the user's own tasks)."""
    engine_options: dict[str, Any] = field(default_factory=dict)
    """Extra ``EngineConfig`` fields (e.g. ``{"cache": CacheConfig(kv_dtype="int8")}``)."""
    engine: dict[str, Any] = field(default_factory=dict)
    """Settings of the generator that wrote the answers (every ``EngineConfig`` field, torch threads, the
    adapter's weights digest), filled in by ``evaluate``. Part of the identity: greedy bf16 answers depend on
    the batch they are decoded in, so a run is only continued, or compared, under the same settings."""
    progress: bool = True

    def __post_init__(self) -> None:
        if self.max_tokens is None:
            object.__setattr__(self, "max_tokens", BENCHMARK_MAX_TOKENS.get(self.benchmark, DEFAULT_MAX_TOKENS))
        if self.samples < 1:
            raise ValueError(f"samples must be >= 1, got {self.samples}")
        if self.temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {self.temperature}")
        if self.samples > 1 and self.temperature == 0:
            raise ValueError("samples > 1 needs temperature > 0 (greedy samples are all the same)")
        if self.limit is not None and self.limit < 1:
            raise ValueError(f"limit must be >= 1, got {self.limit}")
        if self.benchmark == "custom" and self.data_path is None:
            raise ValueError("a custom benchmark needs its JSONL file (data_path)")
        if self.engine_replicas < 1:
            raise ValueError(f"engine_replicas must be >= 1, got {self.engine_replicas}")
        if self.engine_replicas > 1 and (self.executor != "ray" or self.backend != "engine"):
            raise ValueError("engine replicas (--engine-replicas > 1) run our engine on a Ray cluster: "
                             "use them with --executor ray and --backend engine")
        if self.max_tokens < 1:
            raise ValueError(f"max_tokens must be >= 1, got {self.max_tokens}")
        for name, value, allowed in (("backend", self.backend, BACKENDS), ("sandbox", self.sandbox, SANDBOX_BACKENDS),
                                     ("prompt_mode", self.prompt_mode, PROMPT_MODES), ("executor", self.executor, EXECUTORS)):
            if value not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, got {value!r}")

    @property
    def run_timeout_s(self) -> float:
        """The wall clock each sandbox run gets (``timeout_s`` or the benchmark's default)."""
        return self.timeout_s or BENCHMARK_TIMEOUT_S.get(self.benchmark, DEFAULT_TIMEOUT_S)

    def identity(self) -> dict[str, Any]:
        """Fields that must match for a resumed run to continue the same experiment. Greedy runs do not
        depend on the seed (``seed`` and the engine's seed are left out), so two runs that differ only there
        are the same experiment."""
        keys = ("benchmark", "model", "adapter", "split", "subset", "samples", "temperature", "top_p",
                "max_tokens", "backend", "prompt_mode", "seed", "engine")
        identity = {k: getattr(self, k) for k in keys}
        if self.data_path is not None:
            identity["data_path"] = str(Path(self.data_path).resolve())
        if self.temperature == 0:
            identity.pop("seed")
            identity["engine"] = {k: v for k, v in self.engine.items() if k != "seed"}
        return identity

    def label(self) -> str:
        """Model, adapter, backend and KV dtype: what tells runs of one benchmark apart in a report."""
        label = Path(self.model).name or self.model
        if self.adapter:
            label += f"+{Path(self.adapter).name}"
        cache = self.engine_options.get("cache")
        if cache is not None and getattr(cache, "kv_cache_dtype", "auto") != "auto":
            label += f" kv={cache.kv_cache_dtype}"
        return label if self.backend == "engine" else f"{label} ({self.backend})"


@dataclass
class EvalSummary:
    """Scores of one run. ``pass_at_k`` uses every test; ``per_test`` scores each named test alone."""

    benchmark: str
    model: str
    adapter: str | None
    backend: str
    num_tasks: int
    num_samples: int
    temperature: float
    pass_at_k: dict[str, float]
    per_test: dict[str, dict[str, float]] = field(default_factory=dict)
    subsets: dict[str, dict[str, float]] = field(default_factory=dict)
    """Scores on a named part of the tasks, with its ``num_tasks`` (MBPP+: ``outside-train-validation``, the 231
    tasks whose MBPP ids were never RL training or promotion tasks)."""
    num_results: int = 0
    status_counts: dict[str, int] = field(default_factory=dict)
    coverage: str = ""
    """Which part of the benchmark was run (subset / limit), stated in every report."""
    prompt_mode: str = ""
    generation_seconds: float = 0.0
    execution_seconds: float = 0.0
    wall_seconds: float = 0.0
    num_generated_tokens: int = 0
    run_dir: str = ""
    label: str = ""
    notes: list[str] = field(default_factory=list)
    security: dict[str, Any] = field(default_factory=dict)
    """Scanner findings over the generated code (evals.security.security_report)."""
    tampering: dict[str, Any] = field(default_factory=dict)
    """Samples whose code reaches for the checker (security.tamper.tamper_summary); their verdicts stand."""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> EvalSummary:
        return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})
