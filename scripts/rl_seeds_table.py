"""Held-out Δ of several RL runs (seeds) of one config, each against its own base evaluation, and pooled.

    python scripts/rl_seeds_table.py RUN_DIR [RUN_DIR ...] [--iteration 1]

Per run and benchmark: base pass@1, adapter pass@1, Δ with a paired bootstrap 95% interval over tasks. Pooled:
the per-task Δ averaged over the runs, bootstrapped over tasks (the runs share the task set). MBPP+ is also
shown on its 231 tasks outside MBPP train/validation. Markdown on stdout.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from evals.results import per_task_passes
from evals.subsets import subsets_of
from rl.report import bootstrap_ci, paired_bootstrap

CLEAN = subsets_of("mbppplus")[0]
VIEWS = [("MBPP+ (all 378)", "mbppplus", None), (f"MBPP+ (231 {CLEAN.description})", "mbppplus", CLEAN.keep),
         ("HumanEval+ (164)", "humanevalplus", None),
         ("MBPP validation (first 40; promotion)", "mbpp-validation", None)]


def rows(run_dirs: list[Path], iteration: int) -> list[str]:
    out = ["| benchmark | run | base | adapter | Δ (points) | paired 95% interval |", "|---|---|---|---|---|---|"]
    for label, bench, keep in VIEWS:
        pairs = []
        for run in run_dirs:
            base = per_task_passes(run / "evals" / "iter-0000" / bench)
            tuned = per_task_passes(run / "evals" / f"iter-{iteration:04d}" / bench)
            common = {t for t in set(base) & set(tuned) if keep is None or keep(t)}
            base, tuned = {t: base[t] for t in common}, {t: tuned[t] for t in common}
            if not common:
                continue
            pairs.append((base, tuned))
            d, lo, hi, n = paired_bootstrap(base, tuned)
            out.append(f"| {label} | {run.name} ({n} tasks) | {100 * _mean(base):.1f} | {100 * _mean(tuned):.1f} | "
                       f"{100 * d:+.1f} | [{100 * lo:+.1f}, {100 * hi:+.1f}] |")
        if len(pairs) > 1:
            common = set.intersection(*(set(b) for b, _ in pairs))
            diffs = [sum(t[k] - b[k] for b, t in pairs) / len(pairs) for k in sorted(common)]
            d, lo, hi = bootstrap_ci(diffs)
            out.append(f"| {label} | mean of {len(pairs)} runs ({len(common)} tasks) | | | **{100 * d:+.1f}** | "
                       f"[{100 * lo:+.1f}, {100 * hi:+.1f}] |")
    return out


def _mean(scores: dict[str, float]) -> float:
    return sum(scores.values()) / len(scores)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dirs", nargs="+", type=Path)
    parser.add_argument("--iteration", type=int, default=1)
    args = parser.parse_args()
    print("\n".join(rows(args.run_dirs, args.iteration)))


if __name__ == "__main__":
    main()
