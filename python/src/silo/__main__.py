"""`python -m silo run FILE.py[::NAME]`: runs the file's local entrypoint (NAME, or its only one)
inside `app.run()`, as `modal run` does."""

from __future__ import annotations

import importlib.util
import os
import signal
import sys

from ._worker import MODULE
from .app import App


def main(argv: list) -> int:
    if len(argv) < 2 or argv[0] != "run":
        print("usage: python -m silo run FILE.py[::ENTRYPOINT] [ARGS...]", file=sys.stderr)
        return 2
    target, _, name = argv[1].partition("::")
    spec = importlib.util.spec_from_file_location(MODULE, target)
    if spec is None or spec.loader is None:
        print(f"silo: error: cannot import {target}", file=sys.stderr)
        return 2
    module = importlib.util.module_from_spec(spec)
    # The file is what its workers import under the same name, so what it pickles resolves there.
    sys.modules[MODULE] = module
    sys.path.insert(0, os.path.dirname(os.path.abspath(target)))
    spec.loader.exec_module(module)
    apps = [value for value in vars(module).values() if isinstance(value, App)]
    entrypoints = {key: (app, function) for app in apps for key, function in app.entrypoints.items()}
    if name:
        chosen = entrypoints.get(name)
    elif len(entrypoints) == 1:
        chosen = next(iter(entrypoints.values()))
    else:
        chosen = None
    if chosen is None:
        names = ", ".join(sorted(entrypoints)) or "none"
        print(f"silo: error: name the local entrypoint to run as {target}::NAME (entrypoints: {names})", file=sys.stderr)
        return 2
    app, function = chosen
    # Stopped (SIGTERM, as a preempted job is), the app still ends its containers: their final
    # background commits keep what the functions wrote.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    with app.run():
        function(*argv[2:])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
