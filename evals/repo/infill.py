"""The peer: llama.cpp's own ``llama-server /infill``, asked and read as llama.vscode does.

``PeerOptions.client`` picks how a cursor becomes a request and a reply becomes the scored completion:

- ``llama.vscode`` (the default): llama.vscode's request (``n_indent``, ``t_max_predict_ms``, its sampler
  chain; evals/repo/llama_vscode.py) and what it shows of the reply — the ghost text a user of that editor
  client would accept with Tab.
- ``raw``: the same prompt layout and samplers without the server-side stops (``n_indent``,
  ``t_max_*_ms``), and the reply scored as the server returned it. Untrimmed: replies run on past the
  line or block.

The ``input_extra`` chunks are the snippets our retriever picks for the same cursor (an eval has no history
of opened files to fill llama.vscode's ring buffer), so the comparison isolates prompt layout, model
serving and post-processing.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import httpx

from evals.repo import llama_vscode
from evals.repo.llama_vscode import Cursor, InfillRequest, VscodeSettings
from inference.fim import ContextFile

CLIENTS = ("llama.vscode", "raw")


@dataclass(frozen=True)
class PeerOptions:
    """How the peer is asked and read (carried in ``EngineChoice.engine_options``, so it is part of a run's
    identity)."""

    client: str = "llama.vscode"
    t_max_predict_ms: int = llama_vscode.T_MAX_PREDICT_MS

    def __post_init__(self) -> None:
        if self.client not in CLIENTS:
            raise ValueError(f"infill client {self.client!r}: choose one of {', '.join(CLIENTS)}")
        if self.t_max_predict_ms < 0:
            raise ValueError(f"t_max_predict_ms must be >= 0, got {self.t_max_predict_ms}")

    @classmethod
    def from_dict(cls, options: dict[str, Any]) -> PeerOptions:
        return cls(**options)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class PeerAnswer:
    completion: str
    """What is scored."""
    raw: str
    """The first candidate's ``content`` as the server returned it."""
    notes: dict[str, Any]


def request(text: str, offset: int, chunks: tuple[ContextFile, ...], options: PeerOptions) -> InfillRequest:
    """The ``/infill`` request for a cursor at ``offset`` of ``text``."""
    cursor = Cursor.at(text, offset)
    extra = [{"filename": c.path, "text": c.text} for c in chunks]
    req = llama_vscode.infill_request(cursor, extra, VscodeSettings(t_max_predict_ms=options.t_max_predict_ms))
    if options.client == "raw":
        body = {k: v for k, v in req.body.items() if k not in ("n_indent", "t_max_prompt_ms", "t_max_predict_ms")}
        return InfillRequest(body, cursor, req.spaces_to_remove)
    return req


def read(reply: Any, req: InfillRequest, options: PeerOptions) -> PeerAnswer:
    """The scored completion of ``reply`` (the server's JSON) to ``req``."""
    first = reply if isinstance(reply, dict) else (reply[0] if reply else {})
    raw = first.get("content") or ""
    notes: dict[str, Any] = {"stop_type": first.get("stop_type"), "tokens_predicted": first.get("tokens_predicted"),
                             "timings": first.get("timings") or {}}
    if options.client == "raw":
        return PeerAnswer(raw, raw, notes)
    seen = llama_vscode.shown(reply, req)
    notes.update(discarded=seen.discarded, **({"client_error": seen.error} if seen.error else {}))
    return PeerAnswer(seen.text, raw, notes)


async def answer(client: InfillClient, text: str, offset: int, chunks: tuple[ContextFile, ...],
                 options: PeerOptions) -> PeerAnswer:
    """Ask the peer for the cursor at ``offset`` of ``text``; with the llama.vscode client, a cursor with
    more than MAX_LINE_SUFFIX characters right of it gets no request (llama.vscode sends none on its own)."""
    req = request(text, offset, chunks, options)
    if options.client == "llama.vscode" and llama_vscode.auto_trigger_refused(req.cursor):
        return PeerAnswer("", "", {"not_triggered": "line suffix longer than max_line_suffix"})
    return read(await client.complete(req.body), req, options)


class InfillClient:
    """POSTs to a running llama-server; one shared HTTP connection pool."""

    def __init__(self, base_url: str, timeout_s: float = 300.0, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self._http = httpx.AsyncClient(base_url=base_url.rstrip("/"), timeout=httpx.Timeout(timeout_s, connect=5.0),
                                       transport=transport)

    async def complete(self, body: dict[str, Any]) -> Any:
        """The reply's JSON (an object, or a list for ``n_cmpl`` > 1); raises httpx.HTTPError or
        RuntimeError on a bad reply."""
        resp = await self._http.post("/infill", json=body)
        if resp.status_code != 200:
            raise RuntimeError(f"llama-server returned HTTP {resp.status_code}: {resp.text[:300]}")
        return resp.json()

    async def aclose(self) -> None:
        await self._http.aclose()
