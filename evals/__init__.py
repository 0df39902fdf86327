"""codeloop evals package."""
