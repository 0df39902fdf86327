"""The run summary reports scanner findings on generated samples."""

from __future__ import annotations

from evals.security import security_report


def test_security_report_counts_findings_per_sample():
    codes = [
        "def add(a, b):\n    return a + b\n",
        "import subprocess\n\ndef run(cmd):\n    return subprocess.call('sh -c ' + cmd, shell=True)\n",
        "",
    ]
    report = security_report(codes)
    assert report["num_samples"] == 3
    assert report["samples_with_findings"] == 1
    assert report["by_kind"].get("risky", 0) >= 1
    assert any(rule.startswith(("B6", "CL")) for rule in report["by_rule"])
