"""Shared fixtures: tiny random HF models (session-scoped, built once per test session)."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

import pytest

# NOTE: test models are tiny and the CI cores are shared; torch's OpenMP threads spin-wait and run
# 10-15x slower under contention than one thread does. Set before torch is first imported.
os.environ.setdefault("OMP_NUM_THREADS", "1")
# Engines with hybrid weights compile their decode step at load (inference/compiled_decode.py): seconds to
# minutes each. Tests build dozens of such engines; the compiled path has its own tests, which ask for it.
os.environ.setdefault("CODELOOP_COMPILE_DECODE", "off")
# The tiny models' measured kernel choices go to a folder of this session's own, not the user's autotune.json
# (and a stale entry there cannot steer a test).
if "CODELOOP_AUTOTUNE_DIR" not in os.environ:
    os.environ["CODELOOP_AUTOTUNE_DIR"] = tempfile.mkdtemp(prefix="codeloop-autotune-")
    atexit.register(shutil.rmtree, os.environ["CODELOOP_AUTOTUNE_DIR"], True)

# Triton reads TRITON_INTERPRET when a kernel is decorated, i.e. when inference.attention.triton_* is
# first imported, which may happen in any test module: set it before collection on machines without CUDA.
if "TRITON_INTERPRET" not in os.environ:
    import torch

    if not torch.cuda.is_available():
        os.environ["TRITON_INTERPRET"] = "1"


@pytest.fixture(scope="session")
def tiny_qwen2_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """HF folder of a random 2-layer Qwen2 (q/k/v biases, tied embeddings) with a Qwen-style tokenizer."""
    from inference.models.tiny import make_tiny_model

    return make_tiny_model(tmp_path_factory.mktemp("tiny-qwen2"), arch="qwen2", seed=0)


@pytest.fixture(scope="session")
def tiny_llama_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """HF folder of a random 2-layer Llama (no biases, untied lm_head) with the same tokenizer."""
    from inference.models.tiny import make_tiny_model

    return make_tiny_model(tmp_path_factory.mktemp("tiny-llama"), arch="llama", seed=1)


@pytest.fixture(scope="session", params=["qwen2", "llama"])
def tiny_model_dir(request: pytest.FixtureRequest) -> Path:
    """Each tiny model in turn."""
    return request.getfixturevalue(f"tiny_{request.param}_dir")


@pytest.fixture(scope="session")
def mined(tmp_path_factory: pytest.TempPathFactory):
    """(target, options, report) of ``tasks mine`` on tests/evals/minirepo.py (half the files held out; needs
    bubblewrap). Shared by the eval fim and repository RL tests, so the fixture repository is mined once."""
    from evals.repo.miner import MineOptions, mine
    from evals.repo.target import resolve_target
    from tests.evals.minirepo import make_minirepo

    base = tmp_path_factory.mktemp("mine")
    target = resolve_target(str(make_minirepo(base / "minirepo")))
    options = MineOptions(out=base / "tasks.jsonl", cache_dir=base / "cache", heldout_fraction=0.5, seed=0)
    return target, options, mine(target, options)
