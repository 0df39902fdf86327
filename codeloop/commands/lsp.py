"""``codeloop lsp``, ``codeloop complete FILE:LINE:COL``, ``codeloop chat "question"``: the language
server (lsp/) and two one-shot uses of its engine client."""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import logging
import os
import re
import sys
from pathlib import Path

from codeloop.arguments import positive_int
from codeloop.errors import UserError
from lsp.config import KV_DTYPES, SPECULATIVE_METHODS, WEIGHT_QUANTS, Settings


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("lsp", help="language server (stdio by default)")
    p.add_argument("--tcp", metavar="HOST:PORT", help="listen on TCP instead of stdio")
    p.add_argument("--stdio", action="store_true", help="use stdio (the default; accepted for clients that pass it)")
    _engine_flags(p)
    p.add_argument("--shared", action="store_true",
                   help="share one background `codeloop serve` between editors (started by the first)")
    p.add_argument("--shared-dir", type=Path, default=None,
                   help="with --shared: folder of the shared server's lock, record and log "
                        "(default ~/.cache/codeloop/serve)")
    p.add_argument("--log-level", default="WARNING", help="stderr log level (default WARNING)")
    p.set_defaults(func=run_lsp)

    c = subparsers.add_parser("complete", help="one completion at FILE:LINE:COL (1-based line and column)")
    c.add_argument("position", metavar="FILE:LINE:COL")
    _engine_flags(c)
    c.add_argument("--max-tokens", type=int, default=None)
    c.add_argument("--json", action="store_true", help="print a JSON object")
    c.add_argument("--check", action="store_true",
                   help="a block in a function with doctests, asserts or tests: the best of --candidates "
                        "candidates run against them in the sandbox; the result goes to stderr (or into --json)")
    c.add_argument("--candidates", type=positive_int, default=None,
                   help="with --check: candidates to generate (1-16, default 4)")
    c.add_argument("--check-backend", default="auto", choices=("auto", "bwrap", "docker"),
                   help="with --check: sandbox backend (default auto: bwrap, else docker; never unsandboxed)")
    c.set_defaults(func=run_complete)

    h = subparsers.add_parser("chat", help="ask the model a question (optionally about a file)")
    h.add_argument("question")
    h.add_argument("--file", type=Path, default=None)
    _engine_flags(h)
    h.add_argument("--max-tokens", type=int, default=512)
    h.add_argument("--json", action="store_true")
    h.set_defaults(func=run_chat)


def _engine_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default=None, help="catalog name, HF folder or GGUF file (in-process engine)")
    p.add_argument("--engine-url", default=None, help="URL of a running `codeloop serve` to use instead")
    p.add_argument("--weight-quant", default=None, choices=WEIGHT_QUANTS,
                   help="weights of the in-process engine (default none: bf16; auto: measured per CPU)")
    p.add_argument("--kv-dtype", default=None, choices=KV_DTYPES,
                   help="KV cache of the in-process engine: auto (model dtype) or int8 (half the memory)")
    p.add_argument("--speculative", default=None, choices=SPECULATIVE_METHODS,
                   help="speculative decoding in the in-process engine (default none)")
    p.add_argument("--draft-model", default=None, help="draft model for --speculative draft (same tokenizer)")


def _settings(args: argparse.Namespace, **extra: object) -> Settings:
    from inference.server.launcher import API_KEY_ENV

    return Settings().merged({"model": args.model, "engine_url": args.engine_url, "api_key": os.environ.get(API_KEY_ENV),
                              "weight_quant": args.weight_quant, "kv_dtype": args.kv_dtype,
                              "speculative": args.speculative, "draft_model": args.draft_model, **extra})


def run_lsp(args: argparse.Namespace) -> int:
    from lsp.server import build_server, make_client

    logging.basicConfig(stream=sys.stderr, level=args.log_level.upper())
    client_factory = make_client
    if args.shared and not args.engine_url:
        relaunch = functools.partial(_shared_url, args.model or "qwen2.5-coder-0.5b-instruct", args.shared_dir)
        args.engine_url = shared = relaunch()
        # NOTE: the server names a model folder by its basename, not the path we were given; it serves
        # only this model, so requests name none.
        args.model = None

        def client_factory(settings: Settings):
            """The shared server is started again when it has exited (after an hour idle, by design)."""
            return make_client(settings, relaunch if settings.engine_url == shared else None)
    server = build_server(_settings(args), client_factory)
    if args.tcp:
        match = re.fullmatch(r"(.+):(\d+)", args.tcp)
        if not match:
            raise UserError(f"--tcp wants HOST:PORT, got {args.tcp!r}")
        server.start_tcp(match.group(1), int(match.group(2)))
    else:
        server.start_io()
    return server.protocol.exit_code


def _shared_url(model: str, state_dir: Path | None) -> str:
    """URL of the shared server for ``model``, starting it in the background when none answers."""
    from inference.server.launcher import API_KEY_ENV, SharedServerError, ensure_shared_server

    try:
        return ensure_shared_server(model, api_key=os.environ.get(API_KEY_ENV) or None,
                                    **({"state_dir": state_dir} if state_dir else {}))
    except SharedServerError as exc:
        raise UserError(f"--shared: {exc}") from None


def _parse_position(text: str) -> tuple[Path, int, int]:
    match = re.fullmatch(r"(.+):(\d+):(\d+)", text)
    if not match:
        raise UserError(f"position must be FILE:LINE:COL (1-based), got {text!r}")
    path = Path(match.group(1))
    if not path.is_file():
        raise UserError(f"no such file: {path}")
    line, col = int(match.group(2)), int(match.group(3))
    if line < 1 or col < 1:
        raise UserError("LINE and COL are 1-based")
    return path, line - 1, col - 1


def run_complete(args: argparse.Namespace) -> int:
    from lsp.completer import Completer
    from lsp.context import PositionError
    from lsp.engine_client import EngineError
    from lsp.server import make_client
    from lsp.suggestion import Document

    path, line, col = _parse_position(args.position)
    if args.candidates is not None and args.candidates > 16:
        raise UserError("--candidates must be at most 16")
    text = path.read_text(encoding="utf-8", errors="replace")
    check = {"enabled": True, "backend": args.check_backend, **({"candidates": args.candidates} if args.candidates else {})}
    settings = _settings(args, debounceMs=0, **({"maxTokens": args.max_tokens} if args.max_tokens else {}),
                         **({"check": check} if args.check else {}))
    root = _workspace_root(path)
    checker = _checker(root, settings) if args.check else None
    client = make_client(settings)

    async def once():
        completer = Completer(client, settings, root, checker, repo_adapters=True)
        notes = []
        completer.on_check = lambda doc, s: notes.append(s)
        try:
            doc = Document(path.as_uri(), str(path.resolve()), text, encoding="utf-32")  # COL counts characters
            suggestion = await completer.suggest(doc, line, col)
            late = completer.pending_check(doc.uri)
            if late is not None:  # a terminal can wait for the final choice
                await late
            return notes[-1] if notes else suggestion
        finally:
            await client.aclose()
            if checker is not None:
                checker.close()

    try:
        suggestion = asyncio.run(once())
    except PositionError as exc:  # its line is 0-based, as in the LSP; the user gave a 1-based one
        lines = f" (it has {exc.num_lines} lines)" if exc.num_lines is not None else ""
        raise UserError(f"line {exc.line + 1} is past the end of {path}{lines}") from exc
    except (EngineError, ValueError, RuntimeError) as exc:  # an engine's refusal is one line, never a traceback
        raise UserError(f"{type(exc).__name__}: {exc}" if not isinstance(exc, EngineError) else str(exc)) from exc
    out = suggestion.text if suggestion else ""
    note = suggestion.check if suggestion else None
    if args.json:
        print(json.dumps({"file": str(path), "line": line + 1, "column": col + 1, "text": out,
                          "mode": suggestion.mode.value if suggestion else None,
                          **({"check": _check_json(note)} if args.check else {})}))
    else:
        print(out)
        if args.check:
            print(f"codeloop: {note.summary() if note else 'no checks found for this position'}", file=sys.stderr)
    return 0


def _workspace_root(path: Path) -> str:
    """The nearest folder above ``path`` that looks like a project root (else the file's folder)."""
    start = path.resolve().parent
    for folder in (start, *start.parents):
        if any((folder / marker).exists() for marker in (".git", "pyproject.toml", "setup.py", "setup.cfg")):
            return str(folder)
    return str(start)


def _checker(root: str, settings: Settings):
    from lsp.checks.checker import Checker

    checker = Checker(root, settings.check)
    name, why = checker.executor.backend()
    if name is None:
        raise UserError(f"--check needs a sandbox: {why}")
    checker.index_now()
    return checker


def _check_json(note) -> dict | None:
    if note is None:
        return None
    return {"function": note.function, "status": note.status, "summary": note.summary(),
            "candidates": note.num_candidates, **(note.verdict.as_dict() if note.verdict else {})}


def run_chat(args: argparse.Namespace) -> int:
    from lsp.engine_client import EngineError
    from lsp.features.chat import ChatRequest, chat_messages
    from lsp.server import make_client

    doc = None
    if args.file is not None:
        if not args.file.is_file():
            raise UserError(f"no such file: {args.file}")
        doc = args.file.read_text(encoding="utf-8", errors="replace")
    messages = chat_messages(ChatRequest([{"role": "user", "content": args.question}]),
                             str(args.file) if args.file else None, doc)
    client = make_client(_settings(args))

    async def run() -> str:
        text = ""
        try:
            async for chunk in client.chat(messages, args.max_tokens, None):  # the model's recommended sampling
                text = chunk.text
                if not args.json:
                    print(chunk.delta, end="", flush=True)
        finally:
            await client.aclose()
        return text

    try:
        text = asyncio.run(run())
    except (EngineError, ValueError, RuntimeError) as exc:  # an engine's refusal is one line, never a traceback
        raise UserError(f"{type(exc).__name__}: {exc}" if not isinstance(exc, EngineError) else str(exc)) from exc
    print(json.dumps({"text": text}) if args.json else "")
    return 0
