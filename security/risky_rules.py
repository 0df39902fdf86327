"""Our own AST rules (CL001-CL004) for risky patterns common in generated code.

Each rule names the bandit tests it overlaps with; the scanner drops our finding when bandit
already reported one of those on the same line, so a problem is reported once.
"""

from __future__ import annotations

import ast
import stat
from collections.abc import Iterator
from dataclasses import dataclass

from .finding import Finding, Kind, Severity
from .snippet import Snippet


@dataclass(frozen=True)
class Rule:
    """A rule's id, what bandit already covers, and its fixed severity and confidence."""

    rule_id: str
    title: str
    overlaps: frozenset[str]
    severity: Severity
    confidence: Severity


RULES = {
    r.rule_id: r
    for r in (
        Rule("CL001", "TLS certificate verification disabled", frozenset({"B501", "B323"}),
             Severity.HIGH, Severity.HIGH),
        Rule("CL002", "Shell command built from variables (command injection)",
             frozenset({"B602", "B605", "B604", "B609"}), Severity.HIGH, Severity.HIGH),
        Rule("CL003", "Unsafe deserialisation of possibly untrusted data",
             frozenset({"B301", "B506", "B614"}), Severity.HIGH, Severity.MEDIUM),
        Rule("CL004", "World-writable file permissions", frozenset({"B103"}), Severity.HIGH, Severity.HIGH),
    )
}

_SHELLS = {"sh", "bash", "zsh", "dash", "/bin/sh", "/bin/bash", "/usr/bin/bash", "/bin/zsh"}
_SHELL_CALLS = {"os.system", "os.popen", "subprocess.getoutput", "subprocess.getstatusoutput",
                "asyncio.create_subprocess_shell", "pexpect.spawn", "pexpect.run", "commands.getoutput"}
_SUBPROCESS_CALLS = {"subprocess.run", "subprocess.call", "subprocess.check_call", "subprocess.check_output",
                     "subprocess.Popen", "asyncio.create_subprocess_exec"}
_UNSAFE_LOADS = {"yaml.unsafe_load", "yaml.unsafe_load_all", "cloudpickle.load", "cloudpickle.loads",
                 "joblib.load", "torch.package.PackageImporter"}
_SAFE_LOADERS = {"SafeLoader", "CSafeLoader", "BaseLoader"}
_TLS_KWARGS = {"verify": False, "verify_ssl": False, "ssl": False, "check_hostname": False}


def rule_findings(snippet: Snippet) -> list[Finding]:
    """Findings of rules CL001-CL004 on ``snippet``'s tree, mapped to the original text."""
    visitor = _Visitor(snippet)
    visitor.visit(snippet.tree)
    return visitor.findings


class _Visitor(ast.NodeVisitor):
    def __init__(self, snippet: Snippet) -> None:
        self.snippet = snippet
        self.aliases: dict[str, str] = {}
        self.dynamic_names: set[str] = set()
        self.findings: list[Finding] = []

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            bound = alias.asname or alias.name.split(".")[0]
            self.aliases[bound] = alias.name if alias.asname else bound

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        for alias in node.names:
            self.aliases[alias.asname or alias.name] = f"{node.module or ''}.{alias.name}"

    def visit_Assign(self, node: ast.Assign) -> None:
        for target in node.targets:
            if isinstance(target, ast.Name) and _is_dynamic_str(node.value, self.dynamic_names):
                self.dynamic_names.add(target.id)
            if isinstance(target, ast.Attribute) and target.attr in ("verify", "check_hostname"):
                if isinstance(node.value, ast.Constant) and node.value.value is False:
                    self._add("CL001", node, f"`{target.attr} = False` turns off TLS certificate checks")
            if isinstance(target, ast.Attribute) and target.attr == "verify_mode" and _is_cert_none(node.value):
                self._add("CL001", node, "`verify_mode = CERT_NONE` turns off TLS certificate checks")
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        name = self._qualname(node.func)
        for rule_id, message in _check_call(name, node, self.dynamic_names):
            self._add(rule_id, node, message)
        self.generic_visit(node)

    def _qualname(self, func: ast.expr) -> str:
        parts: list[str] = []
        while isinstance(func, ast.Attribute):
            parts.append(func.attr)
            func = func.value
        if isinstance(func, ast.Name):
            parts.append(self.aliases.get(func.id, func.id))
        elif isinstance(func, ast.Call):
            parts.append(self._qualname(func.func) + "()")
        return ".".join(reversed(parts))

    def _add(self, rule_id: str, node: ast.AST, message: str) -> None:
        rule = RULES[rule_id]
        start = self.snippet.to_original(node.lineno, node.col_offset)
        end = self.snippet.to_original(getattr(node, "end_lineno", None) or node.lineno,
                                       getattr(node, "end_col_offset", None) or node.col_offset)
        self.findings.append(Finding(Kind.RISKY, rule_id, rule.severity, rule.confidence,
                                     f"{rule.title}: {message}", *start, *end))


def _check_call(name: str, node: ast.Call, dynamic: set[str]) -> Iterator[tuple[str, str]]:
    kwargs = {k.arg: k.value for k in node.keywords if k.arg}
    for key, bad in _TLS_KWARGS.items():
        value = kwargs.get(key)
        if isinstance(value, ast.Constant) and value.value is bad and (key != "ssl" or _is_http_call(name)):
            yield "CL001", f"`{key}=False` in a call to `{name}`"
    if "cert_reqs" in kwargs and _is_cert_none(kwargs["cert_reqs"]):
        yield "CL001", f"`cert_reqs=CERT_NONE` in a call to `{name}`"
    yield from _check_shell(name, node, kwargs, dynamic)
    yield from _check_loads(name, node, kwargs)
    yield from _check_chmod(name, node, kwargs)


def _check_shell(name: str, node: ast.Call, kwargs: dict, dynamic: set[str]) -> Iterator[tuple[str, str]]:
    first = node.args[0] if node.args else kwargs.get("args") or kwargs.get("cmd")
    if first is None:
        return
    shell = isinstance(kwargs.get("shell"), ast.Constant) and kwargs["shell"].value is True
    if (name in _SHELL_CALLS or name in _SUBPROCESS_CALLS and shell) and _is_dynamic_str(first, dynamic):
        yield "CL002", f"`{name}` runs a shell on a string built from variables; pass an argument list"
    if name in _SUBPROCESS_CALLS and isinstance(first, ast.List | ast.Tuple) and _is_shell_dash_c(first, dynamic):
        yield "CL002", f"`{name}` runs `sh -c` on a string built from variables; pass an argument list"


def _is_shell_dash_c(seq: ast.List | ast.Tuple, dynamic: set[str]) -> bool:
    items = seq.elts
    consts = [e.value if isinstance(e, ast.Constant) else None for e in items]
    if not items or consts[0] not in _SHELLS or "-c" not in consts:
        return False
    return any(_is_dynamic_str(e, dynamic) for e in items[consts.index("-c") + 1:])


def _check_loads(name: str, node: ast.Call, kwargs: dict) -> Iterator[tuple[str, str]]:
    if name in _UNSAFE_LOADS:
        yield "CL003", f"`{name}` can run arbitrary code from its input"
    if name == "yaml.load_all" and not _names_safe_loader(node, kwargs):
        yield "CL003", "`yaml.load_all` without SafeLoader can build arbitrary objects; use yaml.safe_load_all"
    allow = kwargs.get("allow_pickle")
    if name.endswith("load") and "numpy" in name and isinstance(allow, ast.Constant) and allow.value is True:
        yield "CL003", "`numpy.load(allow_pickle=True)` unpickles its input"


def _names_safe_loader(node: ast.Call, kwargs: dict) -> bool:
    loader = kwargs.get("Loader") or (node.args[1] if len(node.args) > 1 else None)
    text = ast.unparse(loader) if loader is not None else ""
    return any(text.endswith(safe) for safe in _SAFE_LOADERS)


def _check_chmod(name: str, node: ast.Call, kwargs: dict) -> Iterator[tuple[str, str]]:
    short = name.rsplit(".", 1)[-1]
    if short in ("chmod", "fchmod", "lchmod", "mkdir", "makedirs"):
        positional = 1 if name.startswith("os.") else 0  # os.chmod(path, mode) vs Path.chmod(mode)
        mode = kwargs.get("mode") or (node.args[positional] if len(node.args) > positional else None)
        if isinstance(mode, ast.Constant) and isinstance(mode.value, int) and mode.value & stat.S_IWOTH:
            yield "CL004", f"`{name}` with mode {oct(mode.value)} lets any user write the file"
    if name == "os.umask" and node.args and isinstance(node.args[0], ast.Constant) and node.args[0].value == 0:
        yield "CL004", "`os.umask(0)` makes every file created afterwards world-writable"


def _is_http_call(name: str) -> bool:
    """Whether a call looks like an HTTP client call (where ``ssl=False`` turns verification off)."""
    verbs = ("get", "post", "put", "patch", "delete", "head", "options", "request", "ws_connect")
    return "aiohttp" in name or "Connector" in name or name.rsplit(".", 1)[-1] in verbs


def _is_cert_none(node: ast.expr) -> bool:
    return (isinstance(node, ast.Attribute) and node.attr == "CERT_NONE") or (
        isinstance(node, ast.Constant) and node.value in ("CERT_NONE", "NONE"))


def _is_dynamic_str(node: ast.expr, dynamic: set[str]) -> bool:
    """Whether ``node`` is a string assembled at run time (f-string, +, %, .format, or a name bound to one)."""
    if isinstance(node, ast.JoinedStr):
        return any(isinstance(v, ast.FormattedValue) for v in node.values)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add | ast.Mod):
        return any(isinstance(side, ast.Constant) and isinstance(side.value, str) or _is_dynamic_str(side, dynamic)
                   for side in (node.left, node.right))
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in ("format", "join"):
        return True
    return isinstance(node, ast.Name) and node.id in dynamic
