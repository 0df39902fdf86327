"""`codeloop doctor`: is this machine set up to run codeloop? One check per part, each ok / warn / error.

An *error* is something codeloop cannot work without (Python too old, torch missing, a pulled model that
fails its checksum, a server asked for by URL that does not answer); a *warn* costs a feature or speed
(no sandbox backend: no checked suggestions or evals; a CUDA torch on a CPU machine); *info* only reports.
Every check is read-only: nothing is started, pulled, built or deleted.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import urllib.request
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

OK, INFO, WARN, ERROR = "ok", "info", "warn", "error"
MIN_PYTHON = (3, 10)
CPU_FLAGS = ("avx2", "fma", "f16c", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_int8", "avx_vnni")
"""The CPU features our kernels and llama.cpp's care about."""
EDITOR_DIR = Path(os.environ.get("CODELOOP_EDITORS", Path.home() / ".cache" / "codeloop" / "editors"))


@dataclass(frozen=True)
class Check:
    """One line of the report; ``fix`` says what to do when ``status`` is warn or error."""

    name: str
    status: str
    detail: str
    fix: str = ""


def python_check(version_info: tuple[int, ...] = tuple(sys.version_info), in_venv: bool | None = None) -> Check:
    """The interpreter: new enough, and inside a virtual environment (pipx / uv tool make one), because the
    top-level package names (inference, lsp, evals, ...) are generic."""
    version = ".".join(map(str, version_info[:3]))
    in_venv = sys.prefix != sys.base_prefix if in_venv is None else in_venv
    if tuple(version_info[:2]) < MIN_PYTHON:
        return Check("python", ERROR, f"{version} at {sys.executable}", "codeloop needs Python >= 3.10")
    if not in_venv:
        return Check("python", WARN, f"{version} at {sys.executable}, not in a virtual environment",
                     "install with pipx or uv tool (README: Install): codeloop's package names are generic")
    return Check("python", OK, f"{version} at {sys.executable} (virtual environment {sys.prefix})")


def torch_check(has_nvidia: bool | None = None) -> Check:
    try:
        import torch
    except ImportError as exc:
        return Check("torch", ERROR, f"not importable: {exc}", "install codeloop again (see README: Install)")
    has_nvidia = shutil.which("nvidia-smi") is not None if has_nvidia is None else has_nvidia
    build = f"CUDA {torch.version.cuda}" if torch.version.cuda else "CPU"
    detail = f"{torch.__version__} ({build} build), {torch.get_num_threads()} threads"
    if torch.version.cuda and not has_nvidia:
        return Check("torch", WARN, detail + " on a machine without an NVIDIA GPU",
                     "the CUDA build costs ~3 GB for nothing here: pip install --force-reinstall torch "
                     "--index-url https://download.pytorch.org/whl/cpu (README: Install)")
    if has_nvidia and not torch.cuda.is_available():
        return Check("torch", WARN, detail + "; an NVIDIA GPU is present but torch cannot use it",
                     "install a CUDA build of torch to use the GPU")
    return Check("torch", OK, detail)


def cpu_check(cpuinfo: str | None = None) -> Check:
    from inference.cpu_info import cpu_flags, cpu_model

    model, flags = cpu_model(cpuinfo), cpu_flags(cpuinfo)
    present = [f for f in CPU_FLAGS if f in flags]
    detail = f"{model}, {os.cpu_count()} cores; {' '.join(present) or 'none of ' + ' '.join(CPU_FLAGS)}"
    if cpuinfo is None:  # this machine: what dtype "auto" runs the model in here
        from inference.compute_dtype import resolve_dtype, resolve_weight_quant

        dtype = resolve_dtype("auto")
        detail += f"; dtype auto: {dtype}" + ("" if dtype == "bfloat16" else " (no hardware bf16 on this CPU)")
        if resolve_weight_quant("none", "auto") == "fp16":
            detail += ", linear weights stored in fp16"
    if flags and "avx2" not in flags:
        return Check("cpu", WARN, detail, "without AVX2 the CPU engine is several times slower")
    return Check("cpu", OK if flags else INFO, detail)


def kernels_check() -> Check:
    """Our C++ CPU kernels (inference/kernels/): can they run here, and is this machine's library built yet."""
    from inference import kernels
    from inference.cpu_info import cpu_flags

    if kernels.switched_off():
        return Check("kernels", INFO, f"off ({kernels.OFF_ENV}): torch's kernels")
    missing = kernels.missing_flags()
    if missing:
        return Check("kernels", INFO, f"this CPU lacks {' '.join(sorted(missing))} (and AVX-512 VNNI): torch's "
                     "kernels (hybrid_int8x8 and int4x8 run as dense weights)")
    try:
        path = kernels.library_path()
    except OSError as exc:
        return Check("kernels", WARN, str(exc), "install a C++ compiler (g++) for our int8/int4 kernels")
    isa = kernels.isa()
    attention = "with" if kernels.ATTENTION_FLAGS <= cpu_flags() else "without (no avx512_bf16)"
    if path.exists():
        return Check("kernels", OK, f"built for {isa}, {attention} prompt attention: {path}")
    return Check("kernels", INFO, f"not built yet for {isa}, {attention} prompt attention: built on first use "
                 f"(~15 s) as {path}")


def sandbox_check() -> Check:
    """bwrap and Docker, read-only (no orphan cleanup, no image build)."""
    from sandbox.bwrap import available as bwrap_problem
    from sandbox.image import DEFAULT_IMAGE

    found, missing = [], []
    problem = bwrap_problem()
    (missing if problem else found).append(f"bwrap ({problem})" if problem else "bwrap")
    docker = _docker_state(DEFAULT_IMAGE)
    (found if docker == "ready" else missing).append("docker" if docker == "ready" else f"docker ({docker})")
    detail = f"available: {', '.join(found) or 'none'}" + (f"; not: {'; '.join(missing)}" if missing else "")
    if not found:
        return Check("sandbox", WARN, detail, "checked suggestions and evals need one: scripts/sandbox_setup.sh "
                     "--bwrap-only (bubblewrap) or scripts/sandbox_setup.sh (Docker + image)")
    return Check("sandbox", OK, detail)


def _docker_state(image: str) -> str:
    if not shutil.which("docker") and not Path("/var/run/docker.sock").exists():
        return "not installed"
    from sandbox.pool import client, image_present

    c = client()
    if c is None:
        return "no daemon answers"
    return "ready" if image_present(c, image) else f"image {image} missing: codeloop sandbox build-image"


def models_check(home: str | None = None) -> Check:
    """Pulled catalog models; a pulled model is verified against the checksums in its manifest."""
    from inference.catalog import is_pulled, model_dir
    from inference.model_specs import CATALOG, DEFAULT_MODEL

    pulled = [name for name in CATALOG if is_pulled(name, home)]
    broken = {name: problems for name in pulled if (problems := _integrity(model_dir(name, home)))}
    if broken:
        name, problems = next(iter(broken.items()))
        return Check("models", ERROR, f"{name}: {problems[0]}", f"codeloop model pull {name} --force")
    if DEFAULT_MODEL not in pulled:
        return Check("models", WARN, f"pulled: {', '.join(pulled) or 'none'}",
                     f"codeloop model pull {DEFAULT_MODEL} (the default model, ~0.5 GB; or make demo)")
    return Check("models", OK, f"pulled and verified: {', '.join(pulled)}")


def _integrity(folder: Path) -> list[str]:
    """The remembered checksum verdict when no file changed since, else a full check (seconds per GB)."""
    from inference.model_manifest import check_integrity, known_problems

    known = known_problems(folder)
    return known if known is not None else check_integrity(folder)


def editors_check() -> Check:
    found = []
    for name in ("code", "nvim", "vim", "emacs"):
        version = _first_line([name, "--version"])
        if version:
            found.append(f"{name} ({version})")
    venv_nvim = Path(sys.executable).parent / "nvim"
    if venv_nvim.exists() and not shutil.which("nvim"):
        found.append("nvim (this environment's)")
    if (EDITOR_DIR / "code-server" / "node_modules" / ".bin" / "code-server").exists():
        found.append("code-server (scripts/editors_setup.sh)")
    detail = ", ".join(found) or "none found on PATH"
    return Check("editors", OK if found else INFO, detail, "" if found else "see editors/README.md")


def _first_line(cmd: list[str]) -> str:
    """The first line ``cmd`` prints ("" when the program is not on PATH)."""
    if not shutil.which(cmd[0]):
        return ""
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return "installed"
    return (out.splitlines() or ["installed"])[0][:60]


def server_check(url: str | None, api_key: str | None, model: str) -> Check:
    """``url`` when given (an error if it does not answer), else the shared server of ``model`` if one runs."""
    if url is None:
        from inference.server.launcher import read_server

        url = read_server(model, api_key=api_key)
        if url is None:
            return Check("server", INFO, f"no shared server running for {model} (codeloop lsp --shared starts one)")
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    try:
        health = _get_json(f"{url.rstrip('/')}/health", headers)
        models = _get_json(f"{url.rstrip('/')}/v1/models", headers)
    except (OSError, ValueError) as exc:
        return Check("server", ERROR, f"{url} does not answer: {exc}",
                     "start it with codeloop serve, or check the URL and --api-key / $CODELOOP_API_KEY")
    card = (models.get("data") or [{}])[0]
    detail = (f"{url}: {health.get('status')}, model {card.get('id')} ({card.get('owned_by')}, "
              f"context {card.get('max_model_len')} tokens)")
    return Check("server", OK if health.get("status") == "ok" else WARN, detail)


def _get_json(url: str, headers: dict[str, str]) -> dict:
    request = urllib.request.Request(url, headers=headers)
    with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310 - the user's own server
        body = json.loads(response.read())
    return body if isinstance(body, dict) else {}


def run_checks(url: str | None = None, api_key: str | None = None, model: str | None = None) -> list[Check]:
    """Every check, in report order; a check that crashes is reported as an error, never raised."""
    from inference.model_specs import DEFAULT_MODEL

    checks: list[tuple[str, Callable[[], Check]]] = [
        ("python", python_check), ("torch", torch_check), ("cpu", cpu_check), ("kernels", kernels_check),
        ("sandbox", sandbox_check),
        ("models", models_check), ("editors", editors_check),
        ("server", lambda: server_check(url, api_key, model or DEFAULT_MODEL)),
    ]
    out = []
    for name, check in checks:
        try:
            out.append(check())
        except Exception as exc:  # noqa: BLE001 - a broken check is a finding, not a crash
            out.append(Check(name, ERROR, f"the check itself failed: {type(exc).__name__}: {exc}"))
    return out


def as_json(checks: list[Check]) -> dict:
    return {"ok": not any(c.status == ERROR for c in checks), "checks": [asdict(c) for c in checks]}
