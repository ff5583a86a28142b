"""The persistent worker inside a function's container: it imports the user's file once, as Modal
does, then answers calls read from standard input until it ends. Module globals (and whatever a
function keeps in them) live from call to call.

The protocol, both ways: an 8-byte big-endian length, then a pickle. A call is
`(qualified name, args, kwargs, instance)`: `instance` is None for a function, and for a method of
an `@app.cls` class the arguments its object is made with, `(args, kwargs)`: the worker makes each
such object once (running its `@enter` methods) and keeps it for later calls; an answer is `("ok", result, stdout, stderr)` or `("error",
exception, traceback text, stdout, stderr)`, with what the call printed, which the caller prints in
turn before it returns (so a program's output keeps its order). What is written to the descriptors
themselves (a subprocess's output, say) goes to standard error, never into the answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import io
import inspect
import os
import pickle
import struct
import sys
import traceback
from typing import IO, Any, Optional

MODULE = "__silo_main__"


def read_message(stream: IO[bytes]) -> Optional[Any]:
    header = stream.read(8)
    if len(header) < 8:
        return None
    (length,) = struct.unpack(">Q", header)
    body = stream.read(length)
    if len(body) < length:
        return None
    return pickle.loads(body)


def write_message(stream: IO[bytes], message: Any) -> None:
    body = pickle.dumps(message)
    stream.write(struct.pack(">Q", len(body)) + body)
    stream.flush()


def load(path: str) -> Any:
    """The user's file as a module: named so its `if __name__ == "__main__":` block does not run, and
    standing in for `__main__` so that what the caller pickled from its `__main__` resolves here."""
    spec = importlib.util.spec_from_file_location(MODULE, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[MODULE] = module
    sys.modules["__main__"] = module
    sys.path.insert(0, os.path.dirname(os.path.abspath(path)))
    spec.loader.exec_module(module)
    return module


def resolve(module: Any, qualified: str) -> Any:
    target = module
    for part in qualified.split("."):
        target = getattr(target, part)
    return getattr(target, "local", target)


def method_of(module: Any, qualified: str, instance: Any, objects: dict) -> Any:
    """The bound method `Class.name` of the object made with `instance`'s arguments."""
    class_name, _, name = qualified.rpartition(".")
    key = (class_name, pickle.dumps(instance))
    if key not in objects:
        made = getattr(module, class_name)
        made = getattr(made, "user_cls", made)
        args, kwargs = instance
        target = made(*args, **kwargs)
        for attribute in dir(made):
            if getattr(getattr(made, attribute, None), "_silo_enter", False):
                getattr(target, attribute)()
        objects[key] = target
    return getattr(objects[key], name)


def main() -> None:
    answers = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # the user's prints go to standard error
    calls = sys.stdin.buffer
    os.environ["SILO_IS_REMOTE"] = "1"
    module = load(sys.argv[1])
    objects: dict = {}
    while True:
        call = read_message(calls)
        if call is None:
            return
        qualified, args, kwargs, instance = call
        out, err = io.StringIO(), io.StringIO()
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                function = resolve(module, qualified) if instance is None else method_of(module, qualified, instance, objects)
                result = function(*args, **kwargs)
                if inspect.isawaitable(result):
                    result = asyncio.run(_awaited(result))
            write_message(answers, ("ok", result, out.getvalue(), err.getvalue()))
        except BaseException as error:  # the caller gets it, re-raised with this traceback
            text = traceback.format_exc()
            try:
                pickle.dumps(error)
            except Exception:
                error = RuntimeError(f"{type(error).__name__}: {error}")
            write_message(answers, ("error", error, text, out.getvalue(), err.getvalue()))
            if isinstance(error, (KeyboardInterrupt, SystemExit)):
                return


async def _awaited(awaitable: Any) -> Any:
    return await awaitable


if __name__ == "__main__":
    main()
