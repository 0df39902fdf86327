"""Runs an Engine's step loop in a background thread and streams outputs to asyncio or sync consumers."""

from __future__ import annotations

import asyncio
import queue
import threading
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from inference.config import EngineConfig
from inference.engine import Engine
from inference.engine_stats import EngineStats
from inference.request import Priority, RequestOutput
from inference.sampling import SamplingParams

Sink = Callable[[Any], bool]
"""Delivers a RequestOutput or an exception to one consumer; False when the consumer is gone."""


@dataclass
class _Add:
    request_id: str
    prompt: str | list[int]
    params: SamplingParams | None
    priority: Priority
    adapter_id: str | None
    sink: Sink


@dataclass
class _Abort:
    request_id: str


class _Stop:
    pass


@dataclass
class _Call:
    """Run ``fn(engine)`` on the engine thread between two steps; its result or error goes to ``result``."""

    fn: Callable[[Engine], Any]
    result: Future


class _Subscription:
    """One consumer's side of a request's stream, shared by ``generate`` (asyncio) and ``stream`` (blocking).

    Invariant: ``done`` once the final output or an error was taken; ``close`` before that aborts the request
    (the consumer stopped listening)."""

    def __init__(self, engine: AsyncEngine, request_id: str) -> None:
        self.engine, self.request_id, self.done = engine, request_id, False

    def take(self, item: Any) -> RequestOutput:
        """The output the engine thread handed over; raises the error it handed over instead."""
        if isinstance(item, BaseException):
            self.done = True
            raise item
        self.done = item.finished
        return item

    def close(self) -> None:
        if not self.done:
            self.engine.abort(self.request_id)


class AsyncEngine:
    """Owns one ``Engine``; only its background thread touches it.

    ``generate`` / ``stream`` / ``abort`` from any thread or event loop queue commands to that thread.
    Every stream ends with a finished output (ABORT when aborted or shut down) or raises the error that
    rejected the request. A consumer that stops listening (task cancelled, loop exited, ``break`` then
    closing the generator) aborts its request, so its KV blocks are freed within one step.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._commands: queue.Queue[_Add | _Abort | _Stop | _Call] = queue.Queue()
        self._sinks: dict[str, Sink] = {}
        self._stats = engine.stats()
        self._adapters = engine.adapters
        self._closed = False
        self._thread = threading.Thread(target=self._loop, name="codeloop-engine", daemon=True)
        self._thread.start()

    @classmethod
    def from_config(cls, config: EngineConfig) -> AsyncEngine:
        return cls(Engine.from_config(config))

    @property
    def tokenizer(self) -> Any:
        return self.engine.tokenizer

    def stats(self) -> EngineStats:
        """Snapshot taken after the latest step."""
        return self._stats

    async def generate(self, prompt: str | list[int], params: SamplingParams | None = None,
                       priority: Priority = Priority.INTERACTIVE, request_id: str | None = None,
                       adapter_id: str | None = None) -> AsyncIterator[RequestOutput]:
        """Stream a request's outputs; raises ValueError if the engine rejects it."""
        loop = asyncio.get_running_loop()
        outputs: asyncio.Queue[Any] = asyncio.Queue()

        def sink(item: Any) -> bool:
            try:
                loop.call_soon_threadsafe(outputs.put_nowait, item)
            except RuntimeError:  # the consumer's loop is closed
                return False
            return True

        subscription = self._submit(prompt, params, priority, request_id, adapter_id, sink)
        try:
            while not subscription.done:
                yield subscription.take(await outputs.get())
        finally:
            subscription.close()

    def stream(self, prompt: str | list[int], params: SamplingParams | None = None,
               priority: Priority = Priority.INTERACTIVE, request_id: str | None = None,
               adapter_id: str | None = None) -> Iterator[RequestOutput]:
        """Blocking version of ``generate`` for sync code (closing the iterator aborts the request)."""
        outputs: queue.Queue[Any] = queue.Queue()

        def sink(item: Any) -> bool:
            outputs.put(item)
            return True

        subscription = self._submit(prompt, params, priority, request_id, adapter_id, sink)
        try:
            while not subscription.done:
                yield subscription.take(outputs.get())
        finally:
            subscription.close()

    def complete(self, prompt: str | list[int], params: SamplingParams | None = None,
                 priority: Priority = Priority.INTERACTIVE) -> RequestOutput:
        """Blocking: the final output of one request."""
        outputs = list(self.stream(prompt, params, priority))
        return outputs[-1]

    def abort(self, request_id: str) -> None:
        """Abort a request (unknown or finished ids are ignored); safe from any thread. A step running only
        aborted requests ends between two layers (``Engine.request_stop``)."""
        if not self._closed:
            self.engine.request_stop(request_id)
            self._commands.put(_Abort(request_id))

    def shutdown(self, timeout_s: float = 10.0) -> None:
        """Abort everything in flight (streams end with ABORT) and stop the thread."""
        if self._closed:
            return
        self._closed = True
        self._commands.put(_Stop())
        self._thread.join(timeout_s)

    def _submit(self, prompt: str | list[int], params: SamplingParams | None, priority: Priority,
                request_id: str | None, adapter_id: str | None, sink: Sink) -> _Subscription:
        if self._closed:
            raise RuntimeError("AsyncEngine is shut down")
        request_id = request_id if request_id is not None else f"req-{uuid.uuid4().hex}"
        self._commands.put(_Add(request_id, prompt, params, priority, adapter_id, sink))
        return _Subscription(self, request_id)

    def _loop(self) -> None:
        while True:
            idle = not self.engine.has_unfinished()
            commands = [self._commands.get()] if idle else []
            while not self._commands.empty():
                commands.append(self._commands.get_nowait())
            for command in commands:
                if isinstance(command, _Stop):
                    self._stop()
                    return
                self._apply(command)
            if self.engine.has_unfinished():
                self._step()

    def call(self, fn: Callable[[Engine], Any], timeout_s: float | None = 60.0) -> Any:
        """Run ``fn(engine)`` on the engine thread between two steps; thread-safe, blocks for its result and
        raises what it raised."""
        if self._closed:
            raise RuntimeError("AsyncEngine is shut down")
        result: Future = Future()
        self._commands.put(_Call(fn, result))
        return result.result(timeout=timeout_s)

    def set_adapter(self, path: Path | None, timeout_s: float | None = 60.0) -> str | None:
        """``Engine.set_adapter`` between two steps: the default adapter (None: the base model)."""
        return self.call(lambda engine: engine.set_adapter(path), timeout_s)

    def load_adapter(self, path: Path, name: str, timeout_s: float | None = 60.0) -> str:
        """``Engine.load_adapter`` between two steps (a hot reload when ``name`` is loaded already)."""
        return self.call(lambda engine: engine.load_adapter(path, name), timeout_s)

    def adapters(self) -> dict[str, str]:
        """Loaded adapters, name -> key, as of the latest ``call`` (safe from any thread, never blocks)."""
        return self._adapters

    def _apply(self, command: _Add | _Abort | _Call) -> None:
        if isinstance(command, _Abort):
            self.engine.abort(command.request_id)
            return
        if isinstance(command, _Call):
            try:
                value, error = command.fn(self.engine), None
            except Exception as exc:  # reported to the caller; the engine is unchanged (see the called method)
                value, error = None, exc
            self._adapters = self.engine.adapters  # before the caller wakes up
            if error is None:
                command.result.set_result(value)
            else:
                command.result.set_exception(error)
            return
        try:
            self.engine.add_request(command.prompt, command.params, command.priority,
                                    command.adapter_id, command.request_id)
        except (ValueError, TypeError) as exc:
            command.sink(exc)
            return
        self._sinks[command.request_id] = command.sink

    def _step(self) -> None:
        try:
            outputs = self.engine.step()
        except Exception as exc:  # a runner failure ends every request in flight, not the thread
            for request_id, sink in list(self._sinks.items()):
                self.engine.abort(request_id)
                sink(exc)
            self._sinks.clear()
            self.engine.step()  # drop the pending abort outputs nobody listens to
            return
        finally:
            self._stats = self.engine.stats()
        for out in outputs:
            sink = self._sinks.get(out.request_id)
            if sink is None:
                continue
            if out.finished:
                del self._sinks[out.request_id]
            if not sink(out):
                self.engine.abort(out.request_id)

    def _stop(self) -> None:
        for request_id in list(self._sinks):
            self.engine.abort(request_id)
        while self.engine.has_unfinished():
            self._step()
        while not self._commands.empty():  # raced with shutdown(): reject, never leave a consumer waiting
            command = self._commands.get_nowait()
            if isinstance(command, _Add):
                command.sink(RuntimeError("AsyncEngine is shut down"))
            elif isinstance(command, _Call):
                command.result.set_exception(RuntimeError("AsyncEngine is shut down"))
