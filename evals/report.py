"""`codeloop eval report`: a markdown table and matplotlib plots comparing run summaries, and the paired
difference of each run against the first run of its benchmark (on the whole and on every named subset)."""

from __future__ import annotations

import json
from pathlib import Path

from evals.metrics import paired_bootstrap
from evals.results import per_task_passes
from evals.spec import EvalSummary
from evals.subsets import subsets_of


class ReportError(Exception):
    """A run folder has no readable summary.json."""


def load_summary(run_dir: Path) -> EvalSummary:
    path = Path(run_dir) / "summary.json"
    if not path.is_file():
        raise ReportError(f"{run_dir}: no summary.json (is it a finished `codeloop eval` run folder?)")
    try:
        return EvalSummary.from_dict(json.loads(path.read_text()))
    except (ValueError, TypeError) as exc:
        raise ReportError(f"{path}: unreadable summary ({exc})") from exc


def _metric_columns(summaries: list[EvalSummary]) -> list[str]:
    cols: list[str] = []
    for s in summaries:
        for name, scores in s.per_test.items():
            for k in scores:
                col = f"{name} {k}"
                if len(s.per_test) > 1 and col not in cols:
                    cols.append(col)
        for k in s.pass_at_k:
            if k not in cols:
                cols.append(k)
        for name, scores in s.subsets.items():
            cols += [f"{name} {k}" for k in scores if k.startswith("pass@") and f"{name} {k}" not in cols]
    return cols


def _value(s: EvalSummary, col: str) -> float | None:
    if " " in col:
        name, k = col.split(" ", 1)
        return s.per_test.get(name, s.subsets.get(name, {})).get(k)
    return s.pass_at_k.get(col)


def markdown_table(summaries: list[EvalSummary]) -> str:
    """One row per run: label, benchmark, coverage, every pass@k column (in %), timings, how many
    generated samples the security scanner flagged (medium or high severity) and how many the tamper
    scan flagged (code that reaches for the checker: gc, frames, builtins, patched modules...)."""
    cols = _metric_columns(summaries)
    head = ["run", "benchmark", "coverage", *cols, "samples", "T", "gen s", "exec s", "tokens", "flagged", "tamper"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for s in summaries:
        vals = [_value(s, c) for c in cols]
        cells = [s.label or s.model, s.benchmark, s.coverage, *("—" if v is None else f"{100 * v:.1f}" for v in vals),
                 str(s.num_samples), f"{s.temperature:g}", f"{s.generation_seconds:.0f}", f"{s.execution_seconds:.0f}",
                 str(s.num_generated_tokens), _flagged(s), _tampered(s)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _flagged(s: EvalSummary) -> str:
    sec = s.security or {}
    return f"{sec['samples_with_findings']}/{sec['num_samples']}" if "num_samples" in sec else "—"


def _tampered(s: EvalSummary) -> str:
    t = s.tampering or {}
    return f"{t['num_flagged']}/{t['num_samples']}" if "num_samples" in t else "—"


def paired_table(run_dirs: list[Path], summaries: list[EvalSummary]) -> str:
    """Δ pass@1 (points) of every run against the first run of the same benchmark, with a paired bootstrap 95%
    interval over the tasks both judged (per-task mean pass over samples), then the same on each named subset
    of the benchmark (MBPP+: the 231 tasks outside MBPP train/validation). "" when no benchmark has two runs."""
    lines = []
    first: dict[str, tuple[str, dict[str, float]]] = {}
    for run_dir, s in zip(run_dirs, summaries, strict=True):
        scores = per_task_passes(run_dir)
        if s.benchmark not in first:
            first[s.benchmark] = (s.label or s.model, scores)
            continue
        ref_label, ref = first[s.benchmark]
        parts = [("all", set(ref) & set(scores))]
        parts += [(sub.name, {t for t in parts[0][1] if sub.keep(t)}) for sub in subsets_of(s.benchmark)]
        for part, tasks in parts:
            d, lo, hi, n = paired_bootstrap({t: ref[t] for t in tasks}, {t: scores[t] for t in tasks})
            lines.append(f"| {s.label or s.model} | {ref_label} | {s.benchmark} | {part} | {n} | "
                         f"{100 * d:+.1f} | [{100 * lo:+.1f}, {100 * hi:+.1f}] |")
    if not lines:
        return ""
    head = ["| run | vs | benchmark | tasks | n | Δ pass@1 (points) | paired 95% interval |", "|" + "---|" * 7]
    return "\n".join(head + lines) + "\n"


def plot(summaries: list[EvalSummary], out: Path) -> Path:
    """A grouped bar chart of every pass@k column per run (PNG, Agg backend)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = _metric_columns(summaries)
    fig, ax = plt.subplots(figsize=(max(6, 1.5 * len(cols) * len(summaries) ** 0.5 + 3), 4))
    width = 0.8 / max(1, len(summaries))
    for i, s in enumerate(summaries):
        xs = [j + i * width for j in range(len(cols))]
        ys = [100 * (_value(s, c) or 0.0) for c in cols]
        ax.bar(xs, ys, width, label=f"{s.label or s.model} ({s.benchmark})")
    ax.set_xticks([j + width * (len(summaries) - 1) / 2 for j in range(len(cols))], cols)
    ax.set_ylabel("%")
    ax.set_ylim(0, 100)
    ax.legend(fontsize="small")
    ax.set_title("codeloop eval")
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out


def write_report(run_dirs: list[Path], out_dir: Path) -> tuple[Path, Path]:
    """Write ``report.md`` and ``pass_at_k.png`` into ``out_dir``; returns both paths."""
    summaries = [load_summary(d) for d in run_dirs]
    out_dir.mkdir(parents=True, exist_ok=True)
    png = plot(summaries, out_dir / "pass_at_k.png")
    notes = [f"- {s.label or s.model} / {s.benchmark}: {n}" for s in summaries for n in s.notes]
    body = "# codeloop eval report\n\n" + markdown_table(summaries)
    paired = paired_table([Path(d) for d in run_dirs], summaries)
    if paired:
        body += "\nDifference against the first run of the same benchmark (tasks resampled together):\n\n" + paired
    if notes:
        body += "\nNotes:\n" + "\n".join(notes) + "\n"
    body += f"\n![pass@k]({png.name})\n"
    md = out_dir / "report.md"
    md.write_text(body)
    return md, png
