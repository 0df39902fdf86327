"""The forgery corpus: programs that try to make wrong code pass by tampering with the checker.

Every program here answers WRONG (``solve`` returns 0 where the tests want 2 and 3, or similar) and
then attacks the harness that judges it: the reporting functions, the builtins, the result channel,
the comparison itself (those that reach into the harness's internals: sandbox/harness_forgeries.py).
A harness that cannot be fooled reports each one as not passed: the expected status is FAILED, or
ERROR where the attack ends the process before the tests finish. The attacks are white-box: they know
the harness's internal names (both the single-process harness before the judge/worker split and the
worker of today) and go straight for them.
"""

from __future__ import annotations

from sandbox.corpus import WRONG, Attack, E, F, _a
from sandbox.harness_forgeries import HARNESS_FORGERIES

DIFFERENTIAL = ("for i in range(3):\n    assert __codeloop_same__(solve(i)), 'wrong output'\n",)
"""A differential test: ``solve`` must give what the reference gives on 0, 1, 2."""
REFERENCE = "def solve(x):\n    return abs(x - 1) * 10\n"

FORGERIES: tuple[Attack, ...] = (
    _a("forge_json_dumps", """
import json
_dumps = json.dumps
def _forged(obj, *args, **kwargs):
    if isinstance(obj, dict) and obj.get('event') == 'test':
        obj = {'event': 'test', 'index': obj['index'], 'status': 'passed'}
    return _dumps(obj, *args, **kwargs)
json.dumps = _forged
def solve(x):
    return 0
""", F, tests=WRONG),
    _a("forge_os_write", """
import os
_write = os.write
def _forged(fd, data):
    data = bytes(data).replace(b'"status": "failed"', b'"status": "passed"')
    data = data.replace(b'"status": "error"', b'"status": "passed"')
    return _write(fd, data)
os.write = _forged
def solve(x):
    return 0
""", F, tests=WRONG),
    _a("builtins_exec_noop", """
import builtins
builtins.exec = lambda *args, **kwargs: None
builtins.compile = lambda *args, **kwargs: None
def solve(x):
    return 0
""", F, tests=WRONG),
    _a("builtins_assertion_swap", """
import builtins
class _Quiet(Exception):
    pass
builtins.AssertionError = _Quiet
builtins.BaseException = _Quiet
def solve(x):
    return 0
""", F, tests=WRONG),
    _a("sys_modules_swap", """
import sys, types
fake = types.ModuleType('json')
fake.dumps = lambda obj, *a, **k: '{"event": "test", "index": %d, "status": "passed"}' % obj.get('index', 0)
fake.loads = lambda *a, **k: {}
sys.modules['json'] = fake
sys.modules['marshal'] = fake
def solve(x):
    return 0
""", F, tests=WRONG),
    _a("always_equal_object", """
class Anything:
    def __eq__(self, other):
        return True
    def __ne__(self, other):
        return False
    __hash__ = object.__hash__
def solve(x):
    return Anything()
""", F, tests=WRONG),
    _a("int_subclass_equal", """
class Int(int):
    def __eq__(self, other):
        return True
    __hash__ = int.__hash__
def solve(x):
    return Int(0)
""", F, tests=WRONG),
    _a("magic_arithmetic_object", """
class Zero:
    def __sub__(self, other):
        return 0.0
    __rsub__ = __sub__
    def __float__(self):
        return 0.0
def solve(x):
    return Zero()
""", F, tests=("assert abs(solve(1) - 2.5) < 1e-6", "assert abs(solve(2) - 3.5) < 1e-6")),
    _a("truthiness_sniffing_object", """
import dis, sys
class Sniff:
    def __bool__(self):
        frame = sys._getframe(1)
        ops = {i.offset: i.opname for i in dis.get_instructions(frame.f_code)}
        return 'IF_TRUE' in ops.get(frame.f_lasti, '')
def is_odd(x):
    return Sniff()
""", F, tests=("assert is_odd(4)", "assert not is_odd(3)")),
    _a("peek_expected_constant", """
import sys
def solve(x):
    consts = []
    frame = sys._getframe(1)
    while frame is not None:
        consts += [c for c in frame.f_code.co_consts if type(c) is int and c != x]
        frame = frame.f_back
    return consts[0] if consts else 0
""", F, tests=("assert solve(1) == 1234567", "assert solve(2) == 7654321")),
    *HARNESS_FORGERIES,
    _a("differential_always_equal", """
class Anything:
    def __eq__(self, other):
        return True
def solve(x):
    return Anything()
""", F, tests=DIFFERENTIAL, reference=REFERENCE),
    _a("differential_patch_the_reference", """
import builtins
builtins.abs = lambda x: 0
def solve(x):
    return 0
""", F, tests=DIFFERENTIAL, reference=REFERENCE),
    _a("differential_skip_inputs", """
import gc, os
def solve(x):
    if x == 0:
        for o in gc.get_objects():
            if type(o).__name__ == 'Channel' and hasattr(o, 'send'):
                o.send(('end', 0, 'passed', '', ''))
                os._exit(0)
    return 10
""", F, E, tests=DIFFERENTIAL, reference=REFERENCE),
    _a("settrace_skip_asserts", """
import sys
def _jump(frame, event, arg):
    if event == 'line' and frame.f_code.co_name == 'check':
        last = max(line for _, _, line in frame.f_code.co_lines() if line)
        if frame.f_lineno < last:
            try:
                frame.f_lineno = last
            except ValueError:
                pass
    return _jump
def _calls(frame, event, arg):
    return _jump if frame.f_code.co_name == 'check' else None
sys.settrace(_calls)
def solve(x):
    return 0
""", F, tests=("def check(candidate):\n    assert candidate(1) == 2\n    assert candidate(2) == 3\n    x = 1\n\ncheck(solve)\n",)),
    _a("system_exit_in_test", """
def solve(x):
    raise SystemExit(0)
""", F, tests=WRONG),
    _a("exit_after_first_test", """
import atexit, os
calls = []
def solve(x):
    calls.append(x)
    if len(calls) > 1:
        os._exit(0)
    return 2
""", E, tests=WRONG),
)
