"""Security report on generated samples: the editor's scanner run over every extracted program."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable


def security_report(codes: Iterable[str]) -> dict:
    """Counts of scanner findings (``security.scan``) over generated code, for the run summary.

    ``samples_with_findings`` counts samples with at least one finding of medium or high severity;
    ``by_kind``/``by_rule`` count every finding.
    """
    from security import scan

    by_kind: Counter[str] = Counter()
    by_rule: Counter[str] = Counter()
    flagged = total = 0
    for code in codes:
        total += 1
        findings = scan(code) if code.strip() else []
        for f in findings:
            by_kind[f.kind.value] += 1
            by_rule[f.rule_id] += 1
        flagged += any(f.severity.value in ("medium", "high") for f in findings)
    return {"num_samples": total, "samples_with_findings": flagged, "by_kind": dict(by_kind),
            "by_rule": dict(by_rule.most_common(10))}
