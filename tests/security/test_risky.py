"""Risky-code detectors: bandit through its library API, our CL rules, partial snippets."""

from security import Kind, ScanConfig, Severity, explain, scan
from security.snippet import parse_snippet

RISKY_ONLY = ScanConfig(secrets=False, pii=False, licence_text=False, licence_index=False)


def ids(text: str, **kw) -> list[str]:
    return [f.rule_id for f in scan(text, config=RISKY_ONLY, **kw)]


def test_bandit_shell_true_with_range():
    code = 'import subprocess\nsubprocess.call(cmd, shell=True)\n'
    (finding,) = [f for f in scan(code, config=RISKY_ONLY) if f.rule_id == "B602"]
    assert finding.kind is Kind.RISKY and finding.severity is Severity.HIGH
    assert (finding.start_line, finding.start_col, finding.end_line) == (1, 0, 1)
    assert code.splitlines()[1][finding.start_col:finding.end_col] == "subprocess.call(cmd, shell=True)"


def test_safe_code_has_no_risky_findings():
    code = 'import subprocess\nsubprocess.run(["ls", "-l", path], check=True)\nassert path\n'
    assert ids(code) == []  # B603/B404/B101 are off by default


def test_partial_indented_snippet_maps_ranges_back():
    code = '        if ok:\n            os.system("echo " + user)\n        else:\n            return foo(1,\n'
    snippet = parse_snippet(code)
    assert snippet is not None and snippet.indent == 8
    found = [f for f in scan(code, config=RISKY_ONLY) if f.rule_id in ("B605", "CL002")]
    assert found and found[0].start_line == 1
    assert code.splitlines()[1][found[0].start_col:].startswith('os.system("echo " + user)')


def test_unparseable_python_gives_no_python_findings_but_no_error():
    assert [f for f in scan("def f(:\n  ))) os.system(x)", config=RISKY_ONLY)] == []


def test_cl001_only_where_bandit_has_no_b501():
    assert ids("import requests\nrequests.get(u, verify=False, timeout=1)\n") == ["B501"]
    assert ids('import requests\nrequests.request("GET", u, verify=False, timeout=1)\n') == ["CL001"]
    assert "CL001" in ids("s = requests.Session()\ns.verify = False\n")
    assert "CL001" in ids('import urllib3\nurllib3.PoolManager(cert_reqs="CERT_NONE")\n')
    assert ids("import requests\nrequests.get(u, verify=True, timeout=1)\n") == []


def test_cl002_shell_built_from_variables():
    assert "CL002" in ids('import asyncio\nasyncio.create_subprocess_shell(f"ls {d}")\n')
    assert "CL002" in ids('import subprocess\nsubprocess.run(["bash", "-c", "tar " + src])\n')
    cmd_var = 'import subprocess\ncmd = "grep %s" % pat\nsubprocess.Popen(cmd, shell=True)\n'
    assert set(ids(cmd_var)) & {"CL002", "B602"}
    assert "CL002" not in ids('import subprocess\nsubprocess.run(["bash", "-c", "make all"])\n')


def test_cl003_unsafe_deserialisation():
    assert "CL003" in ids("import yaml\nyaml.unsafe_load(s)\n")
    assert "CL003" in ids("import numpy as np\nnp.load(p, allow_pickle=True)\n")
    assert "B506" in ids("import yaml\nyaml.load(s)\n")
    assert ids("import yaml\nyaml.load(s, Loader=yaml.SafeLoader)\nyaml.safe_load(s)\n") == []


def test_cl004_world_writable():
    assert "CL004" in ids('from pathlib import Path\nPath("x").chmod(0o777)\n')
    assert "CL004" in ids("import os\nos.makedirs(d, mode=0o777)\n")
    assert "CL004" in ids("import os\nos.umask(0)\n")
    assert ids("import os\nos.chmod(p, 0o777)\n") == ["B103"]  # bandit's, reported once
    assert ids('from pathlib import Path\nPath("x").chmod(0o600)\n') == []


def test_cl005_destructive_commands_in_python_strings_only():
    assert "CL005" in ids('X = "rm -rf / --no-preserve-root"\n')
    assert "CL005" in ids('cmd = "dd if=/dev/zero of=/dev/sda"\n')
    assert "CL005" not in ids("# do not run rm -rf / here\nx = 1\n")
    assert "CL005" not in ids('X = "rm -rf ./build"\n')
    shell = "#!/bin/sh\nmkfs.ext4 /dev/sdb1\n:(){ :|:& };:\n"
    found = [f for f in scan(shell, filename="x.sh", config=RISKY_ONLY) if f.rule_id == "CL005"]
    assert [f.start_line for f in found] == [1, 2]


def test_explain_is_markdown_with_advice():
    (finding,) = scan('import yaml\nyaml.unsafe_load(s)\n', config=RISKY_ONLY)
    text = explain(finding)
    assert "CL003" in text and "safe_load" in text and "**" in text
