"""Errors that command-line entry points report in one line, and the exit statuses they use."""

import errno


class UserError(Exception):
    """Bad input: an impossible flag combination, missing data, no checkpoint to restore."""


class ConfigError(UserError, ValueError):
    """A config that cannot be trained: a bad count, a shape the data does not have."""


class DivergedError(UserError):
    """Training produced a non-finite value; nothing past the last good checkpoint was saved."""


class DiskFullError(UserError):
    """A write failed for lack of space; the checkpoints already on disk are intact."""


class Interrupted(Exception):
    """A run stopped on SIGINT or SIGTERM; `message` says what was saved.

    Command-line entry points exit with status 128 + `signum`, as a shell reports a
    process killed by that signal (130 for SIGINT, 143 for SIGTERM).
    """

    def __init__(self, signum: int, message: str):
        super().__init__(message)
        self.signum = signum


_NO_SPACE_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
_NO_SPACE_TEXTS = ("No space left on device", "Disk quota exceeded", "File too large")


def is_out_of_space(error: BaseException) -> bool:
    """Whether `error` (or an error it was raised from) says the disk or quota is full.

    Orbax's background writers re-raise an OSError's text inside other error types,
    so the message is checked as well as the errno.
    """
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, OSError) and error.errno in _NO_SPACE_ERRNOS:
            return True
        if any(text in str(error) for text in _NO_SPACE_TEXTS):
            return True
        error = error.__cause__ or error.__context__
    return False


def first_line(error: BaseException, max_chars: int | None = 160) -> str:
    """An error's first line, shortened for a one-line message: the messages of Orbax and
    of JAX's runtime can run to hundreds of lines.

    Args:
      error: any exception; one with an empty message gives its type's name.
      max_chars: the longest line kept (longer ones end in '...'); None keeps the whole
        line, for our own messages, whose remedy comes last.
    """
    text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    if max_chars is None or len(text) <= max_chars:
        return text
    return text[: max_chars - 3] + "..."
