"""``codeloop loop --repo REPO``: the user's repository, learned from its own tests.

mine (or reuse a tasks file) → base eval on the held-out split → train on the train split (task source
``repo``, rl/repo_source.py) → held-out eval → promote → the editor picks the adapter up for that repository.
The held-out eval is ``codeloop eval fim`` (the editor's completion path, tests-pass, exact match) run on the
rollout engine with the iteration's adapter. Everything else is rl/loop.py's resumable loop.

Run directory (besides rl/loop.py's)::

    repo/tasks.jsonl                 the mined tasks, the acceptance log's accepted suggestions among them
                                     (``--acceptance-log``), or a copy of ``--tasks``; never re-mined on resume
    repo/tasks.jsonl.report.json     the miner's report: every file's task count or one-line reason
    evals/iter-NNNN/fim/             eval fim run folders on the held-out split (resumable)

Promotion rule: an adapter is promoted when, on the held-out tasks both runs judged, its tests-pass rate and
its exact-match rate are both at least the best-so-far's (the base model's to start with). A promoted adapter
also becomes the repository's adapter for the editor (``inference.repo_adapters.promote_repo_adapter``:
``codeloop lsp`` / ``serve`` use it for documents under the repository root, without a restart).
"""

from __future__ import annotations

import filecmp
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evals.repo.task import read_tasks
from evals.results import per_task_passes
from rl.config import RLConfig
from rl.heldout import evaluate_all

log = logging.getLogger(__name__)
TASKS = Path("repo") / "tasks.jsonl"
FIM = "fim"
EVAL_CONCURRENCY = 16
"""Held-out completion requests in flight (the engine batches them)."""


class RepoLoopError(ValueError):
    """The repository gives nothing to learn or to evaluate (a one-line reason)."""


@dataclass(frozen=True)
class RepoSpec:
    """Where the tasks come from: ``repo`` mined (folder or SWE-bench id), or a ``tasks`` file given."""

    repo: str | None = None
    tasks: Path | None = None
    python: Path | None = None
    swebench_dir: Path | None = None
    seed: int = 0
    heldout_fraction: float = 0.3
    max_tests: int = 8
    concurrency: int = 2
    refresh: bool = False
    cache_dir: Path | None = None
    """The miner's cache (coverage maps, gold checks); None: its default."""
    acceptance_log: Path | None = None
    """The editor's acceptance log: its accepted suggestions in the repository become tasks when mining."""

    def __post_init__(self) -> None:
        if self.repo is None and self.tasks is None:
            raise RepoLoopError("give a repository to mine or a tasks file")
        if self.acceptance_log is not None and self.tasks is not None:
            raise RepoLoopError("an acceptance log joins the tasks when mining: mine with `codeloop tasks mine "
                                "--acceptance-log`, or give --repo instead of --tasks")


def prepare_tasks(run_dir: Path, spec: RepoSpec) -> Path:
    """``<run_dir>/repo/tasks.jsonl``: kept when there (a resumed run), else a copy of ``spec.tasks``, else
    mined, with ``spec.acceptance_log``'s accepted suggestions (the miner caches its coverage map and gold
    checks, so a killed mining resumes). NOTE: never re-mined on resume, so the tasks of a run do not change
    when the acceptance log grows: a new run directory learns the new suggestions. Raises
    RepoLoopError when the repository cannot be mined or a split is empty."""
    dest = Path(run_dir) / TASKS
    if spec.tasks is not None:
        if dest.is_file() and not filecmp.cmp(dest, spec.tasks, shallow=False):
            raise RepoLoopError(f"{run_dir} was started with other tasks than {spec.tasks}: use a new --run-dir")
        if not dest.is_file():
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(spec.tasks, dest)
            _copy_report(spec.tasks, dest)
    elif not dest.is_file():
        _mine(spec, dest)
    counts = {split: len(read_tasks(dest, split)) for split in ("train", "heldout")}
    empty = [split for split, n in counts.items() if not n]
    if empty:
        raise RepoLoopError(f"{dest}: no {' and no '.join(empty)} tasks ({counts['train']} train, "
                            f"{counts['heldout']} held out); see {dest}.report.json")
    return dest


def _mine(spec: RepoSpec, dest: Path) -> None:
    from evals.repo.miner import MineOptions, mine
    from evals.repo.target import TargetError, resolve_target

    try:
        target = resolve_target(str(spec.repo), python=spec.python, swebench_dir=spec.swebench_dir)
    except TargetError as exc:
        raise RepoLoopError(str(exc)) from exc
    cache = {"cache_dir": spec.cache_dir} if spec.cache_dir else {}
    options = MineOptions(out=dest, seed=spec.seed, heldout_fraction=spec.heldout_fraction,
                          max_tests=spec.max_tests, concurrency=spec.concurrency, refresh=spec.refresh,
                          acceptance_log=spec.acceptance_log, **cache)
    report = mine(target, options)
    if report.reason:
        dest.unlink(missing_ok=True)  # NOTE: a failed mining leaves no tasks file, so a rerun mines again
        raise RepoLoopError(f"{report.repo}: {report.reason}")
    log.info("mined %s: %s (%s s)", report.repo, report.tasks, report.seconds)


def _copy_report(tasks: Path, dest: Path) -> None:
    from evals.repo.miner import report_path

    if report_path(tasks).is_file():
        shutil.copyfile(report_path(tasks), report_path(dest))


class RepoHeldOut:
    """The held-out side of the repository loop (see the module docstring for the promotion rule)."""

    def __init__(self, config: RLConfig, tasks_file: Path, home: Path | None = None) -> None:
        self.config, self.tasks_file, self.home = config, Path(tasks_file), home

    def evaluate(self, engine: Any, out_dir: Path, label: str, adapter_dir: Path | None) -> dict[str, Any]:
        """``{"fim": {tests_pass, exact_match, edit_similarity, num_tasks, by_kind, run_dir}}`` of the engine's
        default adapter on the held-out split, plus ``eval.benchmarks`` when ``eval.general`` is set."""
        from evals.repo.completions import EngineChoice
        from evals.repo.fim import FimEvalSpec, evaluate_fim
        from inference.async_engine import AsyncEngine
        from inference.lora import adapter_digest
        from lsp.inprocess_client import InProcessClient

        config = self.config
        spec = FimEvalSpec(
            self.tasks_file, EngineChoice(model=config.model), Path(out_dir) / FIM, split="heldout", label=label,
            limit=config.eval.fim_limit, settings=config.tasks.repo_settings, concurrency=EVAL_CONCURRENCY,
            check_concurrency=config.rollout.concurrency, resume=True,
            swebench_dir=Path(config.eval.swebench_dir) if config.eval.swebench_dir else None,
            adapter=adapter_digest(Path(adapter_dir)) if adapter_dir else "")
        served = AsyncEngine(engine)  # the rollout engine, its default adapter included, behind the editor's client
        try:
            summary = evaluate_fim(spec, InProcessClient(config.model, engine=served))
        finally:
            served.shutdown()
        every = summary.by_kind.get("all", {})
        scores: dict[str, Any] = {FIM: {
            "tests_pass": every.get("tests_pass", 0.0), "exact_match": every.get("exact_match", 0.0),
            "edit_similarity": every.get("edit_similarity", 0.0), "num_tasks": summary.num_results,
            "by_kind": summary.by_kind, "run_dir": str(spec.run_dir)}}
        log.info("%s held-out fim: tests-pass %.3f, exact match %.3f (%d tasks)", label,
                 scores[FIM]["tests_pass"], scores[FIM]["exact_match"], summary.num_results)
        if config.eval.general:
            scores.update(evaluate_all(config, engine, Path(out_dir), label, adapter_dir))
        return scores

    def compare(self, scores: dict[str, Any], best: dict[str, Any]) -> tuple[bool, dict[str, Any]]:
        """(promote, comparison): tests-pass and exact match both not lower, on the tasks both runs judged."""
        mine_dir, best_dir = Path(scores[FIM]["run_dir"]), Path(best[FIM]["run_dir"])
        out: dict[str, Any] = {"best_run": str(best_dir)}
        ok = True
        for metric in ("tests_pass", "exact_match"):
            cand, top = per_task_passes(mine_dir, metric), per_task_passes(best_dir, metric)
            common = sorted(set(cand) & set(top))
            c = sum(cand[t] for t in common) / len(common) if common else 0.0
            b = sum(top[t] for t in common) / len(common) if common else 0.0
            out[metric] = {"candidate": c, "best": b, "num_tasks": len(common)}
            ok = ok and bool(common) and c >= b
        out.update(candidate=out["tests_pass"]["candidate"], best=out["tests_pass"]["best"],
                   num_tasks=out["tests_pass"]["num_tasks"])
        return ok, out

    def on_promoted(self, adapter: Path, info: dict[str, Any]) -> None:
        """Register the adapter for every repository root the tasks come from (the editor's pick-up)."""
        from inference.repo_adapters import promote_repo_adapter
        from rl.repo_source import RepoSource

        source = RepoSource(self.config)
        metrics = {"iteration": info["iteration"], "step": info["step"], **{
            k: v for k, v in info["scores"][FIM].items() if k in ("tests_pass", "exact_match", "num_tasks")}}
        roots = {str(source.target(t).root) for t in _one_per_source(read_tasks(self.tasks_file))}
        for root in sorted(roots):
            entry = promote_repo_adapter(root, adapter, self.config.model, metrics, home=self.home)
            log.info("repository %s now uses adapter %s (%s)", root, adapter, entry.name)


def _one_per_source(tasks: list[Any]) -> list[Any]:
    return list({t.source: t for t in tasks}.values())


def run_repo_loop(config: RLConfig, spec: RepoSpec, iterations: int = 1, on_event=None,
                  home: Path | None = None) -> list[dict[str, Any]]:
    """Prepare the tasks, then rl/loop.py's ``run_loop`` with the ``repo`` task source and ``RepoHeldOut``.
    ``home``: the codeloop home whose adapter registry a promotion writes to (None: the default)."""
    from dataclasses import replace

    from rl.loop import run_loop

    tasks_file = prepare_tasks(Path(config.run_dir), spec)
    tasks = replace(config.tasks, sources=("repo",), repo_tasks=str(tasks_file))
    config = replace(config, tasks=tasks)
    return run_loop(config, iterations, on_event, heldout=RepoHeldOut(config, tasks_file, home))
