"""The SWE-bench harness checked against itself: each gold patch must resolve its instance and the empty
patch must not (``codeloop eval canonical swebench``)."""

from __future__ import annotations

from pathlib import Path

from evals import datasets
from evals.progress import Bars
from evals.swebench.environment import HarnessConfig
from evals.swebench.harness import evaluate_patch
from evals.swebench.instance import SweInstance
from evals.swebench.pipeline import DEFAULT_WORK_DIR


def check_gold_and_empty(root: Path, limit: int | None = None, work_dir: Path = DEFAULT_WORK_DIR,
                         ids: list[str] | None = None, progress: bool = False) -> list[dict]:
    """One row per instance: gold and empty PatchResults and whether the harness behaved (gold resolves,
    empty does not, and the F2P/P2P counts equal the ones recorded at validation)."""
    tasks = datasets.load("swebench", swebench_dir=root)
    tasks = [t for t in tasks if ids is None or t.task_id in ids][:limit]
    config = HarnessConfig(work_dir=work_dir)
    rows = []
    with Bars(progress) as bars:
        bars.add("swebench", len(tasks))
        for t in tasks:
            inst = SweInstance.from_row(t.metadata["instance"], root)
            gold, empty = evaluate_patch(inst, inst.gold_patch, config), evaluate_patch(inst, "", config)
            recorded = t.metadata["instance"].get("validation", {})
            counts_match = all(
                recorded.get(name, {}).get("f2p") in (None, f"{r.f2p_passed}/{r.f2p_total}")
                and recorded.get(name, {}).get("p2p") in (None, f"{r.p2p_passed}/{r.p2p_total}")
                for name, r in (("gold", gold), ("empty", empty)))
            rows.append({"instance_id": t.task_id, "gold": gold.as_dict(), "empty": empty.as_dict(),
                         "ok": gold.resolved and not empty.resolved, "counts_match_validation": counts_match})
            bars.advance("swebench")
    return rows
