"""codeloop evals: benchmarks of the model. Datasets -> prompts -> generation -> sandbox -> pass@k -> report;
SWE-bench (swebench/) and repository fill-in-the-middle tasks checked by the repository's tests (repo/).

Floor 4: imports lsp, inference, sandbox and security; rl, bench and codeloop import it."""
