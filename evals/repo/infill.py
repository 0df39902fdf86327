"""The peer: llama.cpp's own ``llama-server /infill``, asked the way llama.vscode asks it.

Request (llama.vscode's ``src/completion.ts`` and ``src/llama-server.ts``): ``input_prefix`` = the
N_PREFIX_LINES lines above the cursor's line, ``prompt`` = the cursor's line up to the cursor (empty when
it is only indentation, then ``n_indent`` = that indentation), ``input_suffix`` = the rest of the line and
the N_SUFFIX_LINES lines below, ``input_extra`` = cross-file chunks ``{filename, text}``, ``n_predict``.
The chunks are the snippets our retriever picks for the same cursor (an eval has no history of opened
files to fill llama.vscode's ring buffer), so the comparison isolates prompt layout, model serving and
post-processing. Deviations, for a like-for-like measurement: greedy decoding (``temperature`` 0, as our
engine path) and no ``t_max_*_ms`` time limits. The reply's ``content`` goes through llama.vscode's own
client-side rules (``finish``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from inference.fim import ContextFile

N_PREFIX_LINES = 256
N_SUFFIX_LINES = 64
N_PREDICT = 128


@dataclass(frozen=True)
class InfillRequest:
    body: dict[str, Any]
    line_prefix: str
    indent_removed: int
    next_lines: tuple[str, ...]
    """Document lines after the cursor's line (for the discard rule)."""


def infill_request(text: str, offset: int, chunks: tuple[ContextFile, ...] = (),
                   n_predict: int = N_PREDICT) -> InfillRequest:
    """llama.vscode's ``/infill`` body for a cursor at ``offset`` of ``text``."""
    line_start = text.rfind("\n", 0, offset) + 1
    line_end = text.find("\n", offset)
    line_end = len(text) if line_end < 0 else line_end
    line_prefix, line_suffix = text[line_start:offset], text[offset:line_end]
    above = text[:line_start].split("\n")[:-1][-N_PREFIX_LINES:]
    below = text[line_end + 1:].split("\n")[:N_SUFFIX_LINES] if line_end < len(text) else []
    prompt, indent = (line_prefix, 0) if line_prefix.strip() else ("", len(line_prefix))
    body: dict[str, Any] = {
        "input_prefix": "\n".join(above) + "\n", "input_suffix": line_suffix + "\n" + "\n".join(below) + "\n",
        "input_extra": [{"filename": c.path, "text": c.text} for c in chunks], "prompt": prompt,
        "n_predict": n_predict, "top_k": 40, "top_p": 0.99, "samplers": ["top_k", "top_p", "infill"],
        "stream": False, "cache_prompt": True, "temperature": 0.0,
    }
    if indent:
        body["n_indent"] = indent
    return InfillRequest(body, line_prefix, indent, tuple(below))


def finish(content: str, req: InfillRequest) -> str:
    """llama.vscode's client side: drop trailing empty lines, discard a suggestion that is empty or only
    repeats the next line, strip the indentation the editor already has."""
    lines = content.split("\n")
    while lines and not lines[-1].strip():
        lines.pop()
    if not lines or (len(lines) == 1 and not lines[0].strip()):
        return ""
    following = [ln for ln in req.next_lines if ln.strip()]
    if len(lines) == 1 and following and req.line_prefix + lines[0] == following[0]:
        return ""
    text = "\n".join(lines)
    if req.indent_removed:
        i = 0
        while i < len(text) and i < req.indent_removed and text[i] in " \t":
            i += 1
        text = text[i:]
    return text


class InfillClient:
    """POSTs to a running llama-server; one shared HTTP connection pool."""

    def __init__(self, base_url: str, timeout_s: float = 300.0) -> None:
        self._http = httpx.AsyncClient(base_url=base_url.rstrip("/"), timeout=httpx.Timeout(timeout_s, connect=5.0))

    async def complete(self, req: InfillRequest) -> tuple[str, dict[str, Any]]:
        """(raw ``content``, ``timings``); raises httpx.HTTPError or RuntimeError on a bad reply."""
        resp = await self._http.post("/infill", json=req.body)
        if resp.status_code != 200:
            raise RuntimeError(f"llama-server returned HTTP {resp.status_code}: {resp.text[:300]}")
        data = resp.json()
        return data.get("content") or "", data.get("timings") or {}

    async def aclose(self) -> None:
        await self._http.aclose()
