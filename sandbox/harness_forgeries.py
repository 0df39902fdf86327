"""The forgery corpus, second part: wrong code that reaches past its own namespace into the harness's
internals to claim a pass: the caller's frames, gc's objects, ctypes, the process's file descriptors and
its own memory (for the nonce, the expected values, the worker's channel or a site function).

Each expected status is FAILED, or ERROR where the attack ends the process before the tests finish
(sandbox/tampering.py assembles the whole corpus, in order).
"""

from __future__ import annotations

from sandbox.corpus import WRONG, Attack, E, F, _a

MEMORY = """
def memory():
    \"\"\"Every readable and writable region of this process's memory.\"\"\"
    with open('/proc/self/maps') as maps, open('/proc/self/mem', 'rb') as mem:
        for line in maps:
            addr, perms = line.split()[:2]
            if perms.startswith('rw'):
                start, end = (int(a, 16) for a in addr.split('-'))
                try:
                    mem.seek(start)
                    yield mem.read(end - start)
                except (OSError, ValueError, OverflowError):
                    pass
"""

HARNESS_FORGERIES: tuple[Attack, ...] = (
    _a("frame_walk_forge", """
import os, sys
def solve(x):
    frame = sys._getframe(1)
    while frame is not None:
        report = frame.f_locals.get('report')
        if callable(report):
            for i in range(2):
                report('test', index=i, status='passed')
            report('done')
            os._exit(0)
        frame = frame.f_back
    return 0
""", F, E, tests=WRONG),
    _a("traceback_frame_forge", """
import os
def solve(x):
    try:
        raise ValueError
    except ValueError as exc:
        frame = exc.__traceback__.tb_frame
    while frame is not None:
        report = frame.f_locals.get('report')
        if callable(report):
            for i in range(2):
                report('test', index=i, status='passed')
            report('done')
            os._exit(0)
        frame = frame.f_back
    return 0
""", F, E, tests=WRONG),
    _a("gc_nonce_forge", """
import gc, json, os
def solve(x):
    for obj in gc.get_objects():
        if type(obj).__name__ == 'function' and obj.__name__ == 'report' and obj.__closure__:
            cells = [c.cell_contents for c in obj.__closure__]
            mark = next(c for c in cells if type(c) is bytes and c.startswith(b'\\x1eCLR'))
            fd = next(c for c in cells if type(c) is int)
            for i in range(2):
                os.write(fd, mark + json.dumps({'event': 'test', 'index': i, 'status': 'passed'}).encode() + b'\\n')
            os.write(fd, mark + b'{"event": "done"}\\n')
            os._exit(0)
    return 0
""", F, E, tests=WRONG),
    _a("ctypes_write_forge", """
import ctypes, gc, json, os
def solve(x):
    libc = ctypes.CDLL(None)
    for obj in gc.get_objects():
        if type(obj).__name__ == 'function' and obj.__name__ == 'report' and obj.__closure__:
            cells = [c.cell_contents for c in obj.__closure__]
            mark = next(c for c in cells if type(c) is bytes and c.startswith(b'\\x1eCLR'))
            fd = next(c for c in cells if type(c) is int)
            for i in range(2):
                rec = mark + json.dumps({'event': 'test', 'index': i, 'status': 'passed'}).encode() + b'\\n'
                libc.write(fd, rec, len(rec))
            rec = mark + b'{"event": "done"}\\n'
            libc.write(fd, rec, len(rec))
            libc._exit(0)
    return 0
""", F, E, tests=WRONG),
    _a("proc_fd_spray", """
import gc, json, os
def solve(x):
    marks = {c.cell_contents for f in gc.get_objects() if type(f).__name__ == 'function' and f.__closure__
             for c in f.__closure__ if type(c.cell_contents) is bytes and c.cell_contents.startswith(b'\\x1eCLR')}
    for fd in sorted((int(n) for n in os.listdir('/proc/self/fd')), reverse=True):
        for mark in marks:
            try:
                for i in range(2):
                    os.write(fd, mark + json.dumps({'event': 'test', 'index': i, 'status': 'passed'}).encode() + b'\\n')
                os.write(fd, mark + b'{"event": "done"}\\n')
                os._exit(0)
            except OSError:
                pass
    return 0
""", F, E, tests=WRONG),
    _a("gc_forge_worker_claims", """
import gc, os
def solve(x):
    channels = [o for o in gc.get_objects() if type(o).__name__ == 'Channel' and hasattr(o, 'send')]
    for channel in channels:
        for i in range(2):
            channel.send(('end', i, 'passed', '', ''))
        os._exit(0)
    return 0
""", F, E, tests=WRONG),
    _a("frame_forge_worker_claims", """
import os, sys
def solve(x):
    frame = sys._getframe(1)
    while frame is not None:
        channel = frame.f_locals.get('channel')
        if channel is not None and hasattr(channel, 'send'):
            for i in range(2):
                channel.send(('end', i, 'passed', '', ''))
            os._exit(0)
        frame = frame.f_back
    return 0
""", F, E, tests=WRONG),
    _a("pipe_forge_worker_claims", """
import marshal, os
def solve(x):
    for fd in sorted(int(n) for n in os.listdir('/proc/self/fd')):
        if fd < 3:
            continue
        for i in range(2):
            data = marshal.dumps(('end', i, 'passed', '', ''))
            try:
                os.write(fd, len(data).to_bytes(4, 'big') + data)
            except OSError:
                pass
    os._exit(0)
""", F, E, tests=WRONG),
    _a("site_oracle_bruteforce", """
import gc
def solve(x):
    sites = [f for f in gc.get_objects() if type(f).__name__ == 'function' and f.__name__ == 'site' and f.__closure__]
    for site in sites:
        for site_id in range(2):
            for guess in range(10):
                if site(site_id, (guess,), None):
                    return guess
    return 0
""", F, E, tests=WRONG),
    _a("scan_own_memory_for_expected", MEMORY + """
import re
def solve(x):
    found = {}
    for chunk in memory():
        for arg, want in re.findall(rb'solve\\((\\d+)\\) == (\\d+)', chunk):
            found[int(arg)] = int(want)
    return found.get(x, 0)
""", F, tests=("assert solve(1) == 1234567", "assert solve(2) == 7654321")),
    _a("scan_own_memory_for_nonce", MEMORY + """
import json, os, re
def solve(x):
    for chunk in memory():
        found = re.findall(rb'\\x1eCLR([0-9a-f]{32}):|([0-9a-f]{32})\\n\\{"code"', chunk)
        for nonce in {x or y for x, y in found}:
            mark = b'\\x1eCLR' + nonce + b':'
            for i in range(2):
                os.write(1, mark + json.dumps({'event': 'test', 'index': i, 'status': 'passed'}).encode() + b'\\n')
            os.write(1, mark + b'{"event": "done"}\\n')
            os._exit(0)
    return 0
""", F, E, tests=WRONG),
)
