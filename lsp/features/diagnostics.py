"""Security diagnostics from the ``security`` scanner: findings on open documents, an "explain" code action, and
the ``security.copyleft`` / ``security.secrets`` settings (warn | block) applied to suggestions.

Scans run off the event loop, debounced per document (a newer edit restarts the wait); diagnostic codes
are ``codeloop.<rule_id>`` (``codeloop.B602``, ``codeloop.secret.AWSKeyDetector``).
"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import TYPE_CHECKING, Any

from lsprotocol import types

from lsp.context import index_to_utf16
from lsp.suggestion import Document, Suggestion

if TYPE_CHECKING:
    from lsp.server import CodeloopServer

SCAN_DEBOUNCE_S = 0.4
EXPLAIN_COMMAND = "codeloop.explain"
SEVERITY = {"high": types.DiagnosticSeverity.Error, "medium": types.DiagnosticSeverity.Warning,
            "low": types.DiagnosticSeverity.Information}


def to_diagnostic(finding: Any, lines: list[str], encoding: str = "utf-16") -> types.Diagnostic:
    """An LSP diagnostic for a scan finding (its columns count code points: converted to ``encoding``)."""
    def pos(line: int, col: int) -> types.Position:
        text = lines[line] if 0 <= line < len(lines) else ""
        return types.Position(line, index_to_utf16(text, col, encoding))

    return types.Diagnostic(
        range=types.Range(pos(finding.start_line, finding.start_col), pos(finding.end_line, finding.end_col)),
        message=finding.message, severity=SEVERITY.get(finding.severity.value, types.DiagnosticSeverity.Hint),
        code=f"codeloop.{finding.rule_id}", source="codeloop",
    )


def scan_document(text: str, path: str) -> list[Any]:
    from security import scan

    return scan(text, filename=path)


def suggestion_filter(ls: CodeloopServer, doc: Document, suggestion: Suggestion) -> Suggestion | None:
    """Drop (block) or mark (warn) a suggestion holding a secret or copyleft code, per the settings."""
    from security import ScanConfig, scan

    sec = ls.settings.security
    findings = scan(suggestion.text, filename=doc.path, config=ScanConfig(risky=False, pii=False))
    notes = []
    for f in findings:
        policy = sec.secrets if f.kind.value == "secret" else sec.copyleft if f.kind.value == "licence" else None
        if policy == "block":
            return None
        if policy == "warn":
            notes.append(f"{f.rule_id}: {f.message}")
    return dataclasses.replace(suggestion, warnings=tuple(notes)) if notes else suggestion


class DiagnosticsFeature:
    """Invariant: at most one pending scan per document; the latest edit's scan is the one published,
    together with the hints other features set for the document since its last edit."""

    def __init__(self, server: CodeloopServer) -> None:
        self.server = server
        self._pending: dict[str, asyncio.Task[None]] = {}
        self._findings: dict[str, list[Any]] = {}
        self._published: dict[str, list[types.Diagnostic]] = {}
        self._hints: dict[str, list[types.Diagnostic]] = {}

    def set_hints(self, uri: str, hints: list[types.Diagnostic]) -> None:
        """Publish ``hints`` (e.g. a checked suggestion's result) with the scan's findings, until the next edit."""
        self._hints[uri] = hints
        self._publish(uri)

    def _publish(self, uri: str) -> None:
        diags = self._published.get(uri, []) + self._hints.get(uri, [])
        self.server.text_document_publish_diagnostics(types.PublishDiagnosticsParams(uri=uri, diagnostics=diags))

    def schedule(self, uri: str) -> None:
        self._hints.pop(uri, None)
        old = self._pending.get(uri)
        if old is not None and not old.done():
            old.cancel()
        self._pending[uri] = asyncio.ensure_future(self._scan_later(uri))

    async def _scan_later(self, uri: str) -> None:
        await asyncio.sleep(SCAN_DEBOUNCE_S)
        if uri not in self.server.workspace.text_documents:
            return
        doc = self.server.document(uri)
        findings = await asyncio.to_thread(scan_document, doc.text, doc.path)
        self._findings[uri] = findings
        lines = doc.text.split("\n")
        self._published[uri] = [to_diagnostic(f, lines, doc.encoding) for f in findings if f.rule_id != "scan.error"]
        self._publish(uri)

    def close(self, uri: str) -> None:
        self._findings.pop(uri, None)
        self._published.pop(uri, None)
        self._hints.pop(uri, None)
        task = self._pending.pop(uri, None)
        if task is not None:
            task.cancel()
        self.server.text_document_publish_diagnostics(types.PublishDiagnosticsParams(uri=uri, diagnostics=[]))

    def explain(self, uri: str, code: str) -> str:
        from security import explain

        for f in self._findings.get(uri, []):
            if f"codeloop.{f.rule_id}" == code:
                return explain(f)
        return f"No current finding {code} in {uri}."

    def code_actions(self, params: types.CodeActionParams) -> list[types.CodeAction]:
        uri = params.text_document.uri
        actions = []
        for diag in params.context.diagnostics:
            if diag.source == "codeloop" and isinstance(diag.code, str):
                actions.append(types.CodeAction(
                    title=f"Explain {diag.code}", kind=types.CodeActionKind.QuickFix, diagnostics=[diag],
                    command=types.Command(title=f"Explain {diag.code}", command=EXPLAIN_COMMAND,
                                          arguments=[uri, diag.code])))
        return actions


def register(server: CodeloopServer) -> None:
    feature = DiagnosticsFeature(server)
    server.diagnostics = feature  # type: ignore[attr-defined]
    server.suggestion_filters.append(lambda doc, s: suggestion_filter(server, doc, s))
    server.document_listeners.append(feature)

    @server.feature(types.TEXT_DOCUMENT_CODE_ACTION,
                    types.CodeActionOptions(code_action_kinds=[types.CodeActionKind.QuickFix]))
    def code_action(ls: CodeloopServer, params: types.CodeActionParams) -> list[types.CodeAction]:
        return feature.code_actions(params)

    @server.command(EXPLAIN_COMMAND)
    def explain_command(ls, *arguments: Any) -> str:  # noqa: ANN001 - pygls resolves hints at runtime
        if len(arguments) != 2 or not all(isinstance(a, str) for a in arguments):
            from pygls.exceptions import JsonRpcInvalidParams

            raise JsonRpcInvalidParams("codeloop.explain takes [uri, code]")
        text = feature.explain(arguments[0], arguments[1])
        ls.window_show_message(types.ShowMessageParams(type=types.MessageType.Info, message=text))
        return text
