"""codeloop lsp: the language server. Inline completion and completion (context -> engine -> post-processing),
chat, security diagnostics, execution-checked suggestions (checks/); one handler module per LSP method group
(features/).

Floor 3: imports inference, sandbox and security; evals, rl, bench and codeloop import it."""
