"""Errors, one per exit status of the `silo` command, each also the built-in error Python code expects."""

from __future__ import annotations


class Error(Exception):
    """What `silo` reported: its message (without the `silo: error: ` prefix) and exit status."""

    def __init__(self, message: str, status: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


class InvalidError(Error, ValueError):
    """Bad input: a name, a path, the wrong kind of path (exit status 2)."""


class NotFoundError(Error, FileNotFoundError):
    """No such volume, version or path (exit status 3)."""


class AlreadyExistsError(Error, FileExistsError):
    """It exists already, or a commit's precondition failed (exit status 4)."""


class DataError(Error):
    """Damaged or missing data (exit status 5)."""


class NoSpaceError(Error, OSError):
    """Out of disk space; the volume is left as it was (exit status 6)."""


class AuthError(Error, PermissionError):
    """Not allowed: a missing, wrong or revoked token (exit status 7)."""


class FunctionTimeoutError(Error, TimeoutError):
    """A function did not return within its `timeout`."""


_BY_STATUS = {2: InvalidError, 3: NotFoundError, 4: AlreadyExistsError, 5: DataError, 6: NoSpaceError, 7: AuthError}


def error_for(status: int, stderr: str) -> Error:
    lines = [line for line in stderr.strip().splitlines() if line.strip()]
    message = lines[-1] if lines else f"silo exited with status {status}"
    if message.startswith("silo: error: "):
        message = message[len("silo: error: ") :]
    return _BY_STATUS.get(status, Error)(message, status)
