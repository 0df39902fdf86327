"""Parent-side I/O with one untrusted child: feed stdin, drain output, own the wall clock.

One thread, one ``selectors`` loop per run; no reader threads to leak. The loop ends when the
child's output streams close, when the deadline passes, when the output passes the kill limit, or
shortly after the child is known to have exited while something it left behind keeps a stream open.
The caller kills on anything but a clean end: the loop itself never blocks past the deadline.
"""

from __future__ import annotations

import enum
import os
import selectors
import socket
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass

CHUNK = 65536
EXIT_GRACE_S = 0.3


class StopReason(str, enum.Enum):
    EOF = "eof"                # every output stream closed
    TIMEOUT = "timeout"        # the wall clock ran out
    OUTPUT = "output"          # more output than the kill limit
    EXITED = "exited"          # the child exited but its streams stayed open (orphans)


class Capture:
    """The first ``cap`` bytes of a stream, and how many bytes came in total."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.data = bytearray()
        self.total = 0

    def add(self, chunk: bytes) -> None:
        self.total += len(chunk)
        room = self.cap - len(self.data)
        if room > 0:
            self.data += chunk[:room]

    def text(self) -> str:
        text = bytes(self.data).decode("utf-8", errors="replace")
        if self.total > len(self.data):
            text += f"\n[... output truncated: {self.total - len(self.data)} more bytes]"
        return text


@dataclass
class Stream:
    """One readable endpoint and where its bytes go."""

    fd: int
    on_data: Callable[[bytes], None]


class FrameDemux:
    """Splits a stream of 8-byte-header frames (``>BxxxL``: kind, size) by kind. Docker's attach
    stream uses it (1 = stdout, 2 = stderr) and so does our in-container job server."""

    def __init__(self, sinks: dict[int, Callable[[bytes], None]]) -> None:
        self.sinks = sinks
        self.buf = b""

    def feed(self, chunk: bytes) -> None:
        self.buf += chunk
        while len(self.buf) >= 8:
            kind, size = struct.unpack(">BxxxL", self.buf[:8])
            if len(self.buf) < 8 + size:
                return
            sink = self.sinks.get(kind)
            if sink is not None:
                sink(self.buf[8: 8 + size])
            self.buf = self.buf[8 + size:]


class Pump:
    """Moves bytes between the parent and one child until it ends, times out or floods.
    ``finished`` lets a persistent stream (the job server's) end a run without EOF.

    ``writer`` gets ``payload`` then is closed (``close_writer``); ``streams`` are drained into their
    callbacks; ``total_output`` reports bytes seen so far; ``alive`` says whether the child runs.
    """

    def __init__(self, writer_fd: int | None, payload: bytes, close_writer: Callable[[], None],
                 streams: list[Stream], alive: Callable[[], bool],
                 finished: Callable[[], bool] = lambda: False, exit_grace_s: float = EXIT_GRACE_S) -> None:
        self.writer_fd, self.payload, self.close_writer = writer_fd, memoryview(payload), close_writer
        self.streams, self.alive, self.finished = streams, alive, finished
        self.exit_grace_s = exit_grace_s

    def run(self, deadline: float, output_limit: int, total_output: Callable[[], int]) -> StopReason:
        sel = selectors.DefaultSelector()
        try:
            return self._loop(sel, deadline, output_limit, total_output)
        finally:
            sel.close()

    def _loop(self, sel, deadline, output_limit, total_output) -> StopReason:
        events: dict[int, int] = {}
        for s in self.streams:
            os.set_blocking(s.fd, False)
            events[s.fd] = events.get(s.fd, 0) | selectors.EVENT_READ
        if self.writer_fd is not None and len(self.payload):
            os.set_blocking(self.writer_fd, False)
            events[self.writer_fd] = events.get(self.writer_fd, 0) | selectors.EVENT_WRITE
        else:
            self._finish_writing()
        for fd, ev in events.items():
            sel.register(fd, ev)
        readers = {s.fd: s for s in self.streams}
        exited_at: float | None = None
        while readers:
            now = time.monotonic()
            if now >= deadline:
                return StopReason.TIMEOUT
            if exited_at is None and not self.alive():
                exited_at = now
            if exited_at is not None and now - exited_at > self.exit_grace_s:
                return StopReason.EXITED
            for key, mask in sel.select(timeout=min(deadline - now, 0.05)):
                fd = key.fd
                if mask & selectors.EVENT_WRITE and self.writer_fd is not None:
                    self._write(sel, fd, readers)
                if mask & selectors.EVENT_READ and fd in readers:
                    if not self._read(readers[fd]):
                        del readers[fd]
                        self._unregister(sel, fd, selectors.EVENT_READ)
            if total_output() > output_limit:
                return StopReason.OUTPUT
            if self.finished() and self.writer_fd is None:
                return StopReason.EOF
        return StopReason.EOF

    def _write(self, sel, fd, readers) -> None:
        try:
            n = os.write(fd, self.payload[:CHUNK])
            self.payload = self.payload[n:]
        except (BrokenPipeError, ConnectionResetError, OSError):
            self.payload = memoryview(b"")
        if not len(self.payload):
            self._unregister(sel, fd, selectors.EVENT_WRITE)
            self._finish_writing()

    def _finish_writing(self) -> None:
        self.writer_fd = None
        try:
            self.close_writer()
        except OSError:
            pass

    @staticmethod
    def _read(stream: Stream) -> bool:
        try:
            chunk = os.read(stream.fd, CHUNK)
        except BlockingIOError:
            return True
        except OSError:
            return False
        if not chunk:
            return False
        stream.on_data(chunk)
        return True

    @staticmethod
    def _unregister(sel, fd: int, event: int) -> None:
        try:
            key = sel.get_key(fd)
        except KeyError:
            return
        rest = key.events & ~event
        if rest:
            sel.modify(fd, rest)
        else:
            sel.unregister(fd)


def shutdown_write(sock: socket.socket) -> Callable[[], None]:
    return lambda: sock.shutdown(socket.SHUT_WR)
