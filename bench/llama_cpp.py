"""llama.cpp's own binaries as the benchmark peer: ``llama-bench`` (prefill / decode tok/s) and ``llama-server``.

Built by ``scripts/build_llama_server.sh`` (``make bench-peer``) into ``<cache root>/llama.cpp/bin``; they read
the GGUF that ``codeloop model pull`` assembled (``model.gguf`` in the model's folder), i.e. the same Q4_K_M
weights our loader dequantizes. Missing binaries or GGUF: the peer is skipped with the reason in the JSON.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bench.output import spread

BUILD_HINT = "run `make bench-peer` (scripts/build_llama_server.sh) to build llama-server and llama-bench"


def bin_dir() -> Path:
    from inference.catalog import cache_root

    return cache_root() / "llama.cpp" / "bin"


def find_gguf(model_dir: Path) -> Path | None:
    """The GGUF beside an HF folder the catalog converted (or the file itself)."""
    model_dir = Path(model_dir)
    for path in (model_dir, model_dir / "model.gguf", model_dir.parent / "model.gguf"):
        if path.is_file() and path.suffix == ".gguf":
            return path
    return None


def missing(model_dir: Path) -> str | None:
    """Why the peer cannot run here, or None."""
    if not (bin_dir() / "llama-bench").is_file() or not (bin_dir() / "llama-server").is_file():
        return f"llama.cpp binaries not in {bin_dir()}: {BUILD_HINT}"
    if find_gguf(model_dir) is None:
        return f"no model.gguf beside {model_dir}"
    return None


def llama_bench(gguf: Path, threads: int, prompt_sizes: tuple[int, ...] = (300, 1000), n_gen: int = 64,
                repeats: int = 5) -> dict[str, Any]:
    """``llama-bench``: prefill tok/s per prompt size and decode tok/s (median, min, max of ``repeats`` runs;
    llama-bench warms up first). Decode is its ``tg`` test: ``n_gen`` tokens after an empty prompt."""
    cmd = [str(bin_dir() / "llama-bench"), "-m", str(gguf), "-t", str(threads), "-r", str(repeats),
           "-p", ",".join(map(str, prompt_sizes)), "-n", str(n_gen), "-o", "json"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=3600, check=False)
    if proc.returncode != 0:
        return {"error": f"llama-bench exited {proc.returncode}: {proc.stderr.strip()[-300:]}"}
    out: dict[str, Any] = {"threads": threads, "command": " ".join(cmd[1:])}
    for record in json.loads(proc.stdout):
        samples = record.get("samples_ts") or [record["avg_ts"]]
        if record.get("n_gen", 0) == 0:
            out[f"prefill_{record['n_prompt']}_tok_s"] = spread(samples)
        else:
            out["decode_tok_s"] = spread(samples)
    return out


@dataclass
class InfillReply:
    content: str
    seconds: float
    timings: dict[str, Any]


class LlamaServer:
    """``llama-server`` on a free loopback port for the duration of a ``with`` block."""

    def __init__(self, gguf: Path, threads: int, context: int = 8192, extra_args: tuple[str, ...] = ()) -> None:
        self.gguf, self.threads, self.context, self.extra_args = gguf, threads, context, extra_args
        self.port = _free_port()
        self._proc: subprocess.Popen | None = None
        self._http: httpx.Client | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> LlamaServer:
        cmd = [str(bin_dir() / "llama-server"), "-m", str(self.gguf), "-t", str(self.threads), "-c",
               str(self.context), "--host", "127.0.0.1", "--port", str(self.port), "-np", "1", *self.extra_args]
        self._proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                      env={**os.environ, "LLAMA_ARG_LOG_DISABLE": "1"})
        self._http = httpx.Client(base_url=f"http://127.0.0.1:{self.port}", timeout=600.0)
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"llama-server exited {self._proc.returncode} while loading {self.gguf}")
            try:
                if self._http.get("/health").status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        self.__exit__(None, None, None)
        raise RuntimeError("llama-server did not become healthy in 300 s")

    def __exit__(self, *exc: object) -> None:
        if self._http is not None:
            self._http.close()
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()

    def infill(self, prefix: str, suffix: str, n_predict: int, extra: list[dict[str, str]] | None = None,
               stop: list[str] | None = None) -> InfillReply:
        """A fresh ``/infill`` (``cache_prompt`` off: nothing reused from the previous request), greedy."""
        body = {"input_prefix": prefix, "input_suffix": suffix, "input_extra": extra or [], "prompt": "",
                "n_predict": n_predict, "temperature": 0.0, "cache_prompt": False, "stream": False,
                "stop": stop or []}
        return self._post("/infill", body)

    def complete_ids(self, prompt_ids: list[int], n_predict: int) -> InfillReply:
        """``/completion`` of exactly these prompt tokens and ``n_predict`` new ones (EOS ignored)."""
        body = {"prompt": prompt_ids, "n_predict": n_predict, "temperature": 0.0, "cache_prompt": False,
                "ignore_eos": True, "stream": False}
        return self._post("/completion", body)

    def _post(self, path: str, body: dict[str, Any]) -> InfillReply:
        assert self._http is not None, "use LlamaServer in a with block"
        start = time.perf_counter()
        resp = self._http.post(path, json=body)
        seconds = time.perf_counter() - start
        resp.raise_for_status()
        data = resp.json()
        return InfillReply(data.get("content") or "", seconds, data.get("timings") or {})


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
