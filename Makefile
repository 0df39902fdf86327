# codeloop: every routine task is a target. `make demo` and `make test` work on a fresh machine.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PYTEST := $(VENV)/bin/pytest
RUFF := $(VENV)/bin/ruff
MODEL ?= qwen2.5-coder-0.5b-instruct
PYTEST_ARGS ?=
SIMDE ?= $(SIMDE_DIR)

.PHONY: venv system demo test test-fast test-py310 lint e2e vsix nvim-plugin bench bench-all bench-peer bench-speed eval-canonical rl-smoke scan-index gpu-check check-isa clean

$(VENV)/.installed: pyproject.toml scripts/setup_venv.sh
	scripts/setup_venv.sh

venv: $(VENV)/.installed

# System packages and services the tests need (Docker engine, bubblewrap, sandbox image, editors).
system: venv
	scripts/setup_system.sh

# The demo's checked suggestion and sandbox step need a sandbox: bubblewrap (one apt package) is enough.
demo: venv
	scripts/sandbox_setup.sh --bwrap-only
	$(VENV)/bin/codeloop demo --model $(MODEL)

# Python sources, for the 3.10 check: vermin fails on a module, member or syntax newer than Python 3.10 (the
# oldest release pyproject admits) outside a sys.version_info guard. Excluded: torch's `.long()` (read as
# Python 2's builtin) and sys.set_int_max_str_digits (3.10.7+, used behind hasattr).
PY_SRC := codeloop bench inference lsp sandbox security evals rl tests scripts

lint: venv
	$(RUFF) check .
	$(VENV)/bin/vermin -q -t=3.10- --violations --eval-annotations --no-parse-comments --no-tips \
	  --exclude long --exclude sys.set_int_max_str_digits $(PY_SRC)

# --durations: the slowest tests are printed at the end (CI shows the tail), to keep `make test` under 20 min.
test: system lint
	$(PYTEST) -m "not gpu" --durations=25 $(PYTEST_ARGS)

# Unit tests only: no Docker, editors or real model.
test-fast: venv
	$(PYTEST) -m "not gpu and not slow and not docker and not e2e" $(PYTEST_ARGS)

# `make test`'s selection under Python 3.10 in .venv-py310 (not part of `make test`: torch for cp310 is
# PyPI's CUDA build, about 5 GB once); skips, saying why, where the machine has no CPython 3.10. The script
# sets up the system itself, with the 3.10 venv.
test-py310:
	scripts/test_py310.sh $(PYTEST_ARGS)

e2e: system
	$(PYTEST) -m e2e $(PYTEST_ARGS)

# The VS Code extension as dist/codeloop-<version>.vsix (@vscode/vsce; Node >= 22 from scripts/editors_setup.sh).
vsix:
	scripts/build_vsix.sh

bench: venv
	$(VENV)/bin/codeloop bench engine --model $(MODEL) --json

# llama.cpp's own llama-server + llama-bench (the benchmark peer) into ~/.cache/codeloop/llama.cpp/bin (~6 min).
bench-peer: venv
	PIP=$(VENV)/bin/pip scripts/build_llama_server.sh

# Interactive speed (issue 17): engine single-stream vs HF + llama.cpp, FIM completions with and without
# speculation vs llama-server /infill, for the 0.5B and the 1.5B. JSON under docs/bench/.
bench-speed: venv bench-peer
	for m in qwen2.5-coder-0.5b-instruct qwen2.5-coder-1.5b-instruct; do \
	  $(VENV)/bin/codeloop bench engine --model $$m --scenarios single --out docs/bench/speed_engine_$$m.json && \
	  $(VENV)/bin/codeloop bench fim --model $$m --out docs/bench/speed_fim_$$m.json || exit 1; done

bench-all: venv
	$(VENV)/bin/codeloop bench engine --model $(MODEL) --json --out docs/bench/engine.json
	$(VENV)/bin/codeloop bench sandbox --json
	$(VENV)/bin/codeloop bench scan --json
	$(VENV)/bin/codeloop bench lsp --json
	$(VENV)/bin/codeloop bench serve --json

# Every canonical solution through the sandbox (`make test` checks the base sets whole, samples of the rest).
eval-canonical: system
	for b in humaneval mbpp humanevalplus mbppplus; do $(VENV)/bin/codeloop eval canonical $$b || exit 1; done
	for s in stdlib numpy-pandas; do $(VENV)/bin/codeloop eval canonical bigcodebench --subset $$s || exit 1; done

rl-smoke: system
	$(VENV)/bin/codeloop loop --iterations 1 --config rl/configs/cpu-smoke.toml

scan-index: venv
	scripts/build_scan_index.sh

gpu-check:
	scripts/gpu_check.sh out/gpu

# The kernels' tests under the instruction sets this CPU lacks (AVX-512 VNNI, + BF16, AVX-VNNI), emulated with SIMDe's
# headers (a checkout of github.com/simd-everywhere/simde, not fetched here): make check-isa SIMDE=/path/to/simde
check-isa: venv
	for isa in avx512_vnni avx512_bf16 avx_vnni; do $(PY) scripts/emulated_isa.py --simde "$(SIMDE)" --isa $$isa -q || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
