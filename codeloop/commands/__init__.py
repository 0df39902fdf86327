"""The argparse glue of each area: a module per area with ``register(subparsers)``; every subcommand sets
``func(args) -> int`` and turns the area's typed errors into :class:`codeloop.errors.UserError`.

Only argument parsing, error mapping and printing live here; the work is done by the packages below.
A module imports its package lazily (inside the subcommand's function), so ``codeloop lsp`` starts fast.
"""
