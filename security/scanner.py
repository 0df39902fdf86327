"""`scan(code) -> list[Finding]`: every detector over one suggestion; never raises.

A detector that fails on some input yields one ``scan.error`` finding naming it, and the others
still report. Input over ``ScanConfig.max_chars`` is cut there and a ``scan.truncated`` finding
says so; binary input gives a single ``scan.error`` finding.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from pathlib import Path

from .bandit_rules import bandit_findings
from .config import ScanConfig
from .finding import Finding, Kind, Related, Severity
from .index import load_cached
from .licence_text import licence_severity, licence_text_findings
from .pii_rules import pii_findings
from .risky_rules import RULES, rule_findings
from .secret_rules import secret_findings
from .shell_rules import destructive_findings
from .snippet import Snippet, parse_snippet, split_lines

LOG = logging.getLogger(__name__)
_PYTHON_SUFFIXES = (".py", ".pyi", ".pyw")
_MAX_CONTROL_FRACTION = 0.1


def scan(code: object, *, filename: str | None = None, config: ScanConfig | None = None) -> list[Finding]:
    """Findings for ``code`` (0-based LSP-style ranges), sorted by position. Never raises."""
    config = config or ScanConfig()
    try:
        text, notes = _prepare(code, config)
        if text is None:
            return notes
        return _finalise(notes + _run_detectors(text, filename, config), split_lines(text), config)
    except Exception as exc:  # noqa: BLE001 - the promise is "never raises"
        LOG.exception("scan failed")
        return [_error(f"scan failed: {type(exc).__name__}: {exc}")]


def _prepare(code: object, config: ScanConfig) -> tuple[str | None, list[Finding]]:
    if isinstance(code, bytes | bytearray):
        code = bytes(code).decode("utf-8", errors="replace")
    if not isinstance(code, str):
        return None, [_error(f"cannot scan a {type(code).__name__}: expected text")]
    notes = []
    if len(code) > config.max_chars:
        notes.append(_error(f"input has {len(code):,} characters; only the first {config.max_chars:,} were scanned",
                            rule_id="scan.truncated"))
        code = code[: config.max_chars]
    sample = code[:10_000]
    controls = sum(1 for c in sample if ord(c) < 32 and c not in "\t\n\r\x0c") + sample.count("\ufffd")
    if "\x00" in sample or controls > _MAX_CONTROL_FRACTION * max(len(sample), 1):
        return None, [_error("input looks binary (NUL or many control bytes): not scanned")]
    return code, notes


def _run_detectors(text: str, filename: str | None, config: ScanConfig) -> list[Finding]:
    lines = split_lines(text)
    maybe_python = filename is None or filename.endswith(_PYTHON_SUFFIXES)
    snippet = _guarded("python parser", lambda: parse_snippet(text), []) if maybe_python else None
    snippet = snippet if isinstance(snippet, Snippet) else None
    found: list[Finding] = []
    if config.risky and snippet is not None:
        found += _guarded("bandit", lambda: bandit_findings(snippet, lines), found)
        found += _guarded("CL rules", lambda: rule_findings(snippet), found)
    if config.risky:
        found += _guarded("CL005", lambda: destructive_findings(lines, snippet, config.max_line_chars), found)
    if config.secrets:
        found += _guarded("detect-secrets", lambda: secret_findings(lines, filename, config), found)
    if config.pii:
        found += _guarded("PII", lambda: pii_findings(lines, config.max_line_chars), found)
    if config.licence_text:
        found += _guarded("licence text", lambda: licence_text_findings(text), found)
    if config.licence_index and maybe_python:
        found += _guarded("licence index", lambda: _index_findings(text, lines, config), found)
    return found


def _guarded(name: str, detector: Callable[[], object], sink: list[Finding]) -> list:
    """Run one detector; on failure append a ``scan.error`` to ``sink`` and return nothing."""
    try:
        return detector() or []
    except Exception as exc:  # noqa: BLE001 - one detector's bug must not hide the others' findings
        LOG.debug("detector %s failed", name, exc_info=True)
        sink.append(_error(f"{name} failed on this input: {type(exc).__name__}: {str(exc)[:200]}"))
        return []


def _index_findings(text: str, lines: list[str], config: ScanConfig) -> list[Finding]:
    path = config.index_path
    if path is None or not Path(path).is_file():
        return []
    index = load_cached(str(path), Path(path).stat().st_mtime_ns)
    match = index.best_match(text)
    if match is None or not config.index_thresholds.accepts(match):
        return []
    confidence = Severity.HIGH if match.fraction >= 0.7 else Severity.MEDIUM if match.fraction >= 0.45 else Severity.LOW
    end_col = len(lines[match.end_line]) if match.end_line < len(lines) else 0
    project = match.project
    return [Finding(
        Kind.LICENCE, f"licence.{project.licence}", licence_severity(project.licence), confidence,
        f"Code resembles {project.name} {project.version} ({project.licence}), file {match.path} line "
        f"{match.source_line + 1}: {match.num_shared} of {match.num_fingerprints} fingerprints shared ({match.num_tokens} tokens)",
        match.start_line, 0, match.end_line, end_col,
        related=Related(match.source, project.licence, match.source_line, project.name, project.version, match.path))]


def _finalise(found: list[Finding], lines: list[str], config: ScanConfig) -> list[Finding]:
    bandit_lines = {(f.rule_id, f.start_line) for f in found if f.rule_id.startswith("B")}
    floor = Severity(config.min_severity).rank
    kept = []
    for f in found:
        rule = RULES.get(f.rule_id)
        if rule and any((b, f.start_line) in bandit_lines for b in rule.overlaps):
            continue  # bandit already reports this on the line
        if f.rule_id in config.disabled_rules or (f.kind is not Kind.ERROR and f.severity.rank < floor):
            continue
        kept.append(_clamp(f, lines))
    return sorted(kept, key=lambda f: (f.start_line, f.start_col, f.rule_id))


def _clamp(f: Finding, lines: list[str]) -> Finding:
    """Keep a range inside the text and ordered, whatever a detector computed."""
    last = max(len(lines) - 1, 0)
    sl, el = min(max(f.start_line, 0), last), min(max(f.end_line, 0), last)
    sc = min(max(f.start_col, 0), len(lines[sl]) if lines else 0)
    ec = min(max(f.end_col, 0), len(lines[el]) if lines else 0)
    if (el, ec) < (sl, sc):
        el, ec = sl, sc
    return dataclasses.replace(f, start_line=sl, start_col=sc, end_line=el, end_col=ec)


def _error(message: str, rule_id: str = "scan.error") -> Finding:
    return Finding(Kind.ERROR, rule_id, Severity.LOW, Severity.HIGH, message, 0, 0, 0, 0)
