"""``codeloop loop report RUN_DIR``: markdown + PNG plots of a run, with bootstrap confidence intervals.

Held-out pass@1 per iteration gets a 95% percentile-bootstrap interval over tasks; the change against the
base model gets a paired bootstrap interval (tasks resampled together for both models), so a difference
whose interval contains 0 is not evidence of improvement.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from evals.jsonl import read_jsonl
from evals.metrics import bootstrap_ci, paired_bootstrap
from evals.results import per_task_passes
from evals.subsets import subsets_of


def _plot(path: Path, title: str, series: dict[str, tuple[list, list]], ylabel: str, bands=None) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    for label, (xs, ys) in series.items():
        ax.plot(xs, ys, marker="o", label=label)
        if bands and label in bands:
            lo, hi = bands[label]
            ax.fill_between(xs, lo, hi, alpha=0.2)
    ax.set_title(title)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    if len(series) > 1:
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


FIM_METRICS = (("fim held-out: tests-pass", "tests_pass"), ("fim held-out: exact match", "exact_match"),
               ("fim held-out: edit similarity", "edit_similarity"))
"""Rows of the repository loop's held-out eval (``codeloop eval fim`` on the held-out files)."""


def heldout_table(run_dir: Path, loop: list[dict[str, Any]]) -> tuple[list[str], dict]:
    """Markdown rows (benchmark, iteration, pass@1 [CI], Δ vs base [paired CI]) and plot data."""
    rows = ["| benchmark | iteration | tasks | pass@1 | 95% CI | Δ vs base | paired 95% CI | promoted |",
            "|---|---|---|---|---|---|---|---|"]
    plots: dict[str, dict[str, list]] = {}
    base_dir = run_dir / "evals" / "iter-0000"
    for bench_dir in sorted(p for p in base_dir.glob("*") if p.is_dir()):
        name = bench_dir.name
        it_dirs = [(rec, run_dir / "evals" / f"iter-{rec['iteration']:04d}" / name) for rec in loop]
        for label, metric in FIM_METRICS if name == "fim" else ((name, "passed"),):
            runs = [(rec, per_task_passes(d, metric)) for rec, d in it_dirs if d.is_dir()]
            base = per_task_passes(bench_dir, metric)
            common = set(base).intersection(*(set(scores) for _, scores in runs))  # one task set per benchmark
            rows += _benchmark_rows(label, base, runs, common, plots)
            for subset in subsets_of(name):  # e.g. MBPP+ on the tasks never trained or promoted on
                rows += _benchmark_rows(f"{label} ({subset.description})", base, runs,
                                        {t for t in common if subset.keep(t)}, plots)
    return rows, plots


def per_task_records(run_dir: Path, loop: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One record per (benchmark, task) the base model was judged on: its pass (mean over samples) at the base
    (``iter-0000``) and at every finished iteration, and the named subsets it belongs to; what a reader needs to
    recompute any row of the report or pair it differently."""
    records = []
    base_dir = run_dir / "evals" / "iter-0000"
    for bench_dir in sorted(p for p in base_dir.glob("*") if p.is_dir()):
        name = bench_dir.name
        scores = {"iter-0000": per_task_passes(bench_dir)}
        for rec in loop:
            folder = run_dir / "evals" / f"iter-{rec['iteration']:04d}" / name
            if folder.is_dir():
                scores[folder.parent.name] = per_task_passes(folder)
        for task in sorted(scores["iter-0000"]):
            records.append({"benchmark": name, "task_id": task,
                            "subsets": [s.name for s in subsets_of(name) if s.keep(task)],
                            **{it: by_task.get(task) for it, by_task in scores.items()}})
    return records


def _benchmark_rows(name: str, base: dict[str, float], runs: list, common: set[str], plots: dict) -> list[str]:
    base = {t: base[t] for t in common}
    m, lo, hi = bootstrap_ci(list(base.values()))
    rows = [f"| {name} | 0 (base) | {len(base)} | {m:.3f} | [{lo:.3f}, {hi:.3f}] | | | |"]
    data = plots.setdefault(name, {"x": [0], "y": [m], "lo": [lo], "hi": [hi]})
    for rec, scores in runs:
        scores = {t: scores[t] for t in common}
        m, lo, hi = bootstrap_ci(list(scores.values()))
        d, dlo, dhi, _ = paired_bootstrap(base, scores)
        rows.append(f"| {name} | {rec['iteration']} | {len(scores)} | {m:.3f} | [{lo:.3f}, {hi:.3f}] | "
                    f"{d:+.3f} | [{dlo:+.3f}, {dhi:+.3f}] | {rec['promoted']} |")
        for key, value in zip(("x", "y", "lo", "hi"), (rec["iteration"], m, lo, hi), strict=True):
            data[key].append(value)
    return rows


def decontamination_lines(run_dir: Path) -> list[str]:
    """What decontamination removed from each task source (``decontamination.json``)."""
    path = run_dir / "decontamination.json"
    from rl.repo_loop import TASKS

    if (run_dir / TASKS).is_file():
        return ["Repository tasks are not decontaminated against the benchmarks: the loop trains on the "
                "repository's train files and evaluates on its held-out files (no file in both)."]
    if not path.is_file():
        return ["No decontamination record (a run from before decontamination)."]
    lines = ["| source | tasks in | kept | removed: by id | by 13-gram | by MinHash |", "|---|---|---|---|---|---|"]
    for rec in json.loads(path.read_text()):
        by = rec.get("removed_by_reason", {})
        lines.append(f"| {rec['source']} | {rec['num_in']} | {rec['num_kept']} | {by.get('id', 0)} | "
                     f"{by.get('ngram', 0)} | {by.get('minhash', 0)} |")
    return lines


def repository_lines(run_dir: Path) -> list[str]:
    """The repository loop's tasks: counts per split and kind, and the miner's one-line reason for every file
    that gave no task, every accepted editor suggestion that gave none, every test file that does not import,
    every failing test and every dropped task."""
    from evals.repo.accepted import made_task
    from evals.repo.miner import report_path
    from rl.repo_loop import TASKS

    path = report_path(run_dir / TASKS)
    if not (run_dir / TASKS).is_file():
        return []
    lines = ["## Repository", ""]
    if not path.is_file():
        return [*lines, f"Tasks from {run_dir / TASKS} (no miner report beside it).", ""]
    mined = json.loads(path.read_text())
    counts = "; ".join(f"{split}: " + ", ".join(f"{n} {kind}" for kind, n in sorted(kinds.items()))
                       for split, kinds in sorted(mined.get("tasks", {}).items()))
    lines += [f"`{mined.get('repo')}` ({mined.get('source')}, commit {mined.get('commit')}): {counts or 'no tasks'}. "
              f"Mining took {mined.get('seconds', {})} s.", ""]
    skipped = {f: why for f, why in mined.get("files", {}).items() if not why.endswith(" tasks")}
    accepted = mined.get("accepted", {})
    unmade = {event: why for event, why in accepted.items() if not made_task(why)}
    if accepted:
        lines += [f"Accepted editor suggestions (acceptance log): {len(accepted) - len(unmade)} of {len(accepted)} "
                  "became tasks.", ""]
    for title, items in (("Files without tasks", skipped), ("Accepted suggestions without a task", unmade),
                         ("Test files that do not import", mined.get("collect_errors", {})),
                         ("Tests failing in the suite run", mined.get("failing_tests", {})),
                         ("Tasks dropped by the gold check", mined.get("dropped", {}))):
        if items:
            lines += [f"{title} ({len(items)}):", "", *[f"- `{k}`: {_one_line(v)}" for k, v in sorted(items.items())], ""]
    return lines


def _one_line(text: str) -> str:
    return " ".join(str(text).split())[:200]


def write_report(run_dir: Path) -> Path:
    """Write ``<run_dir>/report/report.md``, its PNGs and ``per_task.jsonl``; returns the markdown path."""
    run_dir = Path(run_dir)
    out = run_dir / "report"
    out.mkdir(exist_ok=True)
    steps = read_jsonl(run_dir / "metrics.jsonl")
    loop = read_jsonl(run_dir / "loop.jsonl")
    config = json.loads((run_dir / "config.json").read_text()) if (run_dir / "config.json").is_file() else {}
    xs = [r["step"] for r in steps]
    mean = [r["reward_mean"] for r in steps]
    std = [r["reward_std"] for r in steps]
    _plot(out / "reward.png", "reward per step (mean ± std over samples)", {"reward": (xs, mean)}, "reward",
          {"reward": ([m - s for m, s in zip(mean, std, strict=True)], [m + s for m, s in zip(mean, std, strict=True)])})
    _plot(out / "train_pass_rate.png", "pass rate on training tasks", {"pass rate": (xs, [r["pass_rate"] for r in steps])},
          "fraction of samples passing")
    tokens = np.cumsum([r["rollout_tokens"] for r in steps]).tolist()
    wall = np.cumsum([r["wall_s"] for r in steps]).tolist()
    _plot(out / "cost.png", "cumulative rollout tokens and wall time", {"tokens (k)": (xs, [t / 1000 for t in tokens]),
          "wall (min)": (xs, [w / 60 for w in wall])}, "")
    rows, plots = heldout_table(run_dir, loop)
    if plots:
        series = {k: (v["x"], v["y"]) for k, v in plots.items()}
        bands = {k: (v["lo"], v["hi"]) for k, v in plots.items()}
        _plot(out / "heldout.png", "held-out pass@1 per iteration (95% bootstrap CI)", series, "pass@1", bands)
    ev = config.get("eval", {})
    limits = ", ".join(f"{b} {n or 'all'}" for b, n in sorted({**{b: ev.get("limit") for b in ev.get("benchmarks", ())},
                                                              **ev.get("limits", {})}.items()))
    lines = [
        f"# RL run report: {run_dir}", "",
        f"Model `{config.get('model', '?')}`, algorithm `{config.get('train', {}).get('algo', '?')}`, "
        f"group size {config.get('rollout', {}).get('group_size', '?')}, {len(steps)} steps, {len(loop)} iterations.",
        f"{_heldout_scope(config, limits)}; every row of a benchmark is on the "
        "tasks all its evaluations judged. Intervals are 95% bootstrap over tasks, Δ vs base a paired bootstrap.", "",
        "## Training", "",
        "| step | reward mean | reward std | pass rate | tamper flagged | loss | KL | clip frac | rollout tok/s | "
        "sandbox runs/s | wall s |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
        *[f"| {r['step']} | {r['reward_mean']:.3f} | {r['reward_std']:.3f} | {r['pass_rate']:.3f} | "
          f"{r.get('tamper_flagged', '—')} | {r['loss']:.4f} | "
          f"{r['kl']:.4f} | {r['clip_fraction']:.3f} | {r['rollout_tokens_per_s']:.1f} | {r['sandbox_runs_per_s']:.2f} | "
          f"{r['wall_s']:.0f} |" for r in steps],
        "", f"Total rollout tokens {int(tokens[-1]) if tokens else 0}, training wall time {wall[-1] / 60 if wall else 0:.1f} min.",
        "", "![reward](reward.png) ![pass rate](train_pass_rate.png) ![cost](cost.png)", "",
        *repository_lines(run_dir),
        "## Decontamination", "", *decontamination_lines(run_dir), "",
        "## Held-out pass@1", "", *rows, "", "![held-out](heldout.png)" if plots else "", "",
    ]
    path = out / "report.md"
    path.write_text("\n".join(lines))
    (out / "per_task.jsonl").write_text("".join(json.dumps(r) + "\n" for r in per_task_records(run_dir, loop)))
    return path


def _heldout_scope(config: dict, limits: str) -> str:
    """What the held-out rows cover: the repository's held-out files (``loop --repo``, general benchmarks off),
    else the first N tasks of each benchmark."""
    ev = config.get("eval", {})
    if "repo" in config.get("tasks", {}).get("sources", ()):
        scope = (f"the first {ev['fim_limit']} of the repository's held-out tasks" if ev.get("fim_limit") else
                 "every task of the repository's held-out files (no file in both splits)")
        return f"Held-out evals: {scope}" + (f", and the first N tasks of each benchmark ({limits})"
                                             if ev.get("general") else "")
    return f"Held-out evals are limited to the first N tasks of each benchmark ({limits})"

