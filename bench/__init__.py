"""Benchmarks: every package's speed and quality figures, measured side by side, out as JSON.

One module per benchmark (``codeloop bench <target>`` runs them; the flags live in
``codeloop/commands/bench.py``): ``engine`` (+ ``engine_trace``, ``hf_peer``), ``lora``, ``serve``,
``sandbox_throughput``, ``scan``, ``editor_session`` (``bench lsp``), ``rollout``; ``gpu`` and
``gpu_parts`` + ``dummy_models`` (the GPU run of ``scripts/gpu_check.sh``); ``model_decode`` (a model-forward
micro benchmark). Shared: ``data`` (inputs and reference figures), ``output`` (the JSON emitter and the
machine facts) and ``lsp.percentile`` (the one percentile). Benchmarks sit on top of every package;
nothing imports them.
"""
