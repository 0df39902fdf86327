"""Judge side: rewrite a test's ``assert`` statements into *sites* that the judge decides.

Executed INSIDE the sandbox, in the judge process (stdlib only; concatenated into the harness
program by sandbox/exchange.py). ``assert candidate(3) == [1, 2]`` becomes, in the code the worker
runs, ``if not <site>(7, (candidate(3),), None): raise AssertionError``: the worker computes only
the probe ``candidate(3)`` and sends its value; the comparison and the expected ``[1, 2]`` stay in
the judge (``Site.template``), so the expected value is not even in the worker's memory. ``<site>``
is a constant of the compiled code that the worker replaces with its reporting function.

Which sites bind (see harness.py for why): a site's failure fails its test, unless the assert sits
lexically in a ``try`` or ``with`` block (the test may expect and catch the AssertionError there).
A *mandatory* site must be observed a known number of times for its test to pass: it is an assert
that runs whenever its test runs to the end: at module level, in a ``for`` over a constant range or
display (N iterations: N observations), or in a function (without ``return``) that the module calls
as a statement, as ``check(candidate)`` is called in HumanEval; never under ``if``/``while``/``try``/
``with``.
"""

import ast
import warnings


class Site:
    """One assert (or one ``and``-conjunct of it) that the judge decides."""

    __slots__ = ("id", "test", "line", "template", "bare", "binding", "mandatory", "message", "text")
    # mandatory: how many observations the test needs to pass (0: none, the assert may not run)

    def __init__(self, **fields):
        for name in self.__slots__:
            setattr(self, name, fields[name])


def rewrite_test(source, filename, test_index, first_id):
    """(code object for the worker, [Site]) for one test snippet; raises SyntaxError like compile."""
    tree = ast.parse(source, filename)
    rewriter = _Rewriter(_Scope(tree), test_index, first_id, _mandatory_asserts(tree))
    tree = ast.fix_missing_locations(rewriter.visit(tree))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "'str' object is not callable": the site constant, replaced later
        code = compile(tree, filename, "exec", dont_inherit=True)
    return code, rewriter.sites


class _Scope:
    """Which builtin names (and ``math``) in a test still mean the real ones: those the test never binds."""

    def __init__(self, tree):
        self.bound, imports = set(), set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load):
                self.bound.add(node.id)
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                self.bound.add(node.name)
            elif isinstance(node, ast.arg):
                self.bound.add(node.arg)
            elif isinstance(node, (ast.Import, ast.ImportFrom)):
                for alias in node.names:
                    name = alias.asname or alias.name.split(".")[0]
                    plain_math = isinstance(node, ast.Import) and alias.name == "math" and not alias.asname
                    (imports if plain_math else self.bound).add(name)

    def function(self, node):
        """The judge's name for a call target (``abs``, ``math.isclose``), or None."""
        if isinstance(node, ast.Name) and node.id not in self.bound:
            return node.id if node.id in JUDGE_FUNCTIONS or node.id in CONSTRUCTORS else None  # noqa: F821
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "math":
            name = "math." + node.attr
            return name if "math" not in self.bound and (name in JUDGE_FUNCTIONS or name in MATH_CONSTANTS) else None  # noqa: F821
        return None


class _Rewriter(ast.NodeTransformer):
    def __init__(self, scope, test_index, first_id, mandatory):
        self.scope, self.test_index, self.next_id, self.mandatory = scope, test_index, first_id, mandatory
        self.sites, self.soft = [], 0

    def _soft_block(self, node):
        self.soft += 1
        self.generic_visit(node)
        self.soft -= 1
        return node

    visit_Try = visit_With = visit_AsyncWith = visit_TryStar = _soft_block

    def visit_Assert(self, node):
        out = []
        for conjunct in _conjuncts(node.test):
            probes = []
            template = _Template(self.scope).build(conjunct, probes)
            if not probes:  # nothing of the code under test in it: an ordinary assert
                out.append(ast.copy_location(ast.Assert(test=conjunct, msg=node.msg), node))
                continue
            out.append(self._site_statement(node, conjunct, template, probes))
        return out

    def _site_statement(self, node, conjunct, template, probes):
        bare = _bare_ops(template)
        site = Site(id=self.next_id, test=self.test_index, line=node.lineno, template=template, bare=bare is not None,
                    binding=not self.soft, mandatory=0 if self.soft else self.mandatory.get(id(node), 0),
                    message=str(node.msg.value) if isinstance(node.msg, ast.Constant) else None,
                    text=ast.unparse(conjunct)[:200])
        self.sites.append(site)
        self.next_id += 1
        call = ast.Call(func=ast.Constant(SITE_SENTINEL),  # noqa: F821 - defined by worker.py
                        args=[ast.Constant(site.id), ast.Tuple(elts=probes, ctx=ast.Load()), ast.Constant(bare)],
                        keywords=[])
        error = ast.Name(id="AssertionError", ctx=ast.Load())
        exc = ast.Call(func=error, args=[node.msg], keywords=[]) if node.msg is not None else error
        stmt = ast.If(test=ast.UnaryOp(op=ast.Not(), operand=call), body=[ast.Raise(exc=exc, cause=None)], orelse=[])
        for child in ast.walk(stmt):
            if not hasattr(child, "lineno") or child is stmt:
                ast.copy_location(child, node)
        return stmt


class _Template:
    """Splits an expression into the judge's template and the worker's probes (see comparison.py)."""

    def __init__(self, scope):
        self.scope = scope

    def build(self, node, probes):
        start = len(probes)
        template = self._structure(node, probes)
        if template is not None and template[0] != "k" and len(probes) == start:
            try:  # constant: fold it now, in the judge
                template = ("k", evaluate(template, ()))  # noqa: F821 - defined by comparison.py
            except Exception:  # noqa: BLE001 - let the worker raise it, as Python would
                template = None
        if template is None:
            del probes[start:]
            probes.append(node)
            template = ("p", len(probes) - 1)
        return template

    def _structure(self, node, probes):
        if isinstance(node, ast.Constant):
            return ("k", node.value)
        if isinstance(node, ast.Compare):
            operands = [self.build(x, probes) for x in [node.left, *node.comparators]]
            return ("cmp", tuple(type(op).__name__ for op in node.ops), operands)
        if isinstance(node, ast.BinOp) and type(node.op).__name__ in BINARY:  # noqa: F821
            return ("bin", type(node.op).__name__, self.build(node.left, probes), self.build(node.right, probes))
        if isinstance(node, ast.UnaryOp) and type(node.op).__name__ in UNARY:  # noqa: F821
            return ("un", type(node.op).__name__, self.build(node.operand, probes))
        if isinstance(node, ast.Attribute) and self.scope.function(node) in MATH_CONSTANTS:  # noqa: F821
            return ("k", MATH_CONSTANTS[self.scope.function(node)])  # noqa: F821
        if isinstance(node, ast.Call):
            return self._call(node, probes)
        if isinstance(node, (ast.Tuple, ast.List, ast.Set)) and not any(isinstance(e, ast.Starred) for e in node.elts):
            return (type(node).__name__.lower(), [self.build(e, probes) for e in node.elts])
        if isinstance(node, ast.Dict) and None not in node.keys:
            return ("dict", [self.build(k, probes) for k in node.keys], [self.build(v, probes) for v in node.values])
        return None

    def _call(self, node, probes):
        name = self.scope.function(node.func)
        if name is None or name in MATH_CONSTANTS or any(isinstance(a, ast.Starred) for a in node.args) \
                or any(k.arg is None for k in node.keywords):  # noqa: F821
            return None
        start = len(probes)
        args = [self.build(a, probes) for a in node.args]
        values = [self.build(k.value, probes) for k in node.keywords]
        if name in CONSTRUCTORS and len(probes) > start:  # noqa: F821 - a conversion of a probe: the worker's
            return None
        return ("call", name, args, tuple(k.arg for k in node.keywords), values)


def _conjuncts(test):
    """``assert a and b`` holds exactly when ``assert a`` then ``assert b`` hold: one site each."""
    if isinstance(test, ast.BoolOp) and isinstance(test.op, ast.And):
        return [c for value in test.values for c in _conjuncts(value)]
    return [test]


def _bare_ops(template):
    """The comparison ops of a bare site (("truth",) for a lone probe); None when not bare."""
    if template[0] == "p":
        return ("truth",)
    if template[0] == "cmp" and all(t[0] == "p" for t in template[2]):
        return template[1]
    return None


def _mandatory_asserts(tree):
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
    stack = list(body)
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.Return, ast.Break, ast.Continue, ast.Yield, ast.YieldFrom)):
            return True
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
            stack.extend(ast.iter_child_nodes(node))
    return False
