"""Pure prompt building: positions, modes, budgets, snippets, stable layout."""

from __future__ import annotations

import pytest

from inference.fim import FILE_SEP, FIM_MIDDLE, FIM_PREFIX, FIM_SUFFIX
from lsp.bm25 import tokenize
from lsp.context import Mode, PositionError, build, choose_mode, cut_prefix, resolve, utf16_to_index
from lsp.snippets import SourceFile, rank, select

from .helpers import ctx


def test_fim_prompt_splits_at_cursor():
    c = ctx("def add(a, b):\n    return |\n\nprint(add(1, 2))\n")
    assert c.prompt == f"{FIM_PREFIX}def add(a, b):\n    return {FIM_SUFFIX}\n\nprint(add(1, 2))\n{FIM_MIDDLE}"
    assert c.cursor.line_prefix == "    return " and c.indent == "    "


@pytest.mark.parametrize(
    ("marked", "mode"),
    [
        ("x = |", Mode.SINGLE_LINE),
        ("foo(|)", Mode.SINGLE_LINE),
        ("|", Mode.MULTI_LINE),
        ("def f():\n    |", Mode.MULTI_LINE),
        ("def f():|", Mode.MULTI_LINE),
        ("if (x) {|}", Mode.MULTI_LINE),
        ("  |return x", Mode.SINGLE_LINE),
        ("x = [1, 2]|", Mode.SINGLE_LINE),
    ],
)
def test_mode(marked, mode):
    assert ctx(marked).mode is mode
    text_mode = choose_mode(ctx(marked).cursor)
    assert text_mode is mode


def test_utf16_positions():
    line = "s = '😀é' + x"
    # 😀 is two UTF-16 units; the cursor after it is at unit 7, Python index 6
    assert utf16_to_index(line, 7) == 6
    assert utf16_to_index(line, 6) == 5  # inside the surrogate pair: never split the character
    assert utf16_to_index(line, 1000) == len(line)
    assert utf16_to_index(line, 7, "utf-32") == 7
    assert utf16_to_index("é", 1, "utf-8") == 0 and utf16_to_index("é", 2, "utf-8") == 1


def test_positions_outside_the_document():
    with pytest.raises(PositionError):
        resolve("a\nb\n", 5, 0)
    with pytest.raises(PositionError):
        resolve("a", -1, 0)
    cur = resolve("abc\r\ndef", 0, 99)  # past the end of the line: the end of the line
    assert cur.line_prefix == "abc" and cur.line_suffix == ""


def test_prefix_budget_starts_on_aligned_line_so_it_moves_rarely():
    text = "".join(f"line_{i:04d} = {i}\n" for i in range(400))
    starts = set()
    for line in range(300, 330):
        c = build("a.py", text, line, 0, budget_chars=2000)
        assert len(c.prefix) + len(c.suffix) <= 2000
        starts.add(c.prefix.split("\n", 1)[0])
    assert len(starts) <= 2  # 30 lines of typing: the prompt start moved at most once


def test_cut_prefix_small_budget_falls_back_to_any_line():
    text = "x" * 50 + "\n" + "y" * 10
    assert cut_prefix(text, 20) == "y" * 10


def test_huge_document_is_cut_to_budget():
    text = ("a = 1\n" * 2_000_000) + "b = "
    c = build("big.py", text, 2_000_000, 4, budget_chars=4000)
    assert len(c.prompt) < 4200 and c.prefix.endswith("b = ")


def test_snippets_ranked_by_similarity_and_laid_out_by_path():
    others = [
        SourceFile("z_util.py", "def parse_config(path):\n    return load_yaml(path)\n"),
        SourceFile("a_math.py", "def add(a, b):\n    return a + b\n"),
        SourceFile("m_io.py", "def write_config(path, config):\n    save_yaml(path, config)\n"),
    ]
    c = ctx("cfg = parse_config('x.yaml')\nwrite_config(|", others=others, snippet_budget_chars=10_000)
    paths = [s.path for s in c.snippets]
    assert paths == sorted(paths) and "a_math.py" not in paths and "z_util.py" in paths
    assert c.prompt.index(f"{FILE_SEP}m_io.py") < c.prompt.index(f"{FILE_SEP}z_util.py")
    assert c.prompt.rindex(FILE_SEP) < c.prompt.index(FIM_PREFIX)  # current file last


def test_snippet_budget_and_self_exclusion():
    big = SourceFile("b.py", "\n".join(f"def parse_{i}(config): pass" for i in range(500)))
    chosen = select("parse config", [big], budget_chars=300)
    assert sum(len(s.text) for s in chosen) <= 300
    c = build("a.py", "parse_config = 1\n", 0, 3, others=[SourceFile("a.py", "parse_config stuff")])
    assert not c.snippets


def test_tokenize_splits_identifiers():
    assert {"parse", "config", "parse_config", "http", "httpclient"} <= set(tokenize("parse_config httpClient"))
    assert rank("", [SourceFile("a", "x")]) == []


def test_retrieval_query_is_stable_while_typing_a_line():
    """The snippets open the prompt: typing on a line (or a few lines further) must not change them."""
    from lsp.context import QUERY_ALIGN_LINES, retrieval_query

    head = "".join(f"line_{i} = {i}\n" for i in range(40))
    queries = set()
    for typed in ("d", "def", "def f(x):", "def f(x):\n    return"):
        text = head + typed
        cur = resolve(text, text.count("\n"), len(text.split("\n")[-1]))
        queries.add(retrieval_query(text, cur))
    assert len(queries) == 1
    (query,) = queries
    assert "line_39" in query and "def" not in query
    text = head * 2  # 80 lines: the window moves once the cursor passes the next aligned line
    cur = resolve(text, 40 + QUERY_ALIGN_LINES, 0)
    assert retrieval_query(text, cur) != query


def test_indentation_before_the_cursor_is_left_to_the_model():
    c = ctx("def f(x):\n    |\n    return y\n")
    assert c.mode is Mode.MULTI_LINE and c.healed == "    "
    assert c.prefix == "def f(x):\n"
    assert f"{FIM_PREFIX}def f(x):\n{FIM_SUFFIX}" in c.prompt
    typed = ctx("def f(x):\n    y = |\n")
    assert typed.healed == "" and typed.prefix.endswith("    y = ")


def test_spm_puts_the_code_after_the_cursor_first_and_ends_with_the_prefix():
    text = "def add(a, b):\n    return \n\nprint(add(1, 2))\n"
    c = build("m.py", text, 1, 11, order="spm")
    assert c.prompt == f"{FIM_PREFIX}{FIM_SUFFIX}\n\nprint(add(1, 2))\n{FIM_MIDDLE}def add(a, b):\n    return "
    psm = build("m.py", text, 1, 11)
    assert (c.prefix, c.suffix, c.mode) == (psm.prefix, psm.suffix, psm.mode)
    with pytest.raises(ValueError, match="FIM order"):
        build("m.py", text, 1, 11, order="mps")


@pytest.mark.parametrize("order", ["psm", "spm"])
def test_a_keystroke_changes_the_prompt_from_the_cursor_on_or_only_at_its_end(order):
    """What the prefix cache can keep while the user types: under psm the prompts of two keystrokes part at
    the cursor (the suffix after it is new), under spm only the typed character is new."""
    head = "".join(f"value_{i} = compute({i})\n" for i in range(30))
    tail = "".join(f"def helper_{i}(x):\n    return x + {i}\n\n" for i in range(10))
    before, after = head + "total = val", head + "total = valu"
    a = build("m.py", before + "\n" + tail, 30, 11, order=order).prompt
    b = build("m.py", after + "\n" + tail, 30, 12, order=order).prompt
    shared = next(i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y) if a != b[:len(a)] else len(a)
    if order == "spm":
        assert shared == len(a) and b == a + "u"
    else:
        assert shared == a.index(FIM_SUFFIX) and len(a) - shared > len(tail) // 2
