"""Repository FIM tasks without running anything: skip rules, spans of each kind, the split, the format."""

from __future__ import annotations

import ast

from evals.metrics import edit_similarity, exact_match
from evals.repo.source import functions, read_source, skip_reason
from evals.repo.spans import (
    MAX_SPAN_LINES,
    Lines,
    block_spans,
    body_span,
    choose,
    line_spans,
    logical_lines,
    pick_line_cuts,
)
from evals.repo.task import FimTask, read_tasks, split_of, write_tasks
from lsp.context import Mode, choose_mode, resolve
from tests.evals.minirepo import FILES, make_minirepo

SOURCE = FILES["minipkg/mathx.py"]


def _fn(name: str, text: str = SOURCE):
    return next(f for f in functions(ast.parse(text)) if f.qualname == name)


def test_skip_rules():
    assert skip_reason("tests/test_x.py") == "test file"
    assert skip_reason("pkg/test_helpers.py") == "test file"
    assert skip_reason("pkg/x_test.py") == "test file"
    assert skip_reason("conftest.py") == "test file"
    assert skip_reason("pkg/_vendor/six.py") == "vendored"
    assert skip_reason("pkg/api_pb2.py") == "generated"
    assert skip_reason("docs/conf.py").startswith("documentation")
    assert skip_reason("setup.py").startswith("not package code")
    assert skip_reason("src/pkg/core.py") is None


def test_read_source_reasons(tmp_path):
    root = make_minirepo(tmp_path / "r")
    assert read_source(root, "minipkg/broken.py").startswith("syntax error")
    assert read_source(root, "minipkg/schema_pb2.py").startswith("generated")
    names = [f.qualname for f in read_source(root, "minipkg/mathx.py").functions]
    assert names == ["clamp", "is_prime", "mean", "triple", "make_adder", "make_adder.<locals>.add",
                     "Counter.__init__", "Counter.bump"]


def test_body_span_keeps_the_docstring_visible():
    lines = Lines(SOURCE)
    span = body_span(_fn("clamp"), lines)
    assert SOURCE[span.start:span.end].startswith("if value < low:")
    assert SOURCE[span.start:span.end].endswith("return value")
    assert SOURCE[: span.start].endswith('"""Limit value to [low, high]."""\n    ')
    cursor = resolve(SOURCE[: span.start] + SOURCE[span.end:], span.first_line - 1, 4)
    assert choose_mode(cursor) is Mode.MULTI_LINE


def test_block_spans_are_statements_on_their_own_lines():
    lines = Lines(SOURCE)
    blocks = {SOURCE[s.start:s.end] for s in block_spans(_fn("is_prime"), lines)}
    assert "if n < 2:\n        return False" in blocks
    assert any(b.startswith("for d in range(2") for b in blocks)
    runs = {SOURCE[s.start:s.end] for s in block_spans(_fn("mean"), lines)}
    assert "total = sum(values)\n    count = len(values)\n    return total / count" not in runs  # = the body
    assert "total = sum(values)\n    count = len(values)" in runs
    assert all(len(b.split("\n")) <= MAX_SPAN_LINES for b in blocks | runs)


def test_line_spans_are_single_line_mode_rests_of_lines():
    lines = Lines(SOURCE)
    spans = line_spans(_fn("clamp"), lines, logical_lines(SOURCE))
    assert spans
    for s in spans:
        rest = SOURCE[s.start:s.end]
        assert "\n" not in rest and len(rest.strip()) >= 3
        row = lines.rows[s.first_line - 1]
        col = s.start - lines.starts[s.first_line - 1]
        assert row[col:].rstrip() == rest
        assert not row[:col].rstrip().endswith((":", "(", "[", "{"))
    assert len(pick_line_cuts(spans, 0, "m.py")) == len({s.first_line for s in spans})


def test_choice_and_split_are_stable():
    spans = line_spans(_fn("is_prime"), Lines(SOURCE), logical_lines(SOURCE))
    assert choose(spans, 0, "a.py", 2) == choose(list(reversed(spans)), 0, "a.py", 2)
    assert split_of("pkg/a.py", 0) == split_of("pkg/a.py", 0)
    splits = [split_of(f"pkg/m{i}.py", 0, 0.3) for i in range(400)]
    assert 0.2 < splits.count("heldout") / 400 < 0.4
    assert split_of("pkg/a.py", 0, 0.0) == "train" and split_of("pkg/a.py", 0, 1.0) == "heldout"


def _task(**kw) -> FimTask:
    base = dict(task_id="r:a.py:line:3:8", repo="r", source="/r", path="a.py", kind="line", function="f", line=2,
                character=8, prefix="def f():\n    x = 1\n    return ", middle="x + 1", suffix="\n",
                tests=("tests/test_a.py::test_f",), num_covering_tests=1, split="train", first_line=3, last_line=3)
    return FimTask(**{**base, **kw})


def test_task_format_round_trip(tmp_path):
    t = _task()
    assert t.splice(t.middle) == "def f():\n    x = 1\n    return x + 1\n"
    assert t.document() == "def f():\n    x = 1\n    return \n"
    write_tasks(tmp_path / "t.jsonl", [t, _task(task_id="b", kind="body", split="heldout")])
    assert read_tasks(tmp_path / "t.jsonl") == [t, _task(task_id="b", kind="body", split="heldout")]
    assert [x.task_id for x in read_tasks(tmp_path / "t.jsonl", split="heldout")] == ["b"]
    assert read_tasks(tmp_path / "t.jsonl", kinds=["line"]) == [t]


def test_scores():
    assert exact_match("x + 1 ", "x + 1") and not exact_match("x+1", "x + 1")
    assert edit_similarity("abc", "abc") == 1.0 and edit_similarity("", "") == 1.0
    assert edit_similarity("kitten", "sitting") == 1 - 3 / 7
    assert edit_similarity("", "abc") == 0.0


def test_editor_context_is_the_prompt_the_editor_builds(tmp_path):
    from evals.repo.completions import Workspace, editor_context
    from lsp.config import Settings
    from lsp.postprocess import finish as editor_finish

    root = make_minirepo(tmp_path / "r")
    text = (root / "minipkg/textx.py").read_text()
    start = text.index("loud = text.upper()")
    task = _task(path="minipkg/textx.py", kind="block", prefix=text[:start], middle="loud = text.upper()",
                 suffix=text[start + len("loud = text.upper()"):], line=text[:start].count("\n"), character=4)
    ctx = editor_context(task, Workspace(root), Settings())
    assert ctx.mode is Mode.MULTI_LINE and ctx.healed == "    "
    assert "minipkg/textx.py" in ctx.prompt and "<|fim_middle|>" in ctx.prompt
    assert all(s.path != "minipkg/textx.py" for s in ctx.snippets)  # the task's own file never leaks
    assert editor_finish("    loud = text.upper()\n    return loud\n", ctx, 12).startswith("loud = text.upper()")


def test_an_engine_that_cannot_load_ends_the_eval(tmp_path):
    import pytest

    from evals.repo.completions import EngineChoice
    from evals.repo.fim import FimEvalSpec, evaluate_fim
    from lsp.engine_client import EngineError

    root = make_minirepo(tmp_path / "r")
    write_tasks(tmp_path / "t.jsonl", [_task(source=str(root))])
    spec = FimEvalSpec(tmp_path / "t.jsonl", EngineChoice(model=str(tmp_path / "no-model")), tmp_path / "run", split=None)
    with pytest.raises(EngineError, match="cannot load model"):
        evaluate_fim(spec)
    assert not (tmp_path / "run/generations.jsonl").exists() or not (tmp_path / "run/generations.jsonl").read_text()


def test_a_nested_function_s_lines_are_its_own():
    spans = line_spans(_fn("make_adder"), Lines(SOURCE), logical_lines(SOURCE))
    assert [SOURCE[s.start:s.end] for s in spans] == ["add"]  # `return add` only: the rest is add's


def test_covering_tests_are_chosen_the_same_whatever_the_timings():
    from evals.repo.miner import MineOptions, pick_tests
    from sandbox.suite.coverage_map import CoverageMap

    ids = [f"tests/test_a.py::test_{i}" for i in range(20)]
    def cmap(durations):
        return CoverageMap("/r", "k", None, {}, ids, ["passed"] * 20, durations, {})

    options = MineOptions(out=None, max_tests=5)  # type: ignore[arg-type]
    first = pick_tests(ids, cmap([0.01 * i for i in range(20)]), options)
    second = pick_tests(list(reversed(ids)), cmap([0.3 - 0.01 * i for i in range(20)]), options)
    assert first == second and len(first) == 5
    slow = cmap([5.0 if i < 19 else 0.01 for i in range(20)])
    assert pick_tests(ids, slow, options) == ("tests/test_a.py::test_19",)  # slow tests only when needed
