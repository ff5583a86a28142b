"""Volumes, with Modal's names and semantics (`modal.Volume`), on Silo's store."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime
import enum
import functools
import os
import re
import shutil
import tempfile
import threading
import uuid
from typing import IO, Any, Callable, Dict, Generic, Iterator, List, Optional, Sequence, TypeVar, Union

from . import _cli
from .exception import AlreadyExistsError, InvalidError, NotFoundError

T = TypeVar("T")


class _Synchronized(Generic[T]):
    """A method callable as it is and as `await method.aio(...)` (Modal's two forms); the
    asynchronous one runs the call on a worker thread, so an event loop goes on meanwhile."""

    def __init__(self, function: Callable[..., T]) -> None:
        self._function = function
        functools.update_wrapper(self, function)  # type: ignore[arg-type]

    def __get__(self, instance: Any, owner: Any = None) -> "_Bound[T]":
        return _Bound(self._function, instance if instance is not None else owner)


class _Bound(Generic[T]):
    def __init__(self, function: Callable[..., T], target: Any) -> None:
        self._function = function
        self._target = target

    def __call__(self, *args: Any, **kwargs: Any) -> T:
        return self._function(self._target, *args, **kwargs)

    async def aio(self, *args: Any, **kwargs: Any) -> T:
        return await asyncio.to_thread(self._function, self._target, *args, **kwargs)


def _synchronized(function: Callable[..., T]) -> _Synchronized[T]:
    return _Synchronized(function)


def _timestamp(text: str) -> int:
    """Seconds since the epoch of a time `silo` prints (ISO 8601, UTC, `Z`)."""
    return int(datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp())


class FileEntryType(enum.IntEnum):
    UNSPECIFIED = 0
    FILE = 1
    DIRECTORY = 2
    SYMLINK = 3
    FIFO = 4
    SOCKET = 5
    DEVICE = 6


_TYPES = {"file": FileEntryType.FILE, "directory": FileEntryType.DIRECTORY, "symlink": FileEntryType.SYMLINK, "fifo": FileEntryType.FIFO}


@dataclasses.dataclass(frozen=True)
class FileEntry:
    """A path in a volume: where it is (relative to the volume's root, as Modal gives it), what it
    is, when it was last modified (seconds since the epoch) and its size in bytes."""

    path: str
    type: FileEntryType
    mtime: int
    size: int

    @classmethod
    def _from_json(cls, row: Dict[str, Any]) -> "FileEntry":
        return cls(
            path=str(row["path"]).lstrip("/"),
            type=_TYPES.get(str(row["kind"]), FileEntryType.DEVICE if "Device" in str(row["kind"]) else FileEntryType.UNSPECIFIED),
            mtime=_timestamp(str(row["modifiedAt"])),
            size=int(row["size"]),
        )


@dataclasses.dataclass(frozen=True)
class VolumeInfo:
    name: str
    kind: str
    created_at: int
    latest_version: int


@dataclasses.dataclass(frozen=True)
class VersionInfo:
    """One version of a volume's history (what no Modal volume keeps)."""

    version: int
    time: int
    author: str
    files_added: int
    files_changed: int
    files_removed: int
    bytes_added: int


@dataclasses.dataclass(frozen=True)
class Change:
    """What happened to a path between two versions: `added`, `modified` or `removed`."""

    kind: str
    path: str
    type: FileEntryType


def _remote(path: str) -> str:
    return path if path.startswith("/") else "/" + path


class _BatchUpload:
    """Files and directories to put into a volume as one commit (one new version), when the
    `with` block ends without an error. Without `force`, a path that exists already in the volume
    fails the whole upload with FileExistsError and nothing is put."""

    def __init__(self, volume: "Volume", force: bool) -> None:
        self._volume = volume
        self._force = force
        self._staging = tempfile.mkdtemp(prefix="silo-upload-")
        os.chmod(self._staging, 0o755)

    def _place(self, remote_path: str) -> str:
        relative = os.path.normpath(remote_path.lstrip("/"))
        if relative in (".", "") or relative.startswith(".."):
            raise InvalidError(f"{remote_path}: give a path for the file inside the volume", 2)
        target = os.path.join(self._staging, relative)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        if os.path.lexists(target):
            raise InvalidError(f"{remote_path} is put twice in one upload", 2)
        return target

    def put_file(self, local_file: Union[str, "os.PathLike[str]", IO[bytes]], remote_path: str, mode: Optional[int] = None) -> None:
        """Puts a local file (a path, or a file object read from where it stands) at `remote_path`;
        a remote path ending in `/` takes the local file's name."""
        if remote_path.endswith("/") and not hasattr(local_file, "read"):
            remote_path += os.path.basename(os.fspath(local_file))  # type: ignore[arg-type]
        target = self._place(remote_path)
        if hasattr(local_file, "read"):
            with open(target, "wb") as out:
                shutil.copyfileobj(local_file, out)  # type: ignore[arg-type]
        else:
            source = os.fspath(local_file)  # type: ignore[arg-type]
            try:
                os.link(source, target)  # no copy of the bytes where the file system allows
            except OSError:
                shutil.copy2(source, target)
        if mode is not None:
            os.chmod(target, mode)

    def put_directory(self, local_path: Union[str, "os.PathLike[str]"], remote_path: str, recursive: bool = True) -> None:
        """Puts what a local directory holds at `remote_path` (its contents, not the directory
        itself inside it)."""
        local = os.fspath(local_path)
        root = os.path.normpath(remote_path.lstrip("/"))
        for directory, subdirectories, files in os.walk(local):
            relative = os.path.relpath(directory, local)
            if not recursive:
                subdirectories.clear()
            for name in files:
                inside = name if relative == "." else os.path.join(relative, name)
                self.put_file(os.path.join(directory, name), "/" + (inside if root == "." else os.path.join(root, inside)))

    def _commit(self) -> None:
        arguments = ["volume", "put", self._volume.name, self._staging, "/"]
        if self._force:
            arguments.append("--force")
        try:
            _cli.run(arguments)
        except AlreadyExistsError as error:
            # Said for Python: the CLI's advice names its own flag.
            message = re.sub(r"pass --force to overwrite (it|them)", r"batch_upload(force=True) overwrites \1", error.message)
            raise AlreadyExistsError(message, error.status) from None

    def __enter__(self) -> "_BatchUpload":
        return self

    def __exit__(self, kind: Any, error: Any, traceback: Any) -> None:
        try:
            if kind is None:
                self._commit()
        finally:
            shutil.rmtree(self._staging, ignore_errors=True)


class _VolumeManager:
    """`Volume.objects` (and `NetworkFileSystem.objects`): volumes of one kind by name."""

    def __init__(self, kind: str) -> None:
        self._kind = kind

    def _create_arguments(self, name: str) -> List[str]:
        return ["volume", "create", name] + (["--shared"] if self._kind == "shared" else [])

    def create(self, name: str, *, allow_existing: bool = False) -> None:
        _cli.run(self._create_arguments(name) + (["--allow-existing"] if allow_existing else []))

    def list(self) -> List["Volume"]:
        made = NetworkFileSystem if self._kind == "shared" else Volume
        return [made(str(row["name"])) for row in _cli.run_json(["volume", "list"]) if row.get("kind") == self._kind]

    def delete(self, name: str, *, allow_missing: bool = False) -> None:
        _cli.run(["volume", "delete", name, "--yes"] + (["--allow-missing"] if allow_missing else []))


class Volume:
    """A named, persistent, versioned volume (the seed's `Volume`): mounted in containers with
    `silo run -v NAME:/path`, read and written from anywhere through these methods."""

    objects = _VolumeManager("snapshot")

    def __init__(self, name: str, *, read_only: bool = False, version: Optional[int] = None) -> None:
        self.name = name
        self._read_only = read_only
        self._version = version

    def __repr__(self) -> str:
        return f"Volume({self.name!r}{', read_only=True' if self._read_only else ''})"

    # Finding and making volumes.

    @classmethod
    def from_name(cls, name: str, *, create_if_missing: bool = False, version: Optional[int] = None) -> "Volume":
        """The volume called `name`, made first (empty) if it does not exist and `create_if_missing`."""
        if create_if_missing:
            cls.objects.create(name, allow_existing=True)
        return cls(name, version=version)

    @classmethod
    def persisted(cls, name: str) -> "Volume":
        """The seed's name for `from_name(name, create_if_missing=True)`."""
        return cls.from_name(name, create_if_missing=True)

    @classmethod
    @contextlib.contextmanager
    def ephemeral(cls) -> Iterator["Volume"]:
        """A new volume that is deleted, with all it holds, when the `with` block ends."""
        volume = cls(f"ephemeral-{uuid.uuid4().hex[:12]}")
        cls.objects.create(volume.name)
        try:
            yield volume
        finally:
            _cli.run(["volume", "delete", volume.name, "--yes", "--allow-missing"])

    @staticmethod
    def rename(old_name: str, new_name: str) -> None:
        _cli.run(["volume", "rename", old_name, new_name])

    @_synchronized
    def info(self) -> VolumeInfo:
        for row in _cli.run_json(["volume", "list"]):
            if row.get("name") == self.name:
                return VolumeInfo(str(row["name"]), str(row["kind"]), _timestamp(str(row["createdAt"])), int(row["version"]))
        raise NotFoundError(f"volume '{self.name}' does not exist; create it with `silo volume create {self.name}`", 3)

    def read_only(self) -> "Volume":
        """This volume, to be mounted read-only where it is attached."""
        return Volume(self.name, read_only=True, version=self._version)

    def with_mount_options(self, *, read_only: bool = False) -> "Volume":
        return Volume(self.name, read_only=read_only, version=self._version)

    @property
    def is_read_only(self) -> bool:
        return self._read_only

    # Reading.

    def _at(self, version: Optional[int]) -> List[str]:
        chosen = version if version is not None else self._version
        return ["--version", str(chosen)] if chosen is not None else []

    @_synchronized
    def listdir(self, path: str = "/", *, recursive: bool = False, version: Optional[int] = None) -> List[FileEntry]:
        """What `path` holds (a file: itself), everything beneath it with `recursive`."""
        arguments = ["volume", "ls", self.name, _remote(path)] + (["--recursive"] if recursive else []) + self._at(version)
        return [FileEntry._from_json(row) for row in _cli.run_json(arguments)]

    def iterdir(self, path: str = "/", *, recursive: bool = True, version: Optional[int] = None) -> Iterator[FileEntry]:
        yield from self.listdir(path, recursive=recursive, version=version)

    def read_file(self, path: str, *, version: Optional[int] = None) -> Iterator[bytes]:
        """A file's bytes, in chunks as they arrive."""
        return _cli.stream(["volume", "get", self.name, _remote(path), "-"] + self._at(version))

    @_synchronized
    def read_file_into_fileobj(self, path: str, fileobj: IO[bytes], *, version: Optional[int] = None) -> int:
        """Writes a file's bytes to `fileobj`; returns how many."""
        return _cli.copy_out(["volume", "get", self.name, _remote(path), "-"] + self._at(version), fileobj)

    @_synchronized
    def history(self) -> List[VersionInfo]:
        """Every version of the volume, oldest first."""
        return [
            VersionInfo(
                int(row["version"]), _timestamp(str(row["time"])), str(row["author"]), int(row["filesAdded"]),
                int(row["filesChanged"]), int(row["filesRemoved"]), int(row["bytesAdded"]),
            )
            for row in _cli.run_json(["volume", "history", self.name])
        ]

    @_synchronized
    def diff(self, a: int, b: Optional[int] = None) -> List[Change]:
        """What changed from version `a` to version `b` (the latest when not given)."""
        rows = _cli.run_json(["volume", "diff", self.name, str(a)] + ([str(b)] if b is not None else []))
        return [Change(str(row["kind"]), "/" + str(row["path"]).lstrip("/"), _TYPES.get(str(row["entryKind"]), FileEntryType.UNSPECIFIED)) for row in rows]

    # Changing (each call one commit).

    def _writable(self) -> None:
        if self._read_only:
            raise InvalidError(f"volume '{self.name}' was given read-only here; use Volume.from_name('{self.name}') to change it", 2)

    @_synchronized
    def remove_file(self, path: str, *, recursive: bool = False) -> None:
        self._writable()
        _cli.run(["volume", "rm", self.name, _remote(path)] + (["--recursive"] if recursive else []))

    @_synchronized
    def copy_files(self, src_paths: Sequence[str], dst_path: str) -> None:
        """Copies within the volume (no data moves): several sources, or a destination that is a
        directory, go inside it."""
        self._writable()
        _cli.run(["volume", "cp", self.name, *[_remote(p) for p in src_paths], _remote(dst_path)])

    def batch_upload(self, force: bool = False) -> _BatchUpload:
        """`with volume.batch_upload() as batch: batch.put_file(...); batch.put_directory(...)`:
        one commit when the block ends."""
        self._writable()
        return _BatchUpload(self, force)

    # Inside a container (`silo run` / `silo container start`).

    def _mount_path(self) -> str:
        for line in os.environ.get("SILO_ATTACHED", "").splitlines():
            fields = line.split("\t")
            if len(fields) >= 2 and fields[0] == self.name:
                return fields[1]
        raise InvalidError(
            f"volume '{self.name}' is not attached here; commit() and reload() act on a container's mount "
            f"(silo run -v {self.name}:/path -- ...)",
            2,
        )

    @_synchronized
    def commit(self) -> None:
        """Commits what this container changed in its mount of the volume as a new version."""
        _cli.run(["volume", "commit", self._mount_path()])

    @_synchronized
    def reload(self) -> None:
        """Moves this container's mount of the volume to the latest version."""
        _cli.run(["volume", "reload", self._mount_path()])


class NetworkFileSystem(Volume):
    """A shared volume (the seed's `SharedVolume`, Modal's `NetworkFileSystem`): every close, fsync,
    rename, unlink or mkdir in any of its mounts is committed at once and seen by every other mount,
    so there is no commit and no reload. Attach one with `silo run --nfs NAME:/path`."""

    objects = _VolumeManager("shared")

    def __repr__(self) -> str:
        return f"NetworkFileSystem({self.name!r})"

    def write_file(self, remote_path: str, fp: IO[bytes]) -> int:
        """Writes what `fp` holds (from where it stands) at `remote_path`, replacing what is there."""
        self._writable()
        start = fp.tell() if fp.seekable() else None
        with self.batch_upload(force=True) as batch:
            batch.put_file(fp, remote_path)
        return fp.tell() - start if start is not None else 0

    def add_local_file(self, local_path: Union[str, "os.PathLike[str]"], remote_path: Optional[str] = None) -> None:
        with self.batch_upload(force=True) as batch:
            batch.put_file(local_path, remote_path or "/" + os.path.basename(os.fspath(local_path)))

    def add_local_dir(self, local_path: Union[str, "os.PathLike[str]"], remote_path: Optional[str] = None) -> None:
        with self.batch_upload(force=True) as batch:
            batch.put_directory(local_path, remote_path or "/" + os.path.basename(os.path.normpath(os.fspath(local_path))))

    @_synchronized
    def commit(self) -> None:
        raise InvalidError(f"'{self.name}' is a shared volume: every close in its mounts is committed as it happens; there is nothing to commit", 2)

    @_synchronized
    def reload(self) -> None:
        raise InvalidError(f"'{self.name}' is a shared volume: its mounts show others' closes at the next open; there is nothing to reload", 2)


class SharedVolume(NetworkFileSystem):
    """The seed's spelling. `SharedVolume()` is a new shared volume that lives as long as the app
    whose functions attach it (made when the first of their containers starts, deleted when the app
    ends); `SharedVolume().persist("cache")` is the shared volume named `cache`, kept."""

    def __init__(self) -> None:
        super().__init__(f"ephemeral-{uuid.uuid4().hex[:12]}")
        self._made = False
        self._making = threading.Lock()  # containers of an app start at once

    def persist(self, name: str) -> NetworkFileSystem:
        return NetworkFileSystem.persisted(name)

    def _make(self) -> bool:
        """Makes the volume if it is not made yet; whether this call made it."""
        with self._making:
            if self._made:
                return False
            NetworkFileSystem.objects.create(self.name)
            self._made = True
            return True

    def _delete(self) -> None:
        with self._making:
            if self._made:
                NetworkFileSystem.objects.delete(self.name, allow_missing=True)
                self._made = False
