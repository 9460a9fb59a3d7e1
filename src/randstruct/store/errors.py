"""The store's error types, shared by its modules (both are kinds of the policy in randstruct.errors)."""

from randstruct.errors import DamagedFileError, UserInputError


class RunError(UserInputError):
    """A run directory that cannot be used as asked (exists, incomplete, mismatched)."""


class DamagedRunError(RunError, DamagedFileError):
    """A file of a run directory that can no longer be read (truncated, garbage, a missing chunk)."""
