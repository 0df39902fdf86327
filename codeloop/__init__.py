"""The application layer: the ``codeloop`` command line (``cli``), its subcommands (``commands``) and the
demo. It sits on top of every other package and nothing imports it; each lower package raises its own typed
errors, which the subcommands here turn into one-line ``UserError`` messages."""

__version__ = "0.1.0"
"""The release; pyproject.toml reads it from here (one place)."""
