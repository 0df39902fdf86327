"""``BackendUnavailable``: the configured attention backend is unknown or cannot run here.

A leaf module, so the backends raise it without importing the package that chooses between them."""


class BackendUnavailable(RuntimeError):
    """The configured attention backend is unknown or cannot run here."""
