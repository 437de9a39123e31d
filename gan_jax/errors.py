"""The error type for problems a user can fix, which command-line entry points print in one line."""


class UserError(Exception):
    """Bad input: an impossible flag combination, missing data, no checkpoint to restore."""
