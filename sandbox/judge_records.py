"""Judge side: the result records the judge writes to the parent, batched, each write atomic on the pipe.

Executed INSIDE the sandbox, in the judge process (stdlib only; part of the harness program, see
harness.py). Every record carries the run's nonce, which the worker never held, so nothing the worker
writes can be taken for one (record format in harness.py's docstring; parent side in sandbox/protocol.py).
"""

import json
import os
import time

MAX_RECORD_BYTES = 4000
"""Below PIPE_BUF (4096), so one os.write of a record is atomic on the parent's pipe."""
FLUSH_S = 0.05


class JudgeRecords:
    """Records queued by ``report`` and written by ``flush`` (records reach the parent in batches: each write
    wakes the parent's side, which costs more than the record on a busy machine)."""

    def __init__(self, nonce):
        self.mark = b"\x1eCLR" + nonce + b":"
        self.records, self.records_since = [], 0.0

    def report(self, event, **fields):
        """Queue a record; a long ``message`` is halved until the record fits one atomic write."""
        fields["event"] = event
        record = self.mark + json.dumps(fields).encode("utf-8") + b"\n"
        while len(record) > MAX_RECORD_BYTES and fields.get("message"):
            fields["message"] = fields["message"][: len(fields["message"]) // 2]
            record = self.mark + json.dumps(fields).encode("utf-8") + b"\n"
        if not self.records:
            self.records_since = time.monotonic()
        self.records.append(record)

    def flush(self):
        """Write the queued records, whole records of at most MAX_RECORD_BYTES per write (atomic on a pipe)."""
        chunk = b""
        for record in self.records + [b""]:
            if chunk and (not record or len(chunk) + len(record) > MAX_RECORD_BYTES):
                os.write(1, chunk)
                chunk = b""
            chunk += record
        self.records = []

    def flush_if_due(self):
        """Called while the judge waits for the worker: records wait at most FLUSH_S (a run killed for
        its time keeps the results of the tests before)."""
        if self.records and time.monotonic() - self.records_since > FLUSH_S:
            self.flush()
