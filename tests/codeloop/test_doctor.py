"""`codeloop doctor` and `codeloop --version`: each check finds what it should, errors make the exit code 1."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from codeloop import __version__, doctor
from codeloop.cli import main

GOOD_CPU = "model name\t: Test CPU 9000\nflags\t\t: fpu sse2 avx2 fma f16c avx512f avx512_bf16 amx_bf16\n"


def test_version_is_one_line_and_the_packages(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0 and capsys.readouterr().out == f"codeloop {__version__}\n"
    from importlib.metadata import version

    assert version("codeloop") == __version__  # pyproject reads it from codeloop/__init__.py


def test_python_check() -> None:
    assert doctor.python_check((3, 9, 18), in_venv=True).status == doctor.ERROR
    assert doctor.python_check((3, 10, 13), in_venv=False).status == doctor.WARN
    assert doctor.python_check((3, 12, 1), in_venv=True).status == doctor.OK


def test_torch_check_flags_a_cuda_build_on_a_cpu_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    monkeypatch.setattr(torch.version, "cuda", None)
    assert doctor.torch_check(has_nvidia=False).status == doctor.OK
    monkeypatch.setattr(torch.version, "cuda", "13.0")
    cuda_on_cpu = doctor.torch_check(has_nvidia=False)
    assert cuda_on_cpu.status == doctor.WARN and "download.pytorch.org/whl/cpu" in cuda_on_cpu.fix


def test_cpu_check_lists_features_and_warns_without_avx2() -> None:
    good = doctor.cpu_check(GOOD_CPU)
    assert good.status == doctor.OK and "Test CPU 9000" in good.detail and "avx512_bf16 amx_bf16" in good.detail
    old = doctor.cpu_check("model name\t: Old CPU\nflags\t\t: fpu sse2 sse4_2\n")
    assert old.status == doctor.WARN and "AVX2" in old.fix
    from inference.compute_dtype import resolve_dtype

    assert f"dtype auto: {resolve_dtype('auto')}" in doctor.cpu_check().detail  # this machine's choice


def _fake_pulled_model(home: Path, name: str, payload: bytes, recorded: bytes) -> None:
    from inference.catalog import HF_DIR, MANIFEST, model_dir

    folder = model_dir(name, home)
    (folder / HF_DIR).mkdir(parents=True)
    (folder / HF_DIR / "model.safetensors").write_bytes(payload)
    files = {f"{HF_DIR}/model.safetensors": {"size": len(recorded), "sha256": hashlib.sha256(recorded).hexdigest()}}
    (folder / MANIFEST).write_text(json.dumps({"files": files}))


def test_kernels_check_says_whether_they_run_and_are_built(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from inference import cpu_info, kernels

    monkeypatch.setenv("CODELOOP_HOME", str(tmp_path))
    monkeypatch.delenv(kernels.OFF_ENV, raising=False)
    monkeypatch.setattr(cpu_info, "read_cpuinfo", lambda: GOOD_CPU.replace("avx512f", "avx512f avx512bw avx512vl "
                                                                          "avx512_vnni"))
    monkeypatch.setattr(kernels, "cpu_flags", cpu_info.cpu_flags)
    monkeypatch.setattr(kernels, "cpu_model", cpu_info.cpu_model)
    fresh = doctor.kernels_check()  # nothing built under this home, and nothing is built by the check
    assert fresh.status == doctor.INFO and "not built yet for avx512_vnni, with prompt attention" in fresh.detail
    assert not (tmp_path / "kernels").exists()
    kernels.library_path().parent.mkdir(parents=True)
    kernels.library_path().write_bytes(b"")
    assert doctor.kernels_check().status == doctor.OK
    monkeypatch.setattr(cpu_info, "read_cpuinfo", lambda: GOOD_CPU)  # no VNNI: the AVX2 build
    assert "not built yet for avx2" in doctor.kernels_check().detail
    monkeypatch.setattr(cpu_info, "read_cpuinfo", lambda: GOOD_CPU.replace(" avx2 fma", ""))
    assert "lacks avx2 fma (and AVX-512 VNNI)" in doctor.kernels_check().detail
    monkeypatch.setenv(kernels.OFF_ENV, "off")
    assert doctor.kernels_check().detail.startswith("off")


def test_models_check(tmp_path: Path) -> None:
    from inference.model_specs import DEFAULT_MODEL

    assert doctor.models_check(str(tmp_path)).status == doctor.WARN  # nothing pulled: the fix says pull
    _fake_pulled_model(tmp_path, DEFAULT_MODEL, b"weights", b"weights")
    assert doctor.models_check(str(tmp_path)).status == doctor.OK
    other = tmp_path / "other"
    _fake_pulled_model(other, DEFAULT_MODEL, b"weightz", b"weights")  # same size, different bytes
    broken = doctor.models_check(str(other))
    assert broken.status == doctor.ERROR and "--force" in broken.fix


def test_server_check_against_a_live_and_a_dead_server(tiny_qwen2_dir: Path) -> None:
    from tests.inference.server_fixtures import live_server

    with live_server(tiny_qwen2_dir) as srv:
        live = doctor.server_check(srv.url, None, "tiny")
    assert live.status == doctor.OK and "context 512 tokens" in live.detail and "(codeloop," in live.detail
    dead = doctor.server_check(srv.url, None, "tiny")  # stopped now
    assert dead.status == doctor.ERROR
    assert doctor.server_check(None, None, "no-such-model-for-doctor").status == doctor.INFO


def test_doctor_json_and_exit_code(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                                   tmp_path: Path) -> None:
    monkeypatch.setenv("CODELOOP_HOME", str(tmp_path))
    monkeypatch.setattr(doctor, "editors_check", lambda: doctor.Check("editors", doctor.INFO, "skipped"))
    assert main(["doctor", "--json", "--url", "http://127.0.0.1:9"]) == 1  # a named server that does not answer
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is False
    assert [c["name"] for c in report["checks"]] == ["python", "torch", "cpu", "kernels", "sandbox", "models",
                                                   "editors", "server"]
    assert {c["name"]: c["status"] for c in report["checks"]}["server"] == "error"
    assert main(["doctor"]) == 0  # no models is a warning, no shared server is information
    assert "[warn]  models" in capsys.readouterr().out
