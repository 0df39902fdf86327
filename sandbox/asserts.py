"""Judge side: rewrite a test's ``assert`` statements into *sites* that the judge decides.

Executed INSIDE the sandbox, in the judge process (stdlib only; concatenated into the harness
program by sandbox/harness_exchange.py). ``assert candidate(3) == [1, 2]`` becomes, in the code the worker
runs, ``if not <site>(7, (candidate(3),), None): raise AssertionError``: the worker computes only
the probe ``candidate(3)`` and sends its value; the comparison and the expected ``[1, 2]`` stay in
the judge (``Site.template``), so the expected value is not even in the worker's memory. ``<site>``
is a constant of the compiled code that the worker replaces with its reporting function.

Which sites bind (see harness.py for why): a site's failure fails its test, unless the assert sits
lexically in a ``try`` or ``with`` block (the test may expect and catch the AssertionError there).
A *mandatory* site must be observed a known number of times for its test to pass (which asserts are
mandatory, and how often they run: sandbox/mandatory_asserts.py).
"""

import ast
import warnings

SAME = "__codeloop_same__"
"""``assert __codeloop_same__(value[, atol])``: ``value`` must match the reference run's value at the same
assert and occurrence (``comparison.same``: EvalPlus's equality with float tolerance)."""


class Site:
    """One assert (or one ``and``-conjunct of it) that the judge decides."""

    __slots__ = ("id", "test", "line", "template", "bare", "binding", "mandatory", "message", "node", "same", "sync")
    # mandatory: how many observations the test needs to pass (0: none, the assert may not run)
    # same: how many ``__codeloop_same__`` values it compares with the reference run's (0: not differential)

    def __init__(self, **fields):
        for name in self.__slots__:
            setattr(self, name, fields[name])

    @property
    def text(self):
        """The assert's source (for failure messages; unparsed only when needed)."""
        return ast.unparse(self.node)[:200]


def rewrite_test(source, filename, test_index, first_id):
    """(code object for the worker, [Site]) for one test snippet; raises SyntaxError like compile."""
    if "assert" not in source:  # nothing to rewrite: compiling the text is all (and cheaper)
        return compile(source, filename, "exec", dont_inherit=True), []
    tree = ast.parse(source, filename)
    rewriter = _Rewriter(_Scope(tree, ":=" in source), test_index, first_id, mandatory_asserts(tree))  # noqa: F821
    rewriter.rewrite(tree.body)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "'str' object is not callable": the site constant, replaced later
        code = compile(tree, filename, "exec", dont_inherit=True)
    return code, rewriter.sites


class _Scope:
    """Which builtin names (and ``math``) in a test still mean the real ones: those the test never binds."""

    def __init__(self, tree, walrus):
        self.bound = set()
        # Statements bind names (an expression only with ``:=``, whose presence the caller tells us).
        for node in (ast.walk(tree) if walrus else statements(tree.body)):  # noqa: F821 - defined by mandatory_asserts.py
            targets = []
            if isinstance(node, (ast.Assign, ast.Delete)):
                targets = node.targets
            elif isinstance(node, (ast.AugAssign, ast.AnnAssign, ast.For, ast.AsyncFor, ast.NamedExpr)):
                targets = [node.target]
            elif isinstance(node, (ast.With, ast.AsyncWith)):
                targets = [i.optional_vars for i in node.items if i.optional_vars is not None]
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                self.bound.add(node.name)
                args = getattr(node, "args", None)
                self.bound.update(a.arg for a in ast.walk(args) if isinstance(a, ast.arg)) if args else None
            elif isinstance(node, ast.ExceptHandler) and node.name:
                self.bound.add(node.name)
            elif isinstance(node, (ast.Import, ast.ImportFrom)):
                for alias in node.names:
                    if not (isinstance(node, ast.Import) and alias.name == "math" and not alias.asname):
                        self.bound.add(alias.asname or alias.name.split(".")[0])
            for target in targets:
                self.bound.update(n.id for n in ast.walk(target) if isinstance(n, ast.Name))

    def function(self, node):
        """The judge's name for a call target (``abs``, ``math.isclose``), or None."""
        if isinstance(node, ast.Name) and node.id not in self.bound:
            return node.id if node.id in JUDGE_FUNCTIONS or node.id in CONSTRUCTORS else None  # noqa: F821
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "math":
            name = "math." + node.attr
            return name if "math" not in self.bound and (name in JUDGE_FUNCTIONS or name in MATH_CONSTANTS) else None  # noqa: F821
        return None


class _Rewriter:
    """Replaces, in place, each assert statement of a body (and of the bodies nested in it) by its sites.
    Only statement lists are walked: an assert is a statement, so no expression can hold one."""

    SOFT = (ast.Try, ast.With, ast.AsyncWith) + ((ast.TryStar,) if hasattr(ast, "TryStar") else ())

    def __init__(self, scope, test_index, first_id, mandatory):
        self.scope, self.test_index, self.next_id, self.mandatory = scope, test_index, first_id, mandatory
        self.sites, self.soft = [], 0

    def rewrite(self, body):
        out = []
        for node in body:
            if isinstance(node, ast.Assert):
                out.extend(self.assert_statements(node))
                continue
            soft = isinstance(node, self.SOFT)
            self.soft += soft
            for field in ("body", "orelse", "finalbody"):
                if isinstance(getattr(node, field, None), list):
                    setattr(node, field, self.rewrite(getattr(node, field)))
            for part in getattr(node, "handlers", []) + getattr(node, "cases", []):
                part.body = self.rewrite(part.body)
            self.soft -= soft
            out.append(node)
        body[:] = out
        return body

    def assert_statements(self, node):
        out = []
        for conjunct in _conjuncts(node.test):
            probes, builder = [], _Template(self.scope)
            template = builder.build(conjunct, probes)
            if not probes:  # nothing of the code under test in it: an ordinary assert
                out.append(ast.copy_location(ast.Assert(test=conjunct, msg=node.msg), node))
                continue
            out.append(self._site_statement(node, conjunct, template, probes, builder.slots))
        return out

    def _site_statement(self, node, conjunct, template, probes, same):
        bare = _bare_ops(template)
        site = Site(id=self.next_id, test=self.test_index, line=node.lineno, template=template, bare=bare is not None,
                    binding=not self.soft, mandatory=0 if self.soft else self.mandatory.get(id(node), 0),
                    message=str(node.msg.value) if isinstance(node.msg, ast.Constant) else None,
                    node=conjunct, same=same, sync=False)
        site.sync = not site.binding or (node.msg is not None and site.message is None)
        self.sites.append(site)
        self.next_id += 1
        # The worker waits for the judge's answer only where the test needs it: an assert in try/with (the test
        # may catch its failure) or one whose message is computed (Python evaluates it when the assert fails).
        at = {"lineno": node.lineno, "col_offset": node.col_offset, "end_lineno": node.end_lineno,
              "end_col_offset": node.end_col_offset}
        load = ast.Load()
        args = [ast.Constant(site.id, **at), ast.Tuple(probes, load, **at), ast.Constant(bare, **at),
                ast.Constant(site.sync, **at)]
        call = ast.Call(ast.Constant(SITE_SENTINEL, **at), args, [], **at)  # noqa: F821 - defined by worker.py
        error = ast.Name("AssertionError", load, **at)
        exc = ast.Call(error, [node.msg], [], **at) if node.msg is not None else error
        stmt = ast.If(ast.UnaryOp(ast.Not(), call, **at), [ast.Raise(exc, None, **at)], [], **at)
        return stmt


class _Template:
    """Splits an expression into the judge's template and the worker's probes (see comparison.py)."""

    def __init__(self, scope):
        self.scope, self.slots = scope, 0

    def build(self, node, probes):
        if isinstance(node, ast.Constant):
            return ("k", node.value)
        if isinstance(node, (ast.List, ast.Tuple, ast.Set, ast.Dict)):
            try:  # a literal display (expected values often are long ones): folded in one step
                return ("k", ast.literal_eval(node))
            except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
                pass
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
        if isinstance(node, ast.BoolOp):
            start = len(probes)
            operands = [self.build(v, probes) for v in node.values]
            # NOTE: the worker computes every probe before the judge decides, so ``or``/``and`` may only
            # join probes that are plain names (no call that Python would have skipped).
            if all(isinstance(p, ast.Name) for p in probes[start:]):
                return ("bool", type(node.op).__name__, operands)
        return None

    def _call(self, node, probes):
        if isinstance(node.func, ast.Name) and node.func.id == SAME and SAME not in self.scope.bound \
                and 1 <= len(node.args) <= 2 and not node.keywords:
            slot, self.slots = self.slots, self.slots + 1
            atol = self.build(node.args[1], probes) if len(node.args) == 2 else ("k", 0)
            return ("same", slot, self.build(node.args[0], probes), atol)
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
