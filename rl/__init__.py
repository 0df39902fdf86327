"""codeloop rl: the self-improvement loop. Tasks -> rollouts on the engine -> sandbox-checked rewards ->
GRPO / RFT on LoRA adapters -> held-out evaluation -> promote the adapter; also per-repository adapters.

Floor 5: imports evals, lsp, inference, sandbox and security; only bench and codeloop import it."""
