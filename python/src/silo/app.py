"""Apps and functions on Silo containers, with Modal's names: `App` (the seed's `Stub`),
`@app.function(volumes=…)`, `.remote()`, `.map()`, `.spawn()`, `.local()`, `app.run()` and
`@app.local_entrypoint()`.

A function's `.remote()` runs in a warm container of its own (`silo container start`, its volumes
attached), reused from call to call, served by one persistent worker process (`silo._worker`) that
imported the user's file once: module globals live across calls, as in Modal's containers. The
function runs on this machine's Python; `image=` and `gpu=` are recorded, not built or scheduled.
"""

from __future__ import annotations

import atexit
import concurrent.futures
import contextlib
import dataclasses
import functools
import inspect
import os
import select
import subprocess
import sys
import threading
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

from . import _cli
from ._worker import MODULE, read_message, write_message
from .exception import FunctionTimeoutError, InvalidError
from .volume import NetworkFileSystem, SharedVolume, Volume

_PACKAGE_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# What the caller pickles from its `__main__`, the worker resolves in the user's file, and back.
sys.modules.setdefault(MODULE, sys.modules["__main__"])


class Secret:
    """Environment variables for a function's container (`Secret.from_dict({...})`)."""

    def __init__(self, env: Dict[str, str]) -> None:
        self.env = {str(key): str(value) for key, value in env.items()}

    @classmethod
    def from_dict(cls, env: Dict[str, Any]) -> "Secret":
        return cls(env)

    @classmethod
    def from_name(cls, name: str, **_: Any) -> "Secret":
        raise InvalidError(f"Silo keeps no named secrets ('{name}'): pass them with Secret.from_dict({{...}})", 2)


class Image:
    """Accepted for Modal's sake: what it installs is recorded, and the function runs on this
    machine's Python with the packages it has."""

    def __init__(self) -> None:
        self.packages: List[str] = []
        self.commands: List[str] = []

    @classmethod
    def debian_slim(cls, python_version: Optional[str] = None) -> "Image":
        return cls()

    @staticmethod
    def _note(image: Optional["Image"], function: str) -> None:
        """Says once per function that its image is not built here."""
        if image is not None and (image.packages or image.commands):
            what = ", ".join(image.packages + image.commands)
            print(f"silo: note: {function}'s image is not built; it runs on this machine's Python, which needs {what}", file=sys.stderr)

    def pip_install(self, *packages: str, **_: Any) -> "Image":
        self.packages.extend(packages)
        return self

    def apt_install(self, *packages: str, **_: Any) -> "Image":
        self.packages.extend(packages)
        return self

    def run_commands(self, *commands: str, **_: Any) -> "Image":
        self.commands.extend(commands)
        return self


class _Container:
    """One warm container and the worker serving a function's calls in it."""

    def __init__(self, arguments: List[str], file: str, env: Dict[str, str]) -> None:
        started = _cli.run(["container", "start", *arguments]).decode().strip()
        self.id = started.splitlines()[-1]
        self.lock = threading.Lock()
        self.busy = False
        # This Python, with this package on its path however it was found (installed or not).
        start = f"import sys; sys.path.insert(0, {_PACKAGE_ROOT!r}); import silo._worker as worker; worker.main()"
        self.worker = subprocess.Popen(
            [_cli.binary(), "container", "exec", self.id, "--", sys.executable, "-c", start, file],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            # Secrets reach the worker through its environment: never a command line (which other
            # users of the machine can read) nor the container's record.
            env={**os.environ, **env},
        )

    def call(
        self, qualified: str, args: Tuple[Any, ...], kwargs: Dict[str, Any], timeout: Optional[float], instance: Optional[Tuple[Any, Any]] = None
    ) -> Any:
        with self.lock:
            assert self.worker.stdin is not None and self.worker.stdout is not None
            self.busy = True
            try:
                write_message(self.worker.stdin, (qualified, args, kwargs, instance))
            except BrokenPipeError:
                raise RuntimeError(f"the worker in container {self.id} has ended (status {self.worker.poll()})") from None
            if timeout is not None:
                ready, _, _ = select.select([self.worker.stdout], [], [], timeout)
                if not ready:
                    self.stop()
                    raise FunctionTimeoutError(f"{qualified} did not return within {timeout} s; its container was stopped", 1)
            answer = read_message(self.worker.stdout)
            self.busy = False
        if answer is None:
            raise RuntimeError(f"the worker in container {self.id} ended during the call (status {self.worker.wait()})")
        # What the call printed, printed here, as Modal shows a container's output.
        sys.stdout.write(answer[-2])
        sys.stdout.flush()
        sys.stderr.write(answer[-1])
        if answer[0] == "ok":
            return answer[1]
        error = answer[1]
        if hasattr(error, "add_note"):
            error.add_note("Traceback in the container:\n" + answer[2])
        raise error

    def stop(self) -> None:
        """Ends the worker (at once if a call was cut short), then the container."""
        if self.busy:
            self.worker.kill()
        if self.worker.stdin is not None and not self.worker.stdin.closed:
            with contextlib.suppress(OSError):
                self.worker.stdin.close()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.worker.wait(timeout=60)
        if self.worker.poll() is None:
            self.worker.kill()
            self.worker.wait()
        # The final background commit, where enabled, and what was discarded, are said on stderr.
        done = subprocess.run([_cli.binary(), "container", "stop", self.id], capture_output=True, text=True)
        for line in (done.stdout + done.stderr).splitlines():
            if line.strip() and not line.startswith("stopped "):
                print(line, file=sys.stderr)


@dataclasses.dataclass
class _Options:
    volumes: Dict[str, Volume]
    shared: Dict[str, NetworkFileSystem]
    env: Dict[str, str]
    timeout: Optional[float]
    background_commits: bool
    concurrency: int


class FunctionCall:
    """A call started with `.spawn()`; `.get()` waits for its result."""

    def __init__(self, future: "concurrent.futures.Future[Any]") -> None:
        self._future = future

    def get(self, timeout: Optional[float] = None) -> Any:
        return self._future.result(timeout)


class Function:
    def __init__(
        self, app: "App", raw: Callable[..., Any], options: _Options, *,
        container: Optional[str] = None, instance: Optional[Tuple[Any, Any]] = None, bound: Optional[Callable[..., Any]] = None,
    ) -> None:
        self.app = app
        self.raw_f = raw
        self.options = options
        self.qualified = raw.__qualname__
        self.file = os.path.abspath(inspect.getfile(raw))
        # A method of an @app.cls class: its class's container, and the arguments its object is made with.
        self.container_key = container or self.qualified
        self.instance = instance
        self._bound = bound
        functools.update_wrapper(self, raw)  # type: ignore[arg-type]

    def local(self, *args: Any, **kwargs: Any) -> Any:
        """Runs the function here, in this process."""
        return (self._bound or self.raw_f)(*args, **kwargs)

    __call__ = local

    def _arguments(self) -> List[str]:
        arguments: List[str] = []
        for path, volume in self.options.volumes.items():
            arguments += ["--volume", f"{volume.name}:{path}" + (":ro" if volume.is_read_only else "")]
        for path, shared in self.options.shared.items():
            arguments += ["--nfs", f"{shared.name}:{path}"]
        if self.options.background_commits:
            arguments.append("--background-commits")
        return arguments

    def _make_volumes(self) -> None:
        """Makes the app-lifetime shared volumes (`SharedVolume()`) its container attaches."""
        for shared in self.options.shared.values():
            if isinstance(shared, SharedVolume) and shared._make():
                self.app._made.append(shared)

    def remote(self, *args: Any, **kwargs: Any) -> Any:
        """Runs the function in its warm container (started at the first call)."""
        return self._call(0, args, kwargs)

    def _call(self, index: int, args: Tuple[Any, ...], kwargs: Dict[str, Any]) -> Any:
        container = self.app._container(self, index)
        return container.call(self.qualified, args, kwargs, self.options.timeout, self.instance)

    def map(self, *inputs: Iterable[Any], order_outputs: bool = True, return_exceptions: bool = False) -> Iterator[Any]:
        """Calls the function on each input (several iterables: zipped), in up to `concurrency_limit`
        containers at once (4 unless given), yielding the results in the inputs' order."""
        calls = list(zip(*inputs))
        width = max(1, min(self.options.concurrency, len(calls)))
        free: "list[int]" = list(range(width))
        lock = threading.Lock()

        def one(arguments: Tuple[Any, ...]) -> Any:
            with lock:
                index = free.pop()
            try:
                return self._call(index, arguments, {})
            except Exception as error:
                if return_exceptions:
                    return error
                raise
            finally:
                with lock:
                    free.append(index)

        with concurrent.futures.ThreadPoolExecutor(width) as pool:
            futures = [pool.submit(one, arguments) for arguments in calls]
            ordered = futures if order_outputs else concurrent.futures.as_completed(futures)
            for future in ordered:
                yield future.result()

    def starmap(self, inputs: Iterable[Sequence[Any]], **options: Any) -> Iterator[Any]:
        return self.map(*zip(*inputs), **options)

    def spawn(self, *args: Any, **kwargs: Any) -> FunctionCall:
        return FunctionCall(self.app._pool.submit(self.remote, *args, **kwargs))


class App:
    """Functions that run in Silo containers, and a local entrypoint that calls them."""

    def __init__(self, name: Optional[str] = None, *, image: Optional[Image] = None, secrets: Sequence[Secret] = (), **_: Any) -> None:
        self.name = name
        self.image = image
        self.secrets = list(secrets)
        self.registered_functions: Dict[str, Function] = {}
        self.registered_classes: Dict[str, "Cls"] = {}
        self.entrypoints: Dict[str, Callable[..., Any]] = {}
        self._containers: Dict[Tuple[str, int], _Container] = {}
        self._starting: Dict[Tuple[str, int], threading.Lock] = {}
        self._made: List[SharedVolume] = []
        self._guard = threading.Lock()
        self._pool = concurrent.futures.ThreadPoolExecutor(8)
        self._running = 0
        atexit.register(self.stop)

    def function(self, _function: Optional[Callable[..., Any]] = None, **options: Any) -> Any:
        """Registers a function to run in a container of its own: `volumes={path: Volume}`,
        `network_file_systems=` / `shared_volumes={path: NetworkFileSystem}`, `secret=` / `secrets=`
        (environment), `timeout=` (seconds a call may take), `concurrency_limit=` (containers for
        `.map`, 4 by default), `_allow_background_volume_commits=`; `gpu=`, `image=` and the rest
        of Modal's options are accepted and not used."""

        def register(raw: Callable[..., Any]) -> Function:
            Image._note(options.get("image"), raw.__qualname__)
            made = Function(self, raw, self._options(**options))
            self.registered_functions[made.qualified] = made
            return made

        return register(_function) if _function is not None else register

    def _options(
        self,
        *,
        volumes: Optional[Dict[str, Volume]] = None,
        network_file_systems: Optional[Dict[str, NetworkFileSystem]] = None,
        shared_volumes: Optional[Dict[str, NetworkFileSystem]] = None,
        secret: Optional[Secret] = None,
        secrets: Sequence[Secret] = (),
        timeout: Optional[float] = None,
        concurrency_limit: Optional[int] = None,
        _allow_background_volume_commits: bool = False,
        **accepted: Any,  # gpu=, image=, cpu=, memory=, retries=: recorded by Modal, not used here
    ) -> _Options:
        env: Dict[str, str] = {}
        for given in [*self.secrets, *([secret] if secret else []), *secrets]:
            env.update(given.env)
        shared = {**(network_file_systems or {}), **(shared_volumes or {})}
        for path, volume in shared.items():
            if not isinstance(volume, NetworkFileSystem):
                raise InvalidError(f"{path}: a shared volume is a NetworkFileSystem (or SharedVolume().persist(name))", 2)
        return _Options(
            volumes=dict(volumes or {}), shared=shared, env=env, timeout=timeout,
            background_commits=_allow_background_volume_commits, concurrency=concurrency_limit or 4,
        )

    def cls(self, _class: Optional[type] = None, **options: Any) -> Any:
        """A class whose `@method`s run in its container, on one object per set of constructor
        arguments, made there once (its `@enter` methods run then) and kept between calls."""

        def register(user_class: type) -> "Cls":
            return Cls(self, user_class, self._options(**options))

        return register(_class) if _class is not None else register

    def local_entrypoint(self, name: Optional[str] = None) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        def register(raw: Callable[..., Any]) -> Callable[..., Any]:
            self.entrypoints[name or raw.__name__] = raw
            return raw

        return register

    @contextlib.contextmanager
    def run(self, **_: Any) -> Iterator["App"]:
        """The functions' containers start as they are first called and stop when the block ends."""
        with self._guard:
            self._running += 1
        try:
            yield self
        finally:
            with self._guard:
                self._running -= 1
                last = self._running == 0
            if last:
                self.stop()

    def _container(self, function: Function, index: int) -> _Container:
        key = (function.container_key, index)
        with self._guard:
            starting = self._starting.setdefault(key, threading.Lock())
        with starting:  # one start per container, others' starts go on beside it
            with self._guard:
                found = self._containers.get(key)
            if found is not None:
                return found
            function._make_volumes()
            made = _Container(function._arguments(), function.file, function.options.env)
            with self._guard:
                self._containers[key] = made
            return made

    def stop(self) -> None:
        """Stops every container (their final background commits where enabled)."""
        with self._guard:
            containers = list(self._containers.values())
            self._containers.clear()
        for container in containers:
            container.stop()
        with self._guard:
            made, self._made = self._made, []
        for volume in made:
            volume._delete()


def enter(function: Optional[Callable[..., Any]] = None, **_: Any) -> Any:
    """Marks a method of an `@app.cls` class to run once, when its object is made in the container."""

    def mark(method: Callable[..., Any]) -> Callable[..., Any]:
        method._silo_enter = True  # type: ignore[attr-defined]
        return method

    return mark(function) if function is not None else mark


def method(function: Optional[Callable[..., Any]] = None, **_: Any) -> Any:
    """Marks a method of an `@app.cls` class as callable with `.remote()`, `.map()`..."""

    def mark(target: Callable[..., Any]) -> Callable[..., Any]:
        target._silo_method = True  # type: ignore[attr-defined]
        return target

    return mark(function) if function is not None else mark


class Cls:
    """An `@app.cls` class: call it with constructor arguments for an object whose methods run remotely."""

    def __init__(self, app: App, user_cls: type, options: _Options) -> None:
        self.app = app
        self.user_cls = user_cls
        self.options = options
        self.methods = [name for name in dir(user_cls) if getattr(getattr(user_cls, name, None), "_silo_method", False)]
        app.registered_classes[user_cls.__qualname__] = self

    def __call__(self, *args: Any, **kwargs: Any) -> "_Object":
        return _Object(self, args, kwargs)


class _Object:
    """An `@app.cls` object as its caller holds it: its methods are remote functions."""

    def __init__(self, cls: Cls, args: Tuple[Any, ...], kwargs: Dict[str, Any]) -> None:
        self._cls = cls
        self._instance = (args, kwargs)
        self._local: Any = None

    def _local_object(self) -> Any:
        if self._local is None:
            self._local = self._cls.user_cls(*self._instance[0], **self._instance[1])
            for name in dir(self._cls.user_cls):
                if getattr(getattr(self._cls.user_cls, name, None), "_silo_enter", False):
                    getattr(self._local, name)()
        return self._local

    def __getattr__(self, name: str) -> Function:
        if name not in self._cls.methods:
            raise AttributeError(f"{self._cls.user_cls.__name__} has no @method {name}")
        raw = getattr(self._cls.user_cls, name)
        bound = lambda *a, **k: getattr(self._local_object(), name)(*a, **k)  # noqa: E731
        return Function(self._cls.app, raw, self._cls.options, container=self._cls.user_cls.__qualname__, instance=self._instance, bound=bound)


Stub = App
