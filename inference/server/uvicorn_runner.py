"""Run the app under uvicorn: in the foreground for ``codeloop serve`` (SIGTERM = graceful shutdown),
or on a loopback port in a background thread for tests and benchmarks."""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time

import uvicorn
from fastapi import FastAPI

from inference.server.app import create_app
from inference.server.backend import ServingEngine
from inference.server.config import ServerConfig

log = logging.getLogger(__name__)


class _Server(uvicorn.Server):
    """uvicorn that marks the app closing as soon as shutdown starts (signal, idle exit or ``stop``), so
    /health answers 503 and new requests get 503 while in-flight ones finish."""

    def __init__(self, config: uvicorn.Config, app: FastAPI) -> None:
        super().__init__(config)
        self._state = app.state.codeloop

    def handle_exit(self, sig: int, frame: object) -> None:
        self.begin_shutdown()
        super().handle_exit(sig, frame)  # type: ignore[arg-type]

    def begin_shutdown(self) -> None:
        self._state.closing = True
        self.should_exit = True


def _uvicorn_config(app: FastAPI, config: ServerConfig, log_level: str) -> uvicorn.Config:
    return uvicorn.Config(app, host=config.host, port=config.port, log_level=log_level, access_log=False,
                          timeout_graceful_shutdown=int(config.shutdown_grace_s), lifespan="on")


def serve(engine: ServingEngine, config: ServerConfig, *, idle_shutdown_s: float | None = None,
          log_level: str = "info") -> None:
    """Serve until SIGTERM/SIGINT (or ``idle_shutdown_s`` without a request in flight).

    On the signal uvicorn stops accepting connections, lets in-flight requests finish for
    ``shutdown_grace_s``, cancels the rest (their engine requests are aborted), then the app's lifespan
    shuts the engine down: no engine thread or request outlives the call.
    """
    app = create_app(engine, config)
    server = _Server(_uvicorn_config(app, config, log_level), app)
    if idle_shutdown_s is not None:
        threading.Thread(target=_idle_watch, args=(server, app, idle_shutdown_s), daemon=True,
                         name="codeloop-idle-watch").start()
    server.run()


def _idle_watch(server: _Server, app: FastAPI, idle_shutdown_s: float) -> None:
    state = app.state.codeloop
    last_busy = time.monotonic()
    while not server.should_exit:
        time.sleep(min(1.0, idle_shutdown_s))
        if state.in_flight or state.last_request_s > last_busy:
            last_busy = max(time.monotonic(), state.last_request_s)
        elif time.monotonic() - last_busy >= idle_shutdown_s:
            log.info("no request for %.0f s: shutting down", idle_shutdown_s)
            server.begin_shutdown()


class ThreadedServer:
    """The app served on ``config.host`` (default 127.0.0.1), port ``config.port`` (0: a free one) from a
    background thread; ``url`` (loopback) once entered.

    Leaving the context stops uvicorn (graceful, then the lifespan shuts the engine down) and joins.
    """

    def __init__(self, engine: ServingEngine, config: ServerConfig | None = None) -> None:
        self.config = config or ServerConfig(port=0)
        self.app = create_app(engine, self.config)
        self._server = _Server(_uvicorn_config(self.app, self.config, "warning"), self.app)
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind((self.config.host, self.config.port))
        self.port = self._socket.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._run, name="codeloop-uvicorn", daemon=True)

    def _run(self) -> None:
        asyncio.run(self._server.serve(sockets=[self._socket]))

    def __enter__(self) -> ThreadedServer:
        self._thread.start()
        deadline = time.monotonic() + 30
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self, timeout_s: float = 30.0) -> None:
        self._server.begin_shutdown()
        self._thread.join(timeout_s)
