"""``UserError``: a mistake the user can fix, printed by the CLI as one line without a traceback."""


class UserError(Exception):
    """A mistake the user can fix (bad path, unknown model, bad flag value): shown as one line."""
