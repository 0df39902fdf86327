"""Secret findings from detect-secrets' plugins, called directly on each line.

NOTE: we call each plugin's ``analyze_string`` rather than ``scan_line``/``analyze_line``: those
read detect-secrets' process-wide settings (which another caller may change, e.g. to turn on
network verification of found keys). High-entropy strings are reported only on lines that also
name a secret (key, token, password, ...), which keeps hashes and ids in ordinary code quiet.
"""

from __future__ import annotations

import re
from functools import lru_cache

from detect_secrets.core.plugins.util import get_mapping_from_secret_type_to_class
from detect_secrets.filters import heuristic
from detect_secrets.plugins.base import BasePlugin
from detect_secrets.plugins.high_entropy_strings import HighEntropyStringsPlugin
from detect_secrets.plugins.keyword import REGEX_BY_FILETYPE, KeywordDetector
from detect_secrets.util.filetype import determine_file_type

from .config import ScanConfig
from .finding import Finding, Kind, Severity

_SKIPPED_PLUGINS = {"IPPublicDetector"}  # public IPs are PII, handled by pii_rules
_SECRETISH = re.compile(r"(?i)(secret|passw|pwd|token|api[_-]?key|apikey|access[_-]?key|private[_-]?key|"
                        r"auth|credential|client[_-]?secret|signing[_-]?key|bearer)")
_TOKEN_CHARS = re.compile(r"[\w+/=\-.~]*")
_PLACEHOLDER = re.compile(r"(?i)^(x+|\*+|\.+|changeme|your[_-]?\w*|<[^>]*>|\$\{?\w+\}?|%\(\w+\)s|\{\w*\})$")


@lru_cache(maxsize=8)
def _plugins(base64_limit: float, hex_limit: float) -> tuple[BasePlugin, ...]:
    plugins = []
    for cls in get_mapping_from_secret_type_to_class().values():
        if cls.__name__ in _SKIPPED_PLUGINS:
            continue
        if cls.__name__ == "Base64HighEntropyString":
            plugins.append(cls(limit=base64_limit))
        elif cls.__name__ == "HexHighEntropyString":
            plugins.append(cls(limit=hex_limit))
        else:
            plugins.append(cls())
    # Specific detectors first: on a line they win over the keyword and entropy detectors.
    return tuple(sorted(plugins, key=_priority))


def _priority(plugin: BasePlugin) -> int:
    if isinstance(plugin, HighEntropyStringsPlugin):
        return 2
    return 1 if isinstance(plugin, KeywordDetector) else 0


def secret_findings(text_lines: list[str], filename: str | None, config: ScanConfig) -> list[Finding]:
    """detect-secrets findings in ``text_lines`` (at most one per secret value and line)."""
    plugins = _plugins(config.entropy_limit_base64, config.entropy_limit_hex)
    keyword_regexes = REGEX_BY_FILETYPE.get(determine_file_type(filename or "suggestion.py"))
    findings: list[Finding] = []
    for line_no, line in enumerate(text_lines):
        if len(line) > config.max_line_chars:
            continue
        taken: list[tuple[int, int]] = []
        for plugin in plugins:
            for value in _values(plugin, line, keyword_regexes, config):
                start, end = _span(line, value)
                if any(s < end and start < e for s, e in taken):
                    continue
                taken.append((start, end))
                findings.append(_finding(plugin, line_no, start, end))
    return findings


def _values(plugin: BasePlugin, line: str, keyword_regexes, config: ScanConfig) -> list[str]:
    if isinstance(plugin, KeywordDetector):
        values = list(plugin.analyze_string(line, denylist_regex_to_group=keyword_regexes))
    else:
        values = list(plugin.analyze_string(line))
    if isinstance(plugin, HighEntropyStringsPlugin):
        if config.entropy_needs_keyword and not _SECRETISH.search(line):
            return []
        values = [v for v in values if plugin.calculate_shannon_entropy(v) > plugin.entropy_limit]
    return [v for v in values if v and not _filtered(plugin, v, line)]


def _filtered(plugin: BasePlugin, value: str, line: str) -> bool:
    if _PLACEHOLDER.match(value):
        return True
    if heuristic.is_sequential_string(value) or heuristic.is_potential_uuid(value):
        return True
    if heuristic.is_templated_secret(value) or heuristic.is_prefixed_with_dollar_sign(value):
        return True
    if isinstance(plugin, KeywordDetector) and heuristic.is_indirect_reference(line):
        # `key = lookup(...)` is not a secret, but `connect(password="literal")` still is.
        return not re.search(r"[:=]\s*[rRbBuU]?['\"]" + re.escape(value) + r"['\"]", line)
    return heuristic.is_likely_id_string(value, line, plugin)


def _span(line: str, value: str) -> tuple[int, int]:
    start = line.find(value)
    if start < 0:
        return 0, len(line.rstrip("\r\n"))
    end = start + len(value)
    extra = _TOKEN_CHARS.match(line, end)
    return start, extra.end() if extra else end


def _finding(plugin: BasePlugin, line_no: int, start: int, end: int) -> Finding:
    name = type(plugin).__name__
    if isinstance(plugin, HighEntropyStringsPlugin):
        severity, confidence = Severity.MEDIUM, Severity.LOW
    elif isinstance(plugin, KeywordDetector):
        severity, confidence = Severity.MEDIUM, Severity.MEDIUM
    else:
        severity, confidence = Severity.HIGH, Severity.HIGH
    return Finding(Kind.SECRET, f"secret.{name}", severity, confidence,
                   f"Possible hard-coded secret ({plugin.secret_type}); load it from the environment or a "
                   "secret store instead", line_no, start, line_no, end)
