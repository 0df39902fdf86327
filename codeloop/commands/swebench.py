"""`codeloop eval canonical swebench`: prints the harness's self-check (evals/swebench/canonical.py)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def run_swebench_canonical(args: argparse.Namespace, root: Path) -> int:
    from evals.swebench.canonical import check_gold_and_empty

    rows = check_gold_and_empty(root, args.limit, progress=not args.json and sys.stderr.isatty())
    if args.json:
        print(json.dumps(rows, indent=1))
    else:
        gold = sum(r["gold"]["resolved"] for r in rows)
        empty = sum(r["empty"]["resolved"] for r in rows)
        print(f"swebench: gold resolves {gold}/{len(rows)}, empty resolves {empty}/{len(rows)}")
        for r in rows:
            if not r["ok"] or not r["counts_match_validation"]:
                print(f"  {r['instance_id']}: gold {r['gold']['status']}, empty {r['empty']['status']}, "
                      f"counts match validation: {r['counts_match_validation']}")
    return 0 if all(r["ok"] for r in rows) else 1
