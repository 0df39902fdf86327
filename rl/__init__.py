"""codeloop rl package."""
