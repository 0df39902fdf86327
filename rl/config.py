"""`RLConfig`: one validated config for a training phase and the loop, loadable from TOML or JSON.

Sections mirror the pipeline: ``tasks`` → ``rollout`` → ``train`` (+ ``lora``, ``grpo``, ``anchor``) → ``eval``.
Unknown keys are errors (a typo must not silently fall back to a default).
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10: the same parser, published as tomli
    import tomli as tomllib

from rl.grpo import GRPOConfig
from sandbox.executor_config import EXECUTORS

ALGOS = ("grpo", "rft")
DTYPES = ("auto", "bfloat16", "float32")
""""auto": bf16 where the hardware computes it, else float32 (inference/compute_dtype.py)."""
TASK_SOURCES = ("mbpp-train", "mbpp-validation", "synth", "acceptance", "repo")
EVAL_BENCHMARKS = ("humanevalplus", "mbppplus", "bigcodebench", "swebench", "mbpp-validation")


class ConfigError(ValueError):
    """The config file or one of its values is invalid (message names the field)."""


@dataclass
class LoraSettings:
    r: int = 16
    alpha: float = 32.0
    dropout: float = 0.0
    targets: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")

    def __post_init__(self) -> None:
        self.targets = tuple(self.targets)
        _check(self.r >= 1, "lora.r must be >= 1")
        _check(self.alpha > 0, "lora.alpha must be > 0")
        _check(0 <= self.dropout < 1, "lora.dropout must be in [0, 1)")
        allowed = set(LoraSettings.__dataclass_fields__["targets"].default)
        _check(bool(self.targets) and set(self.targets) <= allowed, f"lora.targets must be a subset of {sorted(allowed)}")


@dataclass
class TaskSettings:
    sources: tuple[str, ...] = ("mbpp-train",)
    limit: int | None = None
    """Use at most this many tasks (after validation), in seeded-shuffled order."""
    validate: bool = True
    """Keep a task only if its reference passes and a trivial wrong solution fails (costs sandbox runs)."""
    synth_count: int = 0
    """Synthetic tasks to generate per refresh (source ``synth``)."""
    acceptance_log: str | None = None
    repo_tasks: str | None = None
    """Source ``repo``: a tasks file of ``codeloop tasks mine`` (its ``train`` split is trained on; the
    ``heldout`` split is what ``codeloop loop --repo`` evaluates and promotes on)."""
    repo_settings: dict[str, Any] = field(default_factory=dict)
    """Source ``repo``: language-server settings over the editor's defaults (the prompts and the held-out
    eval are the editor's with these settings)."""
    repo_similarity_weight: float = 0.01
    """Source ``repo``: reward = fraction of the task's tests passing + this x edit similarity to the mined
    span, a tie-breaker only: keep it below 1 / (tests per task) so it never outweighs one more passing test."""

    def __post_init__(self) -> None:
        self.sources = tuple(self.sources)
        self.repo_settings = dict(self.repo_settings)
        _check(all(s in TASK_SOURCES for s in self.sources), f"tasks.sources must be among {TASK_SOURCES}")
        _check("repo" not in self.sources or self.sources == ("repo",),
               "tasks.sources: repo cannot be mixed with other sources (its prompts are FIM, theirs chat)")
        _check("repo" not in self.sources or bool(self.repo_tasks), "tasks.sources repo needs tasks.repo_tasks")
        _check(0 <= self.repo_similarity_weight < 0.1, "tasks.repo_similarity_weight must be in [0, 0.1)")
        _check(self.limit is None or self.limit >= 1, "tasks.limit must be >= 1")
        _check(self.synth_count >= 0, "tasks.synth_count must be >= 0")


@dataclass
class RolloutSettings:
    group_size: int = 4
    """G samples per prompt (sharing the prompt's KV)."""
    prompts_per_step: int = 4
    refill_prompts: int = 0
    """Up to this many more prompts per step while fewer than ``prompts_per_step`` groups can teach anything
    (RFT: no passing sample; GRPO: equal rewards); 0: none (DAPO's dynamic sampling, capped)."""
    temperature: float = 1.0
    top_p: float = 1.0
    max_tokens: int = 384
    sandbox: str = "auto"
    concurrency: int = 2
    timeout_s: float = 10.0
    memory_mb: int = 512
    executor: str = "local"
    """Where sandbox runs happen (rollouts, task validation, held-out evals): ``local`` or ``ray``."""
    ray_address: str | None = None
    """The Ray head's host:port with ``executor = "ray"`` (None: Ray's discovery)."""

    def __post_init__(self) -> None:
        _check(self.group_size >= 2, "rollout.group_size must be >= 2 (advantages are relative to the group)")
        _check(self.prompts_per_step >= 1, "rollout.prompts_per_step must be >= 1")
        _check(self.refill_prompts >= 0, "rollout.refill_prompts must be >= 0")
        _check(self.temperature > 0, "rollout.temperature must be > 0")
        _check(0 < self.top_p <= 1, "rollout.top_p must be in (0, 1]")
        _check(self.max_tokens >= 1, "rollout.max_tokens must be >= 1")
        _check(self.timeout_s > 0 and self.memory_mb > 0, "rollout.timeout_s and memory_mb must be > 0")
        _check(self.executor in EXECUTORS, f"rollout.executor must be one of {EXECUTORS}, got {self.executor!r}")


@dataclass
class TrainSettings:
    algo: str = "grpo"
    steps: int = 10
    """Training steps (rollout batches) per training phase."""
    lr: float = 1e-5
    weight_decay: float = 0.0
    micro_batch: int = 4
    """Sequences per forward/backward; gradients accumulate over the whole step's rollouts."""
    epochs_per_batch: int = 1
    """Passes over each rollout batch (>1 makes the clipping matter)."""
    updates_per_step: int = 1
    """Optimizer updates per pass: the step's samples are split into this many interleaved mini-batches."""
    max_grad_norm: float = 1.0
    rft_max_per_task: int = 4
    """RFT: train on at most this many distinct passing solutions per task (duplicates never count twice)."""
    dtype: str = "auto"
    num_threads: int = 2
    checkpoint_every: int = 1
    keep_checkpoints: int = 3

    def __post_init__(self) -> None:
        _check(self.algo in ALGOS, f"train.algo must be one of {ALGOS}")
        _check(self.dtype in DTYPES, f"train.dtype must be one of {DTYPES}")
        _check(min(self.steps, self.micro_batch, self.epochs_per_batch, self.updates_per_step) >= 1,
               "train.steps, micro_batch, epochs_per_batch and updates_per_step must be >= 1")
        _check(self.lr > 0 and self.max_grad_norm > 0, "train.lr and max_grad_norm must be > 0")
        _check(self.num_threads >= 1, "train.num_threads must be >= 1")
        _check(self.rft_max_per_task >= 1, "train.rft_max_per_task must be >= 1")
        _check(self.checkpoint_every >= 1 and self.keep_checkpoints >= 1,
               "train.checkpoint_every and keep_checkpoints must be >= 1")


@dataclass
class AnchorSettings:
    """The general-skill anchor of a training step (rl/anchor.py): the base model's own greedy answers to
    ``pool`` general coding prompts (MBPP's train split, decontaminated; as MBPP or HumanEval lay them out),
    ``per_step`` of them distilled back into the adapter at each step with weight ``coef``."""

    per_step: int = 0
    """Anchor prompts per training step; 0: no anchor (no pool is built, the step is unchanged)."""
    coef: float = 1.0
    """Weight of the anchor's token-mean loss next to the step's own token-mean loss."""
    loss: str = "kl"
    """"kl": KL(base || adapter) over the whole vocabulary at each answer token (zero at the base: pulls back
    only what moved); "nll": the answer tokens' negative log-likelihood (the base's greedy choices as hard
    targets: holds each greedy argmax with a gradient the size of the step's own, even before anything moved)."""
    pool: int = 64
    prompts: tuple[str, ...] = ("mbpp",)
    """Prompt kinds of the pool, taken in turn (rl/anchor.py): "mbpp" (as the MBPP evals prompt) and
    "signature" (the same tasks laid out as HumanEval prompts: signature and docstring)."""
    max_tokens: int = 256
    """Longest base answer kept in the pool (the KL costs a vocabulary-wide softmax per answer token)."""

    def __post_init__(self) -> None:
        _check(self.per_step >= 0, "anchor.per_step must be >= 0")
        _check(self.coef >= 0, "anchor.coef must be >= 0")
        _check(self.loss in ("kl", "nll"), "anchor.loss must be kl or nll")
        _check(self.pool >= max(1, self.per_step), "anchor.pool must be >= max(1, anchor.per_step)")
        _check(self.max_tokens >= 1, "anchor.max_tokens must be >= 1")
        self.prompts = tuple(self.prompts)
        _check(bool(self.prompts) and all(p in ("mbpp", "signature") for p in self.prompts),
               "anchor.prompts must be a non-empty list of mbpp, signature")


@dataclass
class EvalSettings:
    benchmarks: tuple[str, ...] = ("mbpp-validation", "humanevalplus", "mbppplus", "bigcodebench")
    limit: int | None = 20
    """First ``limit`` tasks of each benchmark (None: all). Stated in every report."""
    limits: dict[str, int] = field(default_factory=dict)
    """Per-benchmark override of ``limit`` (e.g. ``{bigcodebench = 40, swebench = 4}``); 0 means all tasks."""
    bigcodebench_subset: str = "stdlib"
    swebench_dir: str | None = None
    max_tokens: int = 512
    fim_limit: int | None = None
    """``codeloop loop --repo``: evaluate at most this many held-out tasks (None: all of them)."""
    general: bool = False
    """``codeloop loop --repo``: also evaluate ``benchmarks`` at every iteration (reported, never used for
    promotion: an adapter for one repository should not wreck general skill)."""

    def __post_init__(self) -> None:
        self.benchmarks = tuple(self.benchmarks)
        _check(all(b in EVAL_BENCHMARKS for b in self.benchmarks), f"eval.benchmarks must be among {EVAL_BENCHMARKS}")
        _check("mbpp-validation" in self.benchmarks, "eval.benchmarks must include mbpp-validation (promotion)")
        _check(self.limit is None or self.limit >= 1, "eval.limit must be >= 1")
        _check(self.fim_limit is None or self.fim_limit >= 1, "eval.fim_limit must be >= 1")
        self.limits = dict(self.limits)
        _check(set(self.limits) <= set(EVAL_BENCHMARKS), f"eval.limits keys must be among {EVAL_BENCHMARKS}")
        _check(all(isinstance(v, int) and v >= 0 for v in self.limits.values()), "eval.limits values must be >= 0")

    def limit_for(self, benchmark: str) -> int | None:
        """The task limit of ``benchmark``: its ``limits`` entry (0 = all) or the global ``limit``."""
        if benchmark in self.limits:
            return self.limits[benchmark] or None
        return self.limit


@dataclass
class RLConfig:
    """Everything a training phase or the loop needs; built once at the entry point and passed down."""

    model: str = "qwen2.5-coder-0.5b-instruct"
    run_dir: str = "runs/rl"
    seed: int = 0
    engine_dtype: str = "auto"
    max_model_len: int = 2048
    kv_cache_mb: int = 1024
    """KV cache of the rollout / eval engine."""
    lora: LoraSettings = field(default_factory=LoraSettings)
    grpo: GRPOConfig = field(default_factory=GRPOConfig)
    tasks: TaskSettings = field(default_factory=TaskSettings)
    rollout: RolloutSettings = field(default_factory=RolloutSettings)
    train: TrainSettings = field(default_factory=TrainSettings)
    eval: EvalSettings = field(default_factory=EvalSettings)
    anchor: AnchorSettings = field(default_factory=AnchorSettings)

    def __post_init__(self) -> None:
        _check(self.engine_dtype in DTYPES, f"engine_dtype must be one of {DTYPES}")
        _check(self.max_model_len >= 64, "max_model_len must be >= 64")
        _check(self.kv_cache_mb >= 1, "kv_cache_mb must be >= 1")
        _check("mbpp-validation" not in self.tasks.sources,
               "tasks.sources must not include mbpp-validation: it decides promotion (held out)")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


SECTIONS = {"lora": LoraSettings, "grpo": GRPOConfig, "tasks": TaskSettings, "rollout": RolloutSettings,
            "train": TrainSettings, "eval": EvalSettings, "anchor": AnchorSettings}


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise ConfigError(message)


def _build(cls: type, data: dict[str, Any], where: str) -> Any:
    if not isinstance(data, dict):
        raise ConfigError(f"{where} must be a table/object")
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(f"unknown key(s) in {where}: {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    try:
        return cls(**data)
    except ConfigError:
        raise
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where}: {exc}") from None


def config_from_dict(data: dict[str, Any]) -> RLConfig:
    """Build and validate an ``RLConfig`` from nested plain data (as read from TOML/JSON)."""
    data = dict(data)
    sections = {name: _build(cls, data.pop(name, {}), name) for name, cls in SECTIONS.items()}
    return _build(RLConfig, {**data, **sections}, "config")


def load_config(path: Path | str | None, overrides: dict[str, Any] | None = None) -> RLConfig:
    """Read a ``.toml`` or ``.json`` config (None: defaults) and apply dotted ``overrides`` (``train.steps``)."""
    data: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        try:
            text = path.read_text()
            data = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
        except OSError as exc:
            raise ConfigError(f"cannot read config {path}: {exc.strerror}") from None
        except (tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
            raise ConfigError(f"{path}: not valid {'TOML' if path.suffix == '.toml' else 'JSON'}: {exc}") from None
    for dotted, value in (overrides or {}).items():
        if value is None:
            continue
        *heads, last = dotted.split(".")
        node = data
        for head in heads:
            node = node.setdefault(head, {})
        node[last] = value
    return config_from_dict(data)
