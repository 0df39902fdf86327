"""`explain(finding) -> str`: markdown for an editor hover or code action."""

from __future__ import annotations

from .finding import Finding, Kind
from .risky_rules import RULES

_ADVICE = {
    "CL001": "Keep certificate checks on. For a private CA pass its bundle: `verify=\"/path/ca.pem\"`.",
    "CL002": "Pass an argument list without a shell: `subprocess.run([\"ls\", path], check=True)`; "
             "if a shell is unavoidable, quote each value with `shlex.quote`.",
    "CL003": "Only load data you produced yourself; for config or exchange use `yaml.safe_load`, JSON, "
             "or a schema-validated format.",
    "CL004": "Grant the least access needed, e.g. `0o600` for private files or `0o755` for directories.",
    "CL005": "Never run this: it destroys data. Scope deletions to a path you created (e.g. a temp dir).",
}
_KIND_ADVICE = {
    Kind.SECRET: "Move the value to an environment variable or a secret manager, and rotate it if it "
                 "was real: a committed secret must be treated as leaked.",
    Kind.PII: "Replace personal data with placeholders (`user@example.com`, `192.0.2.1`).",
    Kind.LICENCE: "Check the licence before accepting: copyleft code can oblige you to release your "
                  "code under the same terms. Rewrite from the idea, or keep the notice and comply.",
    Kind.ERROR: "The scanner could not check (all of) this text; review it by hand.",
}
_BANDIT_DOCS = "https://bandit.readthedocs.io/en/latest/plugins/index.html"


def explain(finding: Finding) -> str:
    """Markdown describing ``finding``: what, where it comes from, how bad, what to do."""
    title = RULES[finding.rule_id].title if finding.rule_id in RULES else finding.rule_id
    parts = [
        f"**{title}** (`{finding.rule_id}`, {finding.kind.value})",
        f"Severity **{finding.severity.value}**, confidence {finding.confidence.value}.",
        finding.message,
    ]
    if finding.related is not None:
        line = "" if finding.related.line is None else f", line {finding.related.line + 1}"
        where = f"`{finding.related.source}`"
        if finding.related.project:
            where = f"{finding.related.project} {finding.related.version}, `{finding.related.path}`"
        parts.append(f"Similar code: {where}{line}, licensed **{finding.related.licence}**.")
    advice = _ADVICE.get(finding.rule_id) or _KIND_ADVICE.get(finding.kind)
    if advice:
        parts.append(advice)
    if finding.kind is Kind.RISKY and finding.rule_id.startswith("B"):
        parts.append(f"See bandit's documentation for {finding.rule_id}: {_BANDIT_DOCS}")
    return "\n\n".join(parts)
