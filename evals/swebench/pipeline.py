"""A simple agentless pipeline: BM25-locate files → ask for search/replace edits → patch → grade.

All prompts go to the generator at once (continuous batching); every instance gets one result line in
``results.jsonl`` (passed = resolved). Scores are unofficial SWE-bench numbers (see the data README).
"""

from __future__ import annotations

import shlex
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from evals import datasets
from evals.generate import Generator, GenRequest, make_generator
from evals.official_samples import write_samples
from evals.progress import Bars
from evals.results import SampleResult, result_record
from evals.rundir import RunDir, default_run_dir
from evals.scoring import summarize
from evals.spec import EvalSpec, EvalSummary
from evals.swebench.edits import EDIT_FORMAT, apply_edits, parse_edits
from evals.swebench.environment import HarnessConfig
from evals.swebench.harness import evaluate_patch
from evals.swebench.instance import SweInstance
from evals.swebench.retrieval import rank_files

MAX_FILE_CHARS = 8_000
TOP_FILES = 3
"""Files shown to the model, ranked by BM25 against the issue text."""
DEFAULT_WORK_DIR = Path("~/.cache/codeloop/swebench-envs").expanduser()


def unpack(instance: SweInstance, dest: Path) -> Path:
    """The base source tree as a git repo in ``dest`` (for retrieval and for turning edits into a diff)."""
    dest.mkdir(parents=True, exist_ok=True)
    archive = shlex.quote(str(Path(instance.archive).resolve()))  # NOTE: tar runs in dest, not in our cwd
    cmd = f"tar -xJf {archive} && git init -q && git add -A && git -c user.name=e -c user.email=e@l commit -qm base"
    subprocess.run(["bash", "-c", cmd], cwd=dest, check=True, capture_output=True)
    return dest


def build_messages(instance: SweInstance, src: Path, files: list[str]) -> list[dict[str, str]]:
    """The chat request: the issue, the ``files`` retrieval ranked first (cut to MAX_FILE_CHARS), the format."""
    shown = "\n\n".join(f"{f}\n```python\n{(src / f).read_text(errors='replace')[:MAX_FILE_CHARS]}\n```" for f in files)
    user = (f"Fix this issue in the repository.\n\nIssue:\n{instance.problem_statement.strip()}\n\n"
            f"Relevant files:\n\n{shown}\n\n{EDIT_FORMAT}")
    return [{"role": "user", "content": user}]


def edits_to_patch(src: Path, text: str, shown: list[str]) -> tuple[str, str]:
    """(unified diff of the edits in ``text`` applied to ``src``, problems); the tree is reset afterwards."""
    edits = parse_edits(text)
    problems = apply_edits(src, edits, shown) if edits else ["no edit blocks in the answer"]
    diff = subprocess.run(["git", "diff"], cwd=src, capture_output=True, text=True).stdout
    subprocess.run(["git", "checkout", "-q", "--", "."], cwd=src, check=False)
    return diff, "; ".join(problems)


def evaluate_swebench(spec: EvalSpec, generator: Generator | None = None,
                      work_dir: Path = DEFAULT_WORK_DIR) -> EvalSummary:
    start = time.perf_counter()
    spec = replace(spec, run_dir=Path(spec.run_dir or default_run_dir(spec)))
    tasks = datasets.load("swebench", swebench_dir=spec.swebench_dir)[: spec.limit]
    root = Path(spec.swebench_dir)
    rd = RunDir(spec.run_dir, spec)
    rd.open()
    done = rd.load(rd.results, lambda m: print(f"codeloop eval: warning: {m}", file=sys.stderr))
    todo = [t for t in tasks if (t.task_id, 0) not in done]
    config = HarnessConfig(work_dir=work_dir)
    gen_s = 0.0
    with tempfile.TemporaryDirectory() as tmp, Bars(spec.progress) as bars:
        instances = {t.task_id: SweInstance.from_row(t.metadata["instance"], root) for t in todo}
        srcs = {i: unpack(inst, Path(tmp) / i) for i, inst in instances.items()}
        shown = {i: rank_files(srcs[i], inst.problem_statement, TOP_FILES) for i, inst in instances.items()}
        if todo:
            generator = generator or make_generator(spec)
            tok = generator.tokenizer
            requests = [GenRequest((i, 0), tok.apply_chat_template(build_messages(inst, srcs[i], shown[i]), tokenize=False,
                                                                   add_generation_prompt=True),
                                   (), spec.max_tokens, spec.temperature, spec.top_p, spec.seed)
                        for i, inst in instances.items()]
            bars.add("generate", len(requests))
            bars.add("grade", len(requests))
            t0 = time.perf_counter()
            outputs = {}
            for g in generator.generate(requests):
                outputs[g.key[0]] = g
                bars.advance("generate")
            gen_s = time.perf_counter() - t0
            for i, g in outputs.items():
                patch, problems = edits_to_patch(srcs[i], g.text, shown[i])
                r = evaluate_patch(instances[i], patch, config)
                rd.results.append(result_record(SampleResult(
                    i, 0, r.resolved, r.status, {"resolved": r.resolved}, (problems + "\n" + r.message).strip()[:2000],
                    g.text, patch, g.num_tokens, r.test_seconds)))
                bars.advance("grade")
    records = rd.load(rd.results, lambda m: None)
    tasks = [replace(t, test_names=("resolved",), tests=("",)) for t in tasks]
    summary = summarize(spec, tasks, records, f"{len(tasks)} validated SWE-bench Lite instances (offline, unofficial)")
    summary.notes.append("SWE-bench results are unofficial: venv per instance, PyPI resolves newer dependencies")
    summary.generation_seconds, summary.wall_seconds = round(gen_s, 2), round(time.perf_counter() - start, 2)
    summary.label = spec.label()
    write_samples(spec.run_dir, [replace(t, benchmark="swebench") for t in tasks], records, spec.model)
    rd.write_summary(summary.as_dict())
    return summary
