"""Risky-code findings from bandit, run in memory through its library API.

NOTE: bandit's manager only scans files, but the piece that does the work,
``BanditNodeVisitor``, takes the source and a file-like object. Building the config and the test
set loads every plugin through stevedore (~100 ms), so that is done once per process and reused;
a visitor per call is cheap.
"""

from __future__ import annotations

import io
import logging
from functools import lru_cache

from bandit.core import config as b_config
from bandit.core import meta_ast, metrics, node_visitor, test_set

from .finding import Finding, Kind, Severity
from .snippet import Snippet

_FILENAME = "suggestion.py"


@lru_cache(maxsize=1)
def _test_set() -> test_set.BanditTestSet:
    logging.getLogger("bandit").setLevel(logging.ERROR)  # it warns about the module name per call
    return test_set.BanditTestSet(b_config.BanditConfig(), profile={})


def bandit_findings(snippet: Snippet, text_lines: list[str]) -> list[Finding]:
    """Bandit's issues on ``snippet``, with ranges mapped to the original text."""
    data = snippet.source.encode("utf-8", "surrogatepass")
    visitor = node_visitor.BanditNodeVisitor(
        _FILENAME, io.BytesIO(data), meta_ast.BanditMetaAst(), _test_set(), False, {}, metrics.Metrics()
    )
    visitor.process(data)
    return [_to_finding(item, snippet, text_lines) for item in visitor.tester.results]


def _to_finding(item, snippet: Snippet, text_lines: list[str]) -> Finding:
    lines = item.linerange or [item.lineno]
    start_line, start_col = snippet.to_original(lines[0], item.col_offset)
    end_line, end_col = snippet.to_original(lines[-1], item.end_col_offset)
    if (end_line, end_col) <= (start_line, start_col) or len(lines) > 1 and item.end_col_offset <= 0:
        end_line = start_line
        end_col = len(text_lines[start_line].rstrip("\r\n")) if start_line < len(text_lines) else start_col
    return Finding(
        kind=Kind.RISKY,
        rule_id=item.test_id,
        severity=Severity(item.severity.lower()),
        confidence=Severity(item.confidence.lower()),
        message=f"{item.text} ({item.test})",
        start_line=start_line,
        start_col=start_col,
        end_line=end_line,
        end_col=max(end_col, start_col),
    )
