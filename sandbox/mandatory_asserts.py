"""Judge side: which asserts of a test must run whenever the test runs to its end, and how many times.

Executed INSIDE the sandbox, in the judge process (stdlib only; part of the harness program, see
harness.py). Such an assert is a *mandatory* site (sandbox/asserts.py): at module level, in a ``for`` over
a constant range or display (N iterations: N observations), or in a function (without ``return``) that the
module calls as a statement, as ``check(candidate)`` is called in HumanEval; never under ``if``/``while``/
``try``/``with``.
"""

import ast


def mandatory_asserts(tree):
    """{id of Assert node: how many times it runs at least} for the asserts that run whenever the test
    runs to its end (see the module docstring); a ``for`` over a constant range of N multiplies by N."""
    found, called = {}, []
    defs = [n for n in tree.body if isinstance(n, ast.FunctionDef)]
    once = {n.name: n for n in defs if [d.name for d in defs].count(n.name) == 1}

    def walk(body, top, times):
        for node in body:
            if isinstance(node, ast.Assert):
                found[id(node)] = times
            elif isinstance(node, ast.For) and _iterations(node.iter) and not _may_leave(node.body):
                walk(node.body, top, times * _iterations(node.iter))
            elif top and isinstance(node, ast.Expr) and isinstance(node.value, ast.Call) \
                    and isinstance(node.value.func, ast.Name) and node.value.func.id in once:
                called.append(once[node.value.func.id])

    walk(tree.body, True, 1)
    for fn in called:
        if not _may_leave(fn.body):
            walk(fn.body, False, 1)
    return found


def _iterations(node):
    """How many times a ``for`` over ``node`` runs, when that is known before it runs (else 0)."""
    if isinstance(node, (ast.List, ast.Tuple)) and not any(isinstance(e, ast.Starred) for e in node.elts):
        return len(node.elts)
    if isinstance(node, ast.Constant) and isinstance(node.value, (str, bytes)):
        return len(node.value)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "range" \
            and not node.keywords and all(isinstance(a, ast.Constant) and type(a.value) is int for a in node.args):
        try:
            return len(range(*[a.value for a in node.args]))
        except (TypeError, ValueError):
            return 0
    return 0


def _may_leave(body):
    """True if a return/break/continue/yield below ``body`` (outside nested defs) may skip statements."""
    for node in statements(body, nested_defs=False):
        if isinstance(node, (ast.Return, ast.Break, ast.Continue)):
            return True
        value = getattr(node, "value", None)
        if isinstance(value, (ast.Yield, ast.YieldFrom, ast.Await)):
            return True
    return False


def statements(body, nested_defs=True):
    """Every statement of ``body`` and of the blocks nested in it (and except handlers), depth first."""
    stack = list(reversed(body))
    while stack:
        node = stack.pop()
        yield node
        if not nested_defs and isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            continue
        for field in ("finalbody", "orelse", "body"):
            block = getattr(node, field, None)
            if isinstance(block, list):
                stack.extend(reversed(block))
        for part in getattr(node, "handlers", []) + getattr(node, "cases", []):
            stack.extend(reversed(part.body))
            if isinstance(part, ast.ExceptHandler):
                yield part
