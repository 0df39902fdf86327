"""Synthetic tasks with execution filtering: OSS-Instruct from standard-library seeds, Evol-Instruct variants.

OSS-Instruct: a function from the Python standard library's own source on disk (PSF licence, permissive)
inspires the model to write a new problem + solution + asserts in ``FORMAT``. Evol-Instruct: the model
rewrites an existing task into a harder one in the same format. Every generated task then goes through
``clean``: sandbox validation (reference passes, trivial wrong solution fails), MinHash dedup, n-gram
decontamination against every eval set, and the security scanner.
"""

from __future__ import annotations

import ast
import logging
import random
import re
import sysconfig
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rl.decontamination import EvalIndex, decontaminate
from rl.filters import FilterReport, dedup, scanner_filter
from rl.tasks import RLTask, guess_entry_point, instruction_with_example, split_asserts, validate

log = logging.getLogger(__name__)

FORMAT = """Answer in exactly this format:
### Problem
<the problem statement, one paragraph, naming the function to write>
### Solution
```python
<a self-contained Python function>
```
### Tests
```python
<3 to 5 lines, each a single assert calling the function>
```"""
OSS_PROMPT = """Here is a code snippet from the Python standard library ({origin}):
```python
{snippet}
```
Inspired by it, write a new, self-contained programming problem that asks for one Python function, \
with a correct solution and tests. Do not copy the snippet.
""" + FORMAT
EVOL_PROMPT = """Here is a programming problem:
{instruction}
Write a harder version of it by {method}. It must still ask for one Python function.
""" + FORMAT
EVOL_METHODS = ("adding one more constraint or requirement", "requiring it to handle edge cases such as empty input",
                "asking for a more general version with an extra parameter", "replacing a common requirement with a less common one")
_SECTION = re.compile(r"###\s*Problem\s*\n(?P<problem>.*?)###\s*Solution\s*\n(?P<solution>.*?)###\s*Tests\s*\n(?P<tests>.*)", re.S)
_FENCE = re.compile(r"```(?:python|py)?\s*\n(.*?)```", re.S)
SKIP_DIRS = ("test", "tests", "idlelib", "lib2to3", "site-packages", "dist-packages", "turtledemo", "tkinter", "ensurepip")


@dataclass(frozen=True)
class Seed:
    origin: str
    """module path : function name."""
    code: str


def stdlib_seeds(count: int, seed: int = 0, min_lines: int = 5, max_lines: int = 30,
                 root: Path | None = None) -> list[Seed]:
    """``count`` public top-level functions of modest size from the stdlib source, sampled reproducibly."""
    root = Path(root or sysconfig.get_paths()["stdlib"])
    files = sorted(p for p in root.rglob("*.py") if not any(part in SKIP_DIRS for part in p.relative_to(root).parts))
    rng = random.Random(seed)
    rng.shuffle(files)
    seeds: list[Seed] = []
    for path in files:
        try:
            text = path.read_text(encoding="utf-8")
            tree = ast.parse(text)
        except (OSError, UnicodeDecodeError, SyntaxError, ValueError):
            continue
        funcs = [n for n in tree.body if isinstance(n, ast.FunctionDef) and not n.name.startswith("_")
                 and min_lines <= n.end_lineno - n.lineno + 1 <= max_lines]
        if funcs:
            fn = rng.choice(funcs)
            seeds.append(Seed(f"{path.relative_to(root)}:{fn.name}", ast.get_source_segment(text, fn) or ""))
        if len(seeds) >= count:
            break
    return seeds


def parse_synth(text: str, task_id: str, source: str) -> RLTask | None:
    """The task in a model answer written in ``FORMAT``; None when any part is missing or unparseable."""
    m = _SECTION.search(text)
    if m is None:
        return None
    solution, tests = _FENCE.search(m["solution"] + "\n```"), _FENCE.search(m["tests"] + "\n```")
    if solution is None or tests is None:
        return None
    code, asserts = solution.group(1).strip("\n") + "\n", split_asserts(tests.group(1))
    try:
        ast.parse(code)
    except SyntaxError:
        return None
    entry = guess_entry_point(code, asserts)
    problem = m["problem"].strip()
    if not (problem and asserts and entry):
        return None
    return RLTask(task_id=task_id, instruction=instruction_with_example(problem, asserts[0]), tests=asserts,
                  reference=code, entry_point=entry, source=source)


def _chat(engine: Any, prompts: Sequence[str], seed: int, max_tokens: int = 640) -> list[str]:
    """One sampled answer per prompt ("" where the engine refused it, e.g. a prompt over the context)."""
    from evals.generate import EngineGenerator, GenRequest

    texts = [engine.tokenizer.apply_chat_template([{"role": "user", "content": p}], tokenize=False,
                                                  add_generation_prompt=True) for p in prompts]
    requests = [GenRequest((f"synth-{seed}", i), t, (), max_tokens, 0.7, 0.95, seed * 7919 + i)
                for i, t in enumerate(texts)]
    answers = [""] * len(texts)
    for g in EngineGenerator(engine, engine.adapter_key).generate(requests):
        if g.error:
            log.warning("synth prompt %d skipped: %s", g.key[1], g.error)
        answers[g.key[1]] = g.text
    return answers


def oss_instruct(engine: Any, count: int, seed: int = 0) -> list[RLTask]:
    """Unfiltered tasks from ``count`` stdlib seeds (unparseable answers are dropped and logged)."""
    seeds = stdlib_seeds(count, seed)
    answers = _chat(engine, [OSS_PROMPT.format(origin=s.origin, snippet=s.code) for s in seeds], seed)
    tasks = [parse_synth(a, f"synth/oss/{seed}/{i}", f"oss:{s.origin}") for i, (s, a) in enumerate(zip(seeds, answers, strict=True))]
    log.info("oss-instruct: %d of %d answers parsed", sum(t is not None for t in tasks), len(tasks))
    return [t for t in tasks if t is not None]


def evol_instruct(engine: Any, tasks: Sequence[RLTask], seed: int = 0) -> list[RLTask]:
    """A harder variant of each task (unfiltered)."""
    rng = random.Random(seed)
    prompts = [EVOL_PROMPT.format(instruction=t.instruction, method=rng.choice(EVOL_METHODS)) for t in tasks]
    answers = _chat(engine, prompts, seed)
    out = [parse_synth(a, f"{t.task_id}/evol{seed}", f"evol:{t.task_id}") for t, a in zip(tasks, answers, strict=True)]
    return [t for t in out if t is not None]


def _ident(t: RLTask) -> str:
    return t.task_id


def _text(t: RLTask) -> str:
    return t.instruction + "\n" + t.reference


def clean(tasks: Sequence[RLTask], report: FilterReport | None = None, index: EvalIndex | None = None,
          run_many=None, backend: str = "auto") -> list[RLTask]:
    """Dedup, decontaminate (rl/decontamination.py), scan, validate in the sandbox (each drop in ``report``)."""
    report = report if report is not None else FilterReport()
    kept = dedup(tasks, _text, _ident, report=report)
    kept, removed = decontaminate(kept, "synth", index)
    for rec in removed.removed:
        report.drop(f"eval_{rec['reason']}", rec["task_id"])
    kept = scanner_filter(kept, lambda t: t.reference, _ident, report=report)
    sub = FilterReport()
    kept = validate(kept, report=sub, run_many=run_many, backend=backend)
    for reason, ids in sub.dropped.items():
        for i in ids:
            report.drop(reason, i)
    report.kept = len(kept)
    return kept


def synthesize(engine: Any, count: int, seed: int = 0, report: FilterReport | None = None) -> list[RLTask]:
    """OSS-Instruct tasks plus an Evol-Instruct variant of each, cleaned."""
    base = oss_instruct(engine, count, seed)
    return clean(base + evol_instruct(engine, base, seed), report)
