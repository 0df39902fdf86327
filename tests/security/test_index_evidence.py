"""What makes a licence-index match evidence of copying: enough code covered, not a shared docstring shell;
and vendored copies of other projects left out of the index."""

import textwrap
from dataclasses import replace
from pathlib import Path

import pytest

from security import ScanConfig, scan
from security.config import MatchThresholds
from security.corpus import renamed
from security.index import FingerprintIndex, IndexMatch, Project, SourceFile
from security.sdist import Sdist, python_files
from tests.security.samples import MERGE_INTERVALS

PROJECT = Project("gplproj", "1.0", "GPL-3.0-only")

# Two methods that are mostly docstring: their code is the same boilerplate shell once names and
# literals are normalised (what the tuning split's false positives looked like).
INDEXED_SHELL = textwrap.dedent('''
    def map_method(self, method_name: str, *args: Any, **kwds: Any) -> Any:
        """Iterate over the extensions invoking a method by name.

        :param method_name: The extension method name to call for each extension.
        :param args: Variable arguments to pass to method
        :param kwds: Keyword arguments to pass to method
        :returns: List of values returned from methods
        """
        return self.map(self._call_extension_method, method_name, *args, **kwds)
''')
PERMISSIVE_SHELL = textwrap.dedent('''
    def send_packet(conn, payload: bytes, *extra: Chunk, **options: Flag) -> Reply:
        """Send one packet and wait for the peer's reply.

        The payload is framed with its length; extra chunks follow it unframed.
        Options are passed to the transport as they are.
        Raises ``ConnectionError`` when the peer hangs up before replying.
        """
        return conn.call(conn._frame_and_send, payload, *extra, **options)
''')
COPIED = MERGE_INTERVALS


@pytest.fixture
def index_path(tmp_path: Path) -> Path:
    """An index with the shipped k and w: one file with the docstring shell and a real function."""
    path = tmp_path / "evidence.idx"
    FingerprintIndex.build([SourceFile(PROJECT, "gplproj/ext.py", INDEXED_SHELL + "\n\n" + COPIED)]).save(path)
    return path


def findings(code: str, index_path: Path, thresholds: MatchThresholds | None = None):
    config = ScanConfig(risky=False, secrets=False, pii=False, licence_text=False, index_path=index_path)
    if thresholds is not None:
        config = replace(config, index_thresholds=thresholds)
    return [f for f in scan(code, config=config) if f.related is not None]


def test_docstring_shell_shares_fingerprints_but_is_not_a_finding(index_path: Path):
    match = FingerprintIndex.load(index_path).best_match(PERMISSIVE_SHELL)
    defaults = ScanConfig().index_thresholds
    # the old rule (fingerprints and fraction only) took this for a copy ...
    assert match is not None and match.num_shared >= defaults.min_matches and match.fraction >= defaults.min_fraction
    assert findings(PERMISSIVE_SHELL, index_path, replace(defaults, min_tokens=0))
    # ... but it covers one k-gram's worth of tokens, less than the evidence the scanner asks for
    assert match.num_tokens < defaults.min_tokens
    assert findings(PERMISSIVE_SHELL, index_path) == []


def test_copied_docstring_function_is_a_finding_by_its_literals(index_path: Path):
    """A verbatim or renamed copy of the mostly-docstring method covers as few tokens as the look-alike,
    but shares its docstring: that is the evidence."""
    for copy in (INDEXED_SHELL, renamed(INDEXED_SHELL), "    " + INDEXED_SHELL.replace("\n", "\n    ")):
        match = FingerprintIndex.load(index_path).best_match(copy)
        assert match is not None and match.num_tokens < ScanConfig().index_thresholds.min_tokens
        assert match.num_literals >= 1
        (finding,) = findings(copy, index_path)
        assert finding.related.path == "gplproj/ext.py"
    assert FingerprintIndex.load(index_path).best_match(PERMISSIVE_SHELL).num_literals == 0


def test_literal_fingerprints_need_the_index_to_have_them(tmp_path: Path):
    """An index built without literal fingerprints (``min_literal_chars=None``, as before them) finds none."""
    path = tmp_path / "old.idx"
    FingerprintIndex.build([SourceFile(PROJECT, "gplproj/ext.py", INDEXED_SHELL)], min_literal_chars=None).save(path)
    loaded = FingerprintIndex.load(path)
    assert loaded.min_literal_chars is None and loaded.best_match(INDEXED_SHELL).num_literals == 0
    assert findings(INDEXED_SHELL, path) == []


def test_copied_function_covers_enough_tokens(index_path: Path):
    match = FingerprintIndex.load(index_path).best_match(COPIED)
    assert match is not None and match.num_tokens >= ScanConfig().index_thresholds.min_tokens
    (finding,) = findings(COPIED, index_path)
    assert finding.related.path == "gplproj/ext.py" and "tokens)" in finding.message


def test_covered_tokens_count_the_union_of_shared_kgrams():
    index = FingerprintIndex.build([SourceFile(PROJECT, "gplproj/ext.py", COPIED)], k=5, w=1)
    match = index.best_match(COPIED)
    # w = 1 keeps every k-gram, so a verbatim copy covers every token of the function once
    from security.fingerprint import normalised_tokens

    assert match.num_tokens == len(normalised_tokens(COPIED)[0])
    assert match.num_shared < match.num_tokens  # overlapping k-grams are not counted twice


def test_thresholds_accept_only_when_every_bar_is_met():
    match = IndexMatch(PROJECT, "a.py", 0, num_shared=4, num_fingerprints=8, start_line=0, end_line=9,
                       num_tokens=40, num_literals=0)
    assert MatchThresholds(4, 0.5, 40).accepts(match)
    assert not MatchThresholds(5, 0.5, 40).accepts(match)
    assert not MatchThresholds(4, 0.6, 40).accepts(match)
    assert not MatchThresholds(4, 0.5, 41).accepts(match)
    assert MatchThresholds(4, 0.5, 41).accepts(replace(match, num_literals=1))  # a shared literal waives min_tokens
    assert not MatchThresholds(4, 0.5, 41, min_literals=2).accepts(replace(match, num_literals=1))
    assert not MatchThresholds(5, 0.5, 0).accepts(replace(match, num_literals=3))  # ... and nothing else
    assert not MatchThresholds(1, 0.0, 0).accepts(None)
    for bad in ((0, 0.3, 0), (2, 1.5, 0), (2, 0.3, -1), (2, 0.3, 0, 0)):
        with pytest.raises(ValueError):
            MatchThresholds(*bad)


def test_vendored_external_folder_is_not_the_projects_code(tmp_path: Path):
    root = tmp_path / "proj-1.0"
    (root / "proj" / "external" / "packaging").mkdir(parents=True)
    (root / "proj" / "external" / "packaging" / "tags.py").write_text("def tag():\n    return 1\n")
    (root / "proj" / "core.py").write_text("def core():\n    return 2\n")
    assert [path for path, _ in python_files(Sdist("proj", "1.0", root))] == ["proj/core.py"]
