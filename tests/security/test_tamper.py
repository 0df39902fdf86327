"""The static tamper scan: every forgery of the sandbox corpus is flagged, ordinary solutions are not."""

from __future__ import annotations

import pytest

from sandbox.tampering import FORGERIES
from security.tamper import RULES, tamper_signs, tamper_summary

EXPECTED_RULE = {"forge_json_dumps": "module-patch", "forge_os_write": "module-patch", "builtins_exec_noop": "builtins",
                 "sys_modules_swap": "sys-modules", "always_equal_object": "equality-override",
                 "int_subclass_equal": "equality-override", "magic_arithmetic_object": "arithmetic-override",
                 "truthiness_sniffing_object": "frame-access", "peek_expected_constant": "frame-access",
                 "gc_nonce_forge": "gc-walk", "ctypes_write_forge": "ctypes", "proc_fd_spray": "fd-access",
                 "pipe_forge_worker_claims": "fd-access", "settrace_skip_asserts": "hooks",
                 "system_exit_in_test": "process-exit", "exit_after_first_test": "process-exit",
                 "scan_own_memory_for_expected": "fd-access"}


@pytest.mark.parametrize("attack", FORGERIES, ids=lambda a: a.name)
def test_every_forgery_is_flagged(attack):
    rules = {s.rule for s in tamper_signs(attack.code)}
    assert rules and rules <= set(RULES)
    if attack.name in EXPECTED_RULE:
        assert EXPECTED_RULE[attack.name] in rules, rules


BENIGN = [
    "import numpy as np\nimport matplotlib.pyplot as plt\nplt.rcParams['figure.dpi'] = 80\nnp.random.seed(0)\n"
    "def f(xs):\n    return np.mean(xs)\n",
    "import os, sys\nos.environ['LANG'] = 'C'\ndef main():\n    return 0\nif __name__ == '__main__':\n    sys.exit(main())\n",
    "import json\nclass Point:\n    def __init__(self, x):\n        self.x = x\n    def __repr__(self):\n        return f'P({self.x})'\n"
    "def dump(p):\n    print(p, file=sys.stdout)\n    return json.dumps({'x': p.x})\n",
    "def count(s):\n    return {c: s.count(c) for c in set(s)}\n",
]


@pytest.mark.parametrize("code", BENIGN)
def test_ordinary_code_is_not_flagged(code):
    assert tamper_signs(code) == []


def test_aliases_and_from_imports_are_resolved():
    code = "import os as o\nfrom json import dumps\nimport json as j\nj.dumps = dumps\no._exit(0)\n"
    assert [(s.rule, s.line) for s in tamper_signs(code)] == [("module-patch", 4), ("process-exit", 5)]


def test_code_that_does_not_parse_is_matched_textually():
    signs = tamper_signs("def f(:\n    import ctypes\n    json.dumps = 1\n")
    assert {s.rule for s in signs} == {"ctypes", "module-patch"}


def test_summary_counts_samples_once_per_rule():
    summary = tamper_summary(["import gc\ngc.get_objects()\ngc.get_objects()\n", "x = 1\n", None, ""])
    assert summary == {"num_samples": 4, "num_flagged": 1, "by_rule": {"gc-walk": 1}}
