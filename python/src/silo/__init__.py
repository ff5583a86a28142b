"""Silo from Python: volumes with the `modal` package's names.

    import silo as modal
    volume = modal.Volume.from_name("models", create_if_missing=True)

Every call drives the `silo` command line (SILO_BINARY, else `silo` on PATH) with the caller's
environment, so it reaches the same store: the embedded one under SILO_HOME, or the server named by
SILO_SERVER and SILO_TOKEN.
"""

from .app import App, Cls, Function, FunctionCall, Image, Secret, Stub, enter, method
from .exception import AlreadyExistsError, AuthError, DataError, Error, FunctionTimeoutError, InvalidError, NoSpaceError, NotFoundError
from .volume import Change, FileEntry, FileEntryType, NetworkFileSystem, SharedVolume, VersionInfo, Volume, VolumeInfo

__all__ = [
    "AlreadyExistsError",
    "App",
    "Cls",
    "Function",
    "FunctionCall",
    "FunctionTimeoutError",
    "Image",
    "Secret",
    "Stub",
    "AuthError",
    "Change",
    "DataError",
    "Error",
    "FileEntry",
    "FileEntryType",
    "InvalidError",
    "NetworkFileSystem",
    "NoSpaceError",
    "NotFoundError",
    "SharedVolume",
    "VersionInfo",
    "Volume",
    "VolumeInfo",
    "enter",
    "method",
]
