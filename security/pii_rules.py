"""PII findings: e-mail addresses, phone numbers and public IPv4 addresses, by regular expression.

Obvious non-PII is skipped: documentation domains (example.com, ...), ``git@host`` URLs, loopback,
private, reserved and documentation IPs, well-known public resolvers, and dotted version numbers.
"""

from __future__ import annotations

import ipaddress
import re

from .finding import Finding, Kind, Severity

_EMAIL = re.compile(r"(?<![\w.+-])([A-Za-z0-9][A-Za-z0-9._%+-]*)@((?:[A-Za-z0-9-]+\.)+([A-Za-z]{2,24}))\b")
_PHONE = re.compile(r"(?<![\w.+-])(?:\+\d{1,3}[ .-]?(?:\(\d{1,4}\)[ .-]?)?\d{2,4}(?:[ .-]?\d{2,4}){1,4}"
                    r"|\(\d{3}\)\s?\d{3}-\d{4}|\b\d{3}[-.]\d{3}[-.]\d{4})(?![\w.-])")
_IPV4 = re.compile(r"(?<![\w.])((?:\d{1,3}\.){3}\d{1,3})(?![\w.])")
_VERSION_CONTEXT = re.compile(r"(?i)((?:version|\bver)\w*|==|>=|<=|~=|@)\s*[:=]?\s*['\"]?\s*$")
_DOC_DOMAINS = ("example.com", "example.org", "example.net", "example.edu", "test.com", "localhost",
                "domain.com", "email.com", "company.com", "yourdomain.com", "mydomain.com")
_DOC_TLDS = {"example", "test", "invalid", "local", "localhost", "png", "jpg", "jpeg", "gif", "svg", "py", "js"}
_NOT_PERSONAL = {"git", "noreply", "no-reply", "donotreply", "user", "username", "name", "someone", "foo", "test"}
_PUBLIC_SERVICES = {"8.8.8.8", "8.8.4.4", "1.1.1.1", "1.0.0.1", "9.9.9.9", "208.67.222.222"}


def pii_findings(text_lines: list[str], max_line_chars: int) -> list[Finding]:
    """PII findings in ``text_lines``; lines longer than ``max_line_chars`` are skipped."""
    findings: list[Finding] = []
    for line_no, line in enumerate(text_lines):
        if len(line) > max_line_chars:
            continue
        findings += [_finding("pii.email", "E-mail address", line_no, m) for m in _EMAIL.finditer(line)
                     if _is_personal_email(m)]
        findings += [_finding("pii.phone", "Phone number", line_no, m) for m in _PHONE.finditer(line)
                     if 8 <= sum(c.isdigit() for c in m.group(0)) <= 15]
        findings += [_finding("pii.ipv4", "Public IPv4 address", line_no, m) for m in _IPV4.finditer(line)
                     if _is_public_ip(m, line)]
    return findings


def _is_personal_email(match: re.Match) -> bool:
    local, domain, tld = match.group(1).lower(), match.group(2).lower(), match.group(3).lower()
    if tld in _DOC_TLDS or local in _NOT_PERSONAL:
        return False
    return not any(domain == d or domain.endswith("." + d) for d in _DOC_DOMAINS)


def _is_public_ip(match: re.Match, line: str) -> bool:
    text = match.group(1)
    if text in _PUBLIC_SERVICES or _VERSION_CONTEXT.search(line[: match.start()]):
        return False
    if all(len(part) == 1 for part in text.split(".")):
        return False  # 2.0.0.1 is far more likely a version than a host
    try:
        return ipaddress.IPv4Address(text).is_global
    except ValueError:
        return False


def _finding(rule_id: str, what: str, line_no: int, match: re.Match) -> Finding:
    return Finding(Kind.PII, rule_id, Severity.LOW, Severity.MEDIUM,
                   f"{what} in the code (`{match.group(0)}`): personal data should not be hard-coded",
                   line_no, match.start(), line_no, match.end())
