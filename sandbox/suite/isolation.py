"""One command over read-only host folders under bubblewrap: the sandbox of a repository's test suite.

Chain (each step ``exec``s the next; the parent holds one pid): sh (join the run's memory + pids cgroups)
-> prlimit (open files, core, file size) -> bwrap (as root: namespaces and mounts) -> setpriv (a per-run
uid, no groups, no capabilities, no_new_privs) -> the command.

NOTE: unlike the snippet backend (sandbox/bwrap.py), bubblewrap itself runs as root and without a user
namespace here, because it must bind folders below ``/root`` (mode 0700: the interpreters, the virtual
environments) that an unprivileged uid cannot traverse; bubblewrap resolves ``--ro-bind-fd`` sources by
path, so passing descriptors does not help. The command still runs as an unprivileged host uid with every
capability dropped and ``no_new_privs``, so it can read only world-readable files of the folders it is shown.

Isolation: pid, net (loopback only), ipc, uts, cgroup and mount namespaces unshared; ``/`` is an empty tmpfs
remounted read-only; the host's ``/usr`` and each listed folder are bound read-only at their own paths;
replaced files are read-only copies bound over the originals; ``/tmp`` is a size-capped tmpfs; one
writable output folder (``OUT_DIR``) whose files come back in the result; the environment is cleared.
The parent owns the wall clock and kills the whole cgroup; nothing the command prints decides its status.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from sandbox.bwrap import JOIN_CGROUPS, UidPool, available
from sandbox.cgroup import CgroupParents, RunCgroup
from sandbox.process_group import kill_process_group
from sandbox.supervisor import Capture, Pump, StopReason, Stream
from sandbox.types import Limits, RunStatus

NAME = "bwrap-tree"
OUT_DIR = "/codeloop-out"
"""The one writable folder inside the sandbox whose files come back in ``TreeResult.outputs``."""
MAX_OUTPUT_FILE_BYTES = 256 * 2**20
DEFAULT_PATH = "/usr/local/bin:/usr/bin:/bin"
_UIDS = UidPool(57000, 4000)  # NOTE: a range apart from the snippet backend's, so the two never share a uid


@dataclass(frozen=True)
class TreeCommand:
    """What to run and what it may see."""

    argv: tuple[str, ...]
    cwd: str
    read_only: tuple[str, ...] = ()
    """Host folders (or files) shown read-only at their own paths."""
    files: Mapping[str, str] = field(default_factory=dict)
    """Absolute path -> text: read-only copies bound over what ``read_only`` shows (a candidate edit)."""
    env: Mapping[str, str] = field(default_factory=dict)
    """The whole environment of the command (PATH defaults to DEFAULT_PATH, HOME to /tmp)."""
    limits: Limits = field(default_factory=Limits)


@dataclass
class TreeResult:
    """How the command ended. ``status``: PASSED (exit 0), FAILED (another exit code), TIMEOUT, MEMORY,
    KILLED (a signal or too much output) or SANDBOX_ERROR (the sandbox could not run it)."""

    status: RunStatus
    exit_code: int | None = None
    stdout: str = ""
    stderr: str = ""
    duration_s: float = 0.0
    message: str = ""
    outputs: dict[str, bytes] = field(default_factory=dict)
    """Files the command left in OUT_DIR (name -> content; files past MAX_OUTPUT_FILE_BYTES are left out)."""


def run_tree(cmd: TreeCommand) -> TreeResult:
    """Run ``cmd`` in the sandbox. Never raises for a bad run: the status and message say what happened."""
    problem = available()
    if problem:
        return TreeResult(RunStatus.SANDBOX_ERROR, message=f"{NAME}: {problem}")
    missing = [p for p in (*cmd.read_only, cmd.cwd) if not os.path.exists(p)]
    if missing:
        return TreeResult(RunStatus.SANDBOX_ERROR, message=f"{NAME}: no such folder: {missing[0]}")
    uid = _UIDS.acquire()
    cgroup = None
    scratch = Path(tempfile.mkdtemp(prefix="codeloop-tree-"))
    try:
        out = scratch / "out"
        out.mkdir()
        os.chown(out, uid, uid)
        copies = _write_copies(scratch, cmd.files)
        cgroup = RunCgroup(CgroupParents.discover(), cmd.limits.memory_mb * 2**20, cmd.limits.pids, cmd.limits.cpus)
        result = _execute(_argv(cmd, uid, cgroup, str(out), copies), cmd.limits, cgroup)
        result.outputs = _collect(out)
        return result
    except Exception as exc:  # noqa: BLE001 - the caller gets a result, not an exception
        return TreeResult(RunStatus.SANDBOX_ERROR, message=f"{NAME}: {type(exc).__name__}: {exc}")
    finally:
        if cgroup is not None:
            cgroup.destroy(then=lambda: _UIDS.release(uid))
        else:
            _UIDS.release(uid)
        shutil.rmtree(scratch, ignore_errors=True)


def _write_copies(scratch: Path, files: Mapping[str, str]) -> dict[str, str]:
    copies = {}
    for i, (path, text) in enumerate(files.items()):
        if not os.path.isabs(path):
            raise ValueError(f"replaced file path must be absolute: {path!r}")
        copy = scratch / f"file-{i}"
        copy.write_text(text, encoding="utf-8")
        copy.chmod(0o644)
        copies[path] = str(copy)
    return copies


def _argv(cmd: TreeCommand, uid: int, cgroup: RunCgroup, out: str, copies: dict[str, str]) -> list[str]:
    tools = {t: shutil.which(t) or t for t in ("sh", "prlimit", "bwrap")}
    limits = cmd.limits
    rlimits = ["--nofile=4096:4096", "--core=0:0", f"--fsize={limits.tmpfs_mb * 2**20}"]
    if cgroup.pids is None:
        rlimits.append(f"--nproc={limits.pids}:{limits.pids}")
    if cgroup.memory is None:
        rlimits.append(f"--as={limits.memory_mb * 2**20}")
    env = {"PATH": DEFAULT_PATH, "HOME": "/tmp", "LANG": "C.UTF-8", **cmd.env}
    return [
        tools["sh"], "-c", JOIN_CGROUPS, "sh", " ".join(cgroup.procs_files),
        tools["prlimit"], *rlimits, "--",
        tools["bwrap"], *bwrap_args(cmd, out, copies, env),
        "/usr/bin/setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--inh-caps=-all",
        "--bounding-set=-all", "--no-new-privs", "--", *cmd.argv,
    ]


def bwrap_args(cmd: TreeCommand, out: str, copies: dict[str, str], env: Mapping[str, str]) -> list[str]:
    """bubblewrap's options: namespaces, the read-only tree, the copies, /tmp, OUT_DIR, environment."""
    args = ["--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts", "--unshare-cgroup",
            "--die-with-parent", "--new-session", "--ro-bind", "/usr", "/usr"]
    for d in ("bin", "lib", "lib64", "sbin"):
        args += ["--symlink", f"usr/{d}", f"/{d}"]
    size = str(cmd.limits.tmpfs_mb * 2**20)
    args += ["--perms", "1777", "--size", size, "--tmpfs", "/tmp"]  # NOTE: before the binds: some live in /tmp
    shown = [p for p in cmd.read_only if not p.startswith("/usr/")]
    for d in sorted({str(a) for p in (*shown, *copies) for a in Path(p).parents if str(a) not in ("/", "/tmp")},
                    key=len):
        args += ["--perms", "0755", "--dir", d]  # NOTE: bubblewrap would create missing parents as 0700
    for p in shown:
        args += ["--ro-bind", p, p]
    for path, copy in copies.items():
        args += ["--ro-bind", copy, path]
    args += ["--bind", out, OUT_DIR,
             "--proc", "/proc", "--dev", "/dev", "--remount-ro", "/", "--chdir", cmd.cwd,
             "--hostname", "sandbox", "--clearenv"]
    for key, value in env.items():
        args += ["--setenv", key, value]
    return args


def _execute(argv: list[str], limits: Limits, cgroup: RunCgroup) -> TreeResult:
    started = time.monotonic()
    out, err = Capture(limits.max_output_bytes), Capture(limits.max_output_bytes)
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True, env={}, close_fds=True, cwd="/")
    assert proc.stdout and proc.stderr
    reason = StopReason.TIMEOUT
    try:
        pump = Pump(None, b"", lambda: None, [Stream(proc.stdout.fileno(), out.add),
                                              Stream(proc.stderr.fileno(), err.add)],
                    alive=lambda: proc.poll() is None)
        reason = pump.run(started + limits.timeout_s, limits.kill_output_bytes, lambda: out.total + err.total)
        if reason is StopReason.EOF:
            try:
                proc.wait(timeout=max(0.0, started + limits.timeout_s - time.monotonic()))
            except subprocess.TimeoutExpired:
                reason = StopReason.TIMEOUT
    finally:
        kill_process_group(proc)
        proc.wait()
        proc.stdout.close()
        proc.stderr.close()
    code = proc.returncode
    exit_code = 128 - code if code is not None and code < 0 else code
    result = TreeResult(RunStatus.PASSED, exit_code, out.text(), err.text(), time.monotonic() - started)
    result.status, result.message = _status(reason, exit_code, cgroup.oom_killed(), result.stderr, limits)
    return result


def _status(reason: StopReason, exit_code: int | None, oom: bool | None, stderr: str,
            limits: Limits) -> tuple[RunStatus, str]:
    if reason is StopReason.TIMEOUT:
        return RunStatus.TIMEOUT, f"ran past {limits.timeout_s:g} s"
    if reason is StopReason.OUTPUT:
        return RunStatus.KILLED, f"more than {limits.kill_output_bytes} bytes of output"
    if oom:
        return RunStatus.MEMORY, f"past the memory limit of {limits.memory_mb} MB"
    if exit_code == 0:
        return RunStatus.PASSED, ""
    if exit_code is not None and exit_code > 128:
        return RunStatus.KILLED, f"killed by signal {exit_code - 128}"
    if stderr.startswith("bwrap:"):
        return RunStatus.SANDBOX_ERROR, stderr.splitlines()[0]
    return RunStatus.FAILED, f"exit code {exit_code}"


def _collect(out: Path) -> dict[str, bytes]:
    found = {}
    for path in sorted(out.iterdir()):
        if path.is_file() and not path.is_symlink() and path.stat().st_size <= MAX_OUTPUT_FILE_BYTES:
            found[path.name] = path.read_bytes()
    return found
