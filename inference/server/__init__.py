"""OpenAI-compatible HTTP server over one shared engine (``codeloop serve``).

Modules: ``config`` (ServerConfig), ``schemas`` (request/response bodies), ``errors`` (OpenAI error JSON),
``auth`` (bearer token), ``body_limit`` (413), ``metrics`` (Prometheus), ``backend`` (the engine as the
server sees it), ``prompts`` (body -> token ids + SamplingParams), ``generation`` (collect / SSE stream),
``app`` (FastAPI routes), ``uvicorn_runner`` (uvicorn), ``launcher`` (one shared server per machine for
``codeloop lsp --shared``). Kept import-light: import the submodule you need.
"""
