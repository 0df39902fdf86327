"""``codeloop eval fim``: repository FIM tasks -> the editor's completion path -> scores -> report.

Two resumable phases in one run folder (``run.json``, ``generations.jsonl``, ``results.jsonl`` — the
per-task record: completion, exact match, edit similarity, tests-pass with the failing tests —
``summary.json``, ``report.md``): every completion first (the model is then released), then every check
(the completion spliced into its file, the task's covering tests run in the sandbox). A killed run resumes
with ``--resume`` and redoes only what has no line yet; the run folder refuses a different experiment.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from evals.metrics import edit_similarity, exact_match
from evals.progress import Bars
from evals.repo.check import check_completion
from evals.repo.completions import EngineChoice, completion_settings, generate
from evals.repo.fim_report import FimSummary, summarize, write_run_report
from evals.repo.spans import KINDS
from evals.repo.target import RepoTarget, resolve_target
from evals.repo.task import FimTask, read_tasks
from evals.rundir import RunDir
from lsp.config import Settings
from lsp.engine_client import EngineClient


@dataclass(frozen=True)
class FimEvalSpec:
    tasks_file: Path
    engine: EngineChoice
    run_dir: Path
    split: str | None = "heldout"
    kinds: tuple[str, ...] = KINDS
    per_kind: int | None = None
    """At most this many tasks of each kind (chosen by a stable hash of the task id)."""
    limit: int | None = None
    label: str = ""
    settings: dict[str, Any] = field(default_factory=dict)
    """Language-server settings (camelCase or snake_case) over the editor's defaults."""
    checks: bool = True
    concurrency: int = 2
    """Completion requests in flight (the engine batches them)."""
    check_concurrency: int = 2
    resume: bool = False
    swebench_dir: Path | None = None
    progress: bool = False
    adapter: str = ""
    """What identifies the LoRA adapter of an engine given as a client (its sha256; "" for none): part of
    the identity, so a run folder of other weights is never continued."""

    def lsp_settings(self) -> Settings:
        return lsp_settings(self.settings)

    def identity(self) -> dict[str, Any]:
        """What must match for ``--resume`` to continue a run (not the label, progress or concurrency)."""
        return {"tasks": _task_digest(self.tasks_file), "engine": asdict(self.engine), "split": self.split,
                "kinds": list(self.kinds), "per_kind": self.per_kind, "limit": self.limit,
                "settings": completion_settings(self.lsp_settings()), "checks": self.checks,
                **({"adapter": self.adapter} if self.adapter else {})}


def lsp_settings(overrides: dict[str, Any]) -> Settings:
    """The editor's settings with ``overrides`` (camelCase or snake_case) and no debounce: what an eval or
    the repository RL task source completes with."""
    return Settings().merged({**overrides, "debounceMs": 0})


def _task_digest(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]


def select_tasks(tasks: list[FimTask], per_kind: int | None, limit: int | None) -> list[FimTask]:
    """A stable subset: per kind, the tasks with the smallest hash of their id; then the first ``limit``."""
    def rank(t: FimTask) -> str:
        return hashlib.sha256(t.task_id.encode()).hexdigest()

    if per_kind is not None:
        chosen = []
        for kind in KINDS:
            chosen += sorted((t for t in tasks if t.kind == kind), key=rank)[:per_kind]
        tasks = sorted(chosen, key=lambda t: t.task_id)
    return tasks[:limit] if limit is not None else tasks


def evaluate_fim(spec: FimEvalSpec, client: EngineClient | None = None) -> FimSummary:
    """Run (or resume) ``spec`` to the end; the summary is also written to summary.json and report.md.
    ``client``: an engine client to complete with instead of the one ``spec.engine`` names (closed when
    generation ran; when nothing was left to generate, closing it is the caller's). State the adapter it
    runs in ``spec.adapter``."""
    tasks = select_tasks(read_tasks(spec.tasks_file, spec.split, spec.kinds), spec.per_kind, spec.limit)
    if not tasks:
        raise ValueError(f"{spec.tasks_file}: no tasks of split {spec.split} and kinds {', '.join(spec.kinds)}")
    rd = RunDir(spec.run_dir, spec)  # type: ignore[arg-type]
    rd.open()
    warn = lambda m: print(f"codeloop eval fim: warning: {m}", file=sys.stderr)  # noqa: E731
    targets = _targets(tasks, spec)
    with Bars(spec.progress) as bars:
        generated = rd.load(rd.generations, warn)
        todo = [t for t in tasks if (t.task_id, 0) not in generated]
        bars.add("generate", len(tasks), len(tasks) - len(todo))

        def on_generated(record: dict[str, Any]) -> None:
            rd.generations.append(record)
            bars.advance("generate")

        if todo:
            roots = {src: target.root for src, target in targets.items()}
            asyncio.run(generate(todo, roots, spec.engine, spec.lsp_settings(), spec.concurrency, on_generated,
                                 client))
        generated = rd.load(rd.generations, warn)
        _score(tasks, generated, targets, rd, spec, bars, warn)
    summary = summarize(spec, tasks, rd.load(rd.results, warn))
    rd.write_summary(summary.as_dict())
    write_run_report(rd.path, summary)
    return summary


def _targets(tasks: list[FimTask], spec: FimEvalSpec) -> dict[str, RepoTarget]:
    """Each task source's repository and environment (built once, shared with the miner)."""
    return {src: resolve_target(src, swebench_dir=spec.swebench_dir) for src in sorted({t.source for t in tasks})}


def _score(tasks: list[FimTask], generated: dict, targets: dict[str, RepoTarget], rd: RunDir, spec: FimEvalSpec,
           bars: Bars, warn) -> None:
    done = rd.load(rd.results, warn)
    todo = [t for t in tasks if (t.task_id, 0) not in done]
    bars.add("check", len(tasks), len(tasks) - len(todo))

    def one(task: FimTask) -> None:
        gen = generated[(task.task_id, 0)]
        rd.results.append(score_task(task, gen, targets[task.source], spec.checks))
        bars.advance("check")

    with ThreadPoolExecutor(max(1, spec.check_concurrency)) as pool:
        list(pool.map(one, todo))


def score_task(task: FimTask, gen: dict[str, Any], target: RepoTarget, checks: bool) -> dict[str, Any]:
    """The per-task record: scores of the completion and, with ``checks``, its tests in the sandbox."""
    completion = gen.get("completion") or ""
    record: dict[str, Any] = {
        "task_id": task.task_id, "sample_index": 0, "kind": task.kind, "repo": task.repo, "path": task.path,
        "completion": completion, "gold": task.middle, "exact_match": exact_match(completion, task.middle),
        "edit_similarity": round(edit_similarity(completion, task.middle), 4), "error": gen.get("error", ""),
        "seconds": gen.get("seconds", 0.0),
    }
    if checks:
        result = check_completion(target.env, task, completion)
        record.update(tests_pass=result.passed, tests_fraction=round(result.fraction, 4), check=result.as_dict())
    return record


def default_run_dir(engine: EngineChoice, tasks_file: Path, root: Path = Path("runs")) -> Path:
    name = engine.model or engine.engine_url or engine.infill_url or "engine"
    name = re.sub(r"[^\w.-]+", "_", Path(name).name or name)
    return root / f"fim-{Path(tasks_file).stem}-{name}-{time.strftime('%Y%m%d-%H%M%S')}"

