"""The store's one error type, shared by its modules."""


class RunError(ValueError):
    """A run directory that cannot be used as asked (exists, incomplete, mismatched)."""
