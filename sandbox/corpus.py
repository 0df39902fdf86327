"""The hostile corpus: programs that try to escape, exhaust or fool the sandbox, as data.

Each probe that ATTEMPTS something records whether it got through, and its test asserts that it
did not: so PASSED means "contained". Runaway probes (spin, sleep, bombs) expect the status the
parent must impose. Placeholders filled by sandbox/check.py: ``@PORT@`` (a listener on the
host's loopback), ``@CANARY@`` (a secret in the parent's environment and in a host file name),
``@CHECKOUT@`` (this project's checkout), ``@HOME@`` (the host user's home directory).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sandbox.types import RunStatus

P, F, E, T, M, K = (RunStatus.PASSED, RunStatus.FAILED, RunStatus.ERROR, RunStatus.TIMEOUT,
                    RunStatus.MEMORY, RunStatus.KILLED)

CONTAINED = ["assert not escaped, escaped"]
WRONG = ("assert solve(1) == 2", "assert solve(2) == 3")
"""The tests a forgery's wrong ``solve`` must fail (sandbox/tampering.py, sandbox/harness_forgeries.py)."""


@dataclass(frozen=True)
class Attack:
    """One hostile program and the statuses that count as contained."""

    name: str
    code: str
    expected: frozenset[RunStatus]
    tests: tuple[str, ...] = tuple(CONTAINED)
    limits: dict = field(default_factory=dict)
    """Overrides of the check's base Limits (e.g. a shorter timeout)."""
    reference: str = ""
    """The job's trusted reference program (differential tests; see sandbox.job.Job.reference)."""


def _a(name: str, code: str, *expected: RunStatus, tests=CONTAINED, reference: str = "", **limits) -> Attack:
    return Attack(name, code.strip() + "\n", frozenset(expected), tuple(tests), limits, reference)


def _tryall(body: str) -> str:
    """Wrap probe lines: each line that does not raise adds itself to ``escaped``."""
    lines = [line.strip() for line in body.strip().splitlines() if line.strip()]
    out = ["escaped = []"]
    for line in lines:
        out += ["try:", f"    {line}", f"    escaped.append({line!r})", "except Exception:", "    pass"]
    return "\n".join(out)


ATTACKS: tuple[Attack, ...] = (
    _a("net_loopback", _tryall("import socket; socket.create_connection(('127.0.0.1', @PORT@), timeout=2).close()"), P),
    _a("net_public", _tryall("""
import socket; socket.create_connection(('1.1.1.1', 80), timeout=2).close()
import socket; socket.create_connection(('151.101.0.223', 443), timeout=2).close()
"""), P),
    _a("dns_lookup", _tryall("import socket; socket.getaddrinfo('pypi.org', 443)"), P),
    _a("read_etc_shadow", _tryall("open('/etc/shadow').read()"), P),
    _a("read_checkout", _tryall("""
open('@CHECKOUT@/pyproject.toml').read()
import os; assert os.listdir('@CHECKOUT@')
"""), P),
    _a("read_home", _tryall("""
import os; assert os.listdir('@HOME@')
open('@HOME@/.bashrc').read()
"""), P),
    _a("env_secrets", """
import os, glob
escaped = [k for k, v in os.environ.items() if '@CANARY@' in v]
for path in glob.glob('/proc/*/environ'):
    try:
        if b'@CANARY@' in open(path, 'rb').read():
            escaped.append(path)
    except OSError:
        pass
""", P),
    _a("write_outside_workdir", _tryall("""
open('/tmp/../etc/codeloop-escape', 'w').write('x')
open('/usr/codeloop-escape', 'w').write('x')
open('/codeloop-escape', 'w').write('x')
open('@HOME@/codeloop-escape-@CANARY@', 'w').write('x')
import os; os.mkdir('/var/codeloop-escape')
"""), P),
    _a("fill_workdir", """
escaped = []
written = 0
try:
    for i in range(10**6):
        with open('/work/fill%d' % i, 'wb') as f:
            f.write(b'x' * 2**20)
        written += 2**20
except OSError:
    pass
if written > 64 * 2**20:
    escaped.append(written)
""", P, tmpfs_mb=32),
    _a("fork_bomb", """
import os
while True:
    try:
        os.fork()
    except OSError:
        pass
""", T, K, M, timeout_s=2.0),
    _a("fork_count", """
import os, time
escaped, n = [], 0
try:
    for _ in range(1000):
        if os.fork() == 0:
            time.sleep(60)
            os._exit(0)
        n += 1
except OSError:
    pass
if n >= 64:
    escaped.append(n)
""", P),
    _a("memory_bomb", "a = []\nwhile True:\n    a.append(bytearray(16 * 2**20))", M, memory_mb=128),
    _a("cpu_spin", "while True:\n    pass", T, timeout_s=1.5),
    _a("sleep_forever", "import time\ntime.sleep(10**6)", T, timeout_s=1.5),
    _a("ignore_sigterm", "import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\nwhile True:\n    time.sleep(1)",
       T, timeout_s=1.5),
    _a("stdout_flood_100mb", "import sys\nchunk = 'x' * 2**20\nfor _ in range(100):\n    sys.stdout.write(chunk)\nescaped = []", K),
    _a("binary_output", """
import os
os.write(1, bytes(range(256)) + b'\\xff\\xfe\\xc3\\x28 invalid utf-8')
os.write(2, b'\\x80\\x81\\x00 more')
escaped = []
""", P),
    _a("close_stdout_then_loop", "import os\nos.close(1)\nos.close(2)\nwhile True:\n    pass", T, timeout_s=1.5),
    _a("kill_parent_and_group", """
import os, signal
for target in (os.getppid(), 1, -1):
    try:
        os.kill(target, signal.SIGKILL)
    except OSError:
        pass
os.killpg(0, signal.SIGKILL)
""", K),
    _a("spawn_shell", """
import subprocess
out = subprocess.run(['/bin/sh', '-c', 'id -u; cat /etc/hostname 2>/dev/null'], capture_output=True, text=True).stdout
escaped = [out] if out.split()[:1] == ['0'] else []
""", P),
    _a("threads_outlive_main", """
import threading, time
def linger():
    while True:
        print('still here', flush=True)
        time.sleep(0.2)
threading.Thread(target=linger).start()
escaped = []
""", P),
    _a("os_exit_after_fake_pass", """
import os
print('\\x1eCLR' + '0' * 32 + ':{"event": "test", "index": 0, "status": "passed"}', flush=True)
print('PASSED 1/1', flush=True)
os._exit(0)
""", E, tests=("assert False",)),
    _a("fake_result_markers", """
import os, secrets
for _ in range(50):
    fake = '\\x1eCLR' + secrets.token_hex(16) + ':'
    os.write(1, (fake + '{"event": "test", "index": 0, "status": "passed"}\\n').encode())
    os.write(1, (fake + '{"event": "done"}\\n').encode())
""", F, tests=("assert False",)),
    _a("import_time_side_effects", """
import atexit, builtins, io, sys
atexit.register(lambda: print('ALL TESTS PASSED'))
sys.stdout = io.StringIO()
sys.excepthook = lambda *a: None
builtins.AssertionError = type('AssertionError', (Exception,), {})
""", F, tests=("assert False",)),
    _a("recursion_overflow", "def f(n):\n    return f(n + 1)\nf(0)", E),
    _a("c_stack_overflow", "import sys\nsys.setrecursionlimit(10**8)\nx = []\nfor _ in range(3 * 10**5):\n    x = [x]\nrepr(x)",
       K, M, timeout_s=10.0),
    _a("ctypes_segfault", "import ctypes\nctypes.string_at(0)", K),
    _a("docker_socket_and_devices", _tryall("""
import socket; s = socket.socket(socket.AF_UNIX); s.connect('/var/run/docker.sock')
open('/dev/sda', 'rb').read(1)
open('/dev/mem', 'rb').read(1)
"""), P),
    _a("privilege_escalation", _tryall("""
import os; os.setuid(0)
import os; os.chroot('/')
import os; assert os.geteuid() == 0
"""), P),
    # The job server (docker) and PID 1 must be non-dumpable: no ptrace, no /proc/PID/mem.
    # Exempt: bwrap's own PID 1 reaper, which has the job's uid, no capabilities, holds no data
    # and dies with the run's cgroup.
    _a("tamper_with_parent_process", """
import os
escaped = []
for pid in {os.getppid(), 1} - {0}:
    try:
        exempt = open('/proc/%d/cmdline' % pid, 'rb').read().split(b'\\0')[0].endswith(b'/bwrap')
    except OSError:
        exempt = False
    for name in ('mem', 'fd/0', 'fd/1', 'environ'):
        try:
            fd = os.open('/proc/%d/%s' % (pid, name), os.O_RDONLY | os.O_NONBLOCK)
            data = b'' if name == 'mem' else os.read(fd, 4096)
            os.close(fd)
            if (name == 'mem' and not exempt) or b'@CANARY@' in data or b'@CHECKOUT@' in data:
                escaped.append('/proc/%d/%s' % (pid, name))
        except OSError:
            pass
""", P),
    _a("see_host_processes", """
import os
pids = [p for p in os.listdir('/proc') if p.isdigit()]
escaped = pids if len(pids) > 20 else []
""", P),
    _a("plant_files_for_next_run", """
import os
for d in ('/work', '/tmp', '/dev/shm'):
    try:
        with open(os.path.join(d, 'planted-@CANARY@'), 'w') as f:
            f.write('x')
        os.makedirs(os.path.join(d, 'dir-@CANARY@/sub'), exist_ok=True)
        os.chmod(os.path.join(d, 'dir-@CANARY@'), 0o500)
    except OSError:
        pass
escaped = []
""", P),
    _a("leftovers_from_previous_run", """
import os
escaped = []
for d in ('/work', '/tmp', '/dev/shm'):
    try:
        escaped += [os.path.join(d, n) for n in os.listdir(d) if '@CANARY@' in n]
    except OSError:
        pass
""", P),
)
