"""Chat: ``workspace/executeCommand`` ``codeloop.chat`` and the custom request ``codeloop/chat``.

Params (one JSON object): ``messages`` (list of {role, content}), optional ``textDocument`` {uri},
optional ``selection`` (an LSP Range), optional ``seed`` (an int: the same seed gives the same answer, as
OpenAI's ``seed``), optional ``workDoneToken``. The answer streams as ``$/progress``
reports (each ``message`` is the text added since the previous report) on the client's token, or on a
server-created token when the client supports ``window.workDoneProgress``; the result is
``{"text": full answer}``.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lsprotocol import types
from pygls.exceptions import JsonRpcInvalidParams

from lsp.protocol import plain

if TYPE_CHECKING:
    from lsp.server import CodeloopServer

CHAT_COMMAND = "codeloop.chat"
CHAT_REQUEST = "codeloop/chat"
SYSTEM_PROMPT = ("You are codeloop, a coding assistant in the user's editor. "
                 "Answer the user's question directly and concisely.")
"""NOTE: Qwen2.5-Coder-0.5B answers a bare question ("In two sentences: what does X do?") about half the time
by asking one back ("Could you ...?"), whatever the system prompt; 'directly' and the file shown as context
in the same user turn bring that to a few percent of first tokens (measured with transformers)."""
MAX_DOC_CHARS = 8000
REPORT_EVERY_S = 0.05
ROLES = ("system", "user", "assistant")


@dataclass(frozen=True)
class ChatRequest:
    messages: list[dict[str, str]]
    uri: str | None = None
    selection: tuple[int, int, int, int] | None = None
    """(start line, start char, end line, end char)."""
    token: str | int | None = None
    seed: int | None = None
    """Sampling seed (None: random); sampling stays the model family's recommended one."""


def parse_request(payload: Any) -> ChatRequest:
    """Validate a chat payload; raises ValueError naming the bad field."""
    payload = plain(payload)
    if not isinstance(payload, dict):
        raise ValueError("chat params must be an object with 'messages'")
    msgs = payload.get("messages")
    if not isinstance(msgs, list) or not msgs:
        raise ValueError("'messages' must be a non-empty list")
    for m in msgs:
        if not isinstance(m, dict) or m.get("role") not in ROLES or not isinstance(m.get("content"), str):
            raise ValueError("each message needs 'role' (system|user|assistant) and string 'content'")
    doc = payload.get("textDocument") or {}
    uri = doc.get("uri") if isinstance(doc, dict) else None
    sel = payload.get("selection")
    selection = None
    if isinstance(sel, dict):
        try:
            selection = (int(sel["start"]["line"]), int(sel["start"]["character"]),
                         int(sel["end"]["line"]), int(sel["end"]["character"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError("'selection' must be an LSP Range") from exc
    token = payload.get("workDoneToken")
    seed = payload.get("seed")
    if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
        raise ValueError("'seed' must be an integer")
    return ChatRequest([{"role": m["role"], "content": m["content"]} for m in msgs], uri, selection,
                       token if isinstance(token, (str, int)) else None, seed)


def chat_messages(req: ChatRequest, path: str | None, doc_text: str | None) -> list[dict[str, str]]:
    """Messages for the chat template: our system prompt, the conversation, and the document (or selection)
    framed as context at the head of the last user message, so that message ends with the question.

    NOTE: the context once came as a user turn of its own answered by a made-up assistant "OK."; the small
    models then read the real question as a follow-up and asked for "more context" instead of answering.
    """
    out = [{"role": "system", "content": SYSTEM_PROMPT}]
    out.extend(dict(m) for m in req.messages if m["role"] != "system")
    last = max((i for i, m in enumerate(out) if m["role"] == "user"), default=None)
    if doc_text is not None and last is not None:
        out[last]["content"] = f"{_context(req, path, doc_text)}\n\n{out[last]['content']}"
    return out


def _context(req: ChatRequest, path: str | None, doc_text: str) -> str:
    """The document (or the selection in it) as a fenced block, labelled as context for the question."""
    if req.selection:
        from lsp.context import resolve

        a = resolve(doc_text, req.selection[0], req.selection[1]).offset
        b = resolve(doc_text, req.selection[2], req.selection[3]).offset
        snippet, what = doc_text[min(a, b) : max(a, b)], "The code I have selected"
    else:
        snippet, what = doc_text, "The file open in my editor"
    where = f" ({path})" if path else ""
    code = snippet[:MAX_DOC_CHARS].rstrip("\n")
    return f"{what}{where}, for context:\n```\n{code}\n```"


async def answer(ls: CodeloopServer, payload: Any) -> dict[str, Any]:
    try:
        req = parse_request(payload)
        path, text = ls.document_text(req.uri) if req.uri else (None, None)
        messages = chat_messages(req, path, text)
    except ValueError as exc:
        raise JsonRpcInvalidParams(str(exc)) from exc
    token = req.token if req.token is not None else await _server_token(ls)
    if token is not None:
        ls.work_done_progress.begin(token, types.WorkDoneProgressBegin(title="codeloop chat", cancellable=True))
    text, pending, last = "", "", time.monotonic()
    try:
        # the model family's recommended sampling (catalog / the server's defaults): greedy chat repeats itself
        stream = ls.client.chat(messages, ls.settings.chat_max_tokens, None, seed=req.seed)
        async with contextlib.aclosing(stream) as chunks:  # type: ignore[type-var]
            async for chunk in chunks:
                text, pending = chunk.text, pending + chunk.delta
                if token is not None and pending and time.monotonic() - last >= REPORT_EVERY_S:
                    ls.work_done_progress.report(token, types.WorkDoneProgressReport(message=pending))
                    pending, last = "", time.monotonic()
    finally:
        if token is not None:
            if pending:
                ls.work_done_progress.report(token, types.WorkDoneProgressReport(message=pending))
            ls.work_done_progress.end(token, types.WorkDoneProgressEnd())
    return {"text": text}


async def _server_token(ls: CodeloopServer) -> str | None:
    caps = ls.client_capabilities
    if not (caps and caps.window and caps.window.work_done_progress):
        return None
    token = f"codeloop-chat-{uuid.uuid4().hex[:8]}"
    try:
        await ls.work_done_progress.create_async(token)
    except Exception:  # noqa: BLE001 - a client that refuses progress still gets the answer
        return None
    return token


def register(server: CodeloopServer) -> None:
    @server.command(CHAT_COMMAND)
    async def chat_command(ls, *arguments: Any) -> dict[str, Any]:  # noqa: ANN001 - pygls resolves hints at runtime
        if len(arguments) != 1:
            raise JsonRpcInvalidParams("codeloop.chat takes one argument: {messages, textDocument?, selection?}")
        return await answer(ls, arguments[0])

    @server.feature(CHAT_REQUEST)
    async def chat_request(ls: CodeloopServer, params: Any) -> dict[str, Any]:
        return await answer(ls, params)
