"""The one backend: the `silo` command, run with the caller's environment.

Whatever store the command line uses (the embedded one under SILO_HOME, or a server named by
SILO_SERVER and SILO_TOKEN) this package uses too, so both behave alike. Output that is parsed is
always asked for as JSON.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from typing import IO, Any, Iterator, Optional, Sequence

from .exception import error_for

CHUNK = 1 << 20


def binary() -> str:
    """The `silo` executable: $SILO_BINARY, else the one on PATH."""
    found = os.environ.get("SILO_BINARY") or shutil.which("silo")
    if not found:
        raise FileNotFoundError(
            "the silo command is not on PATH; build it (swift build --product silo) and add .build/debug to PATH, or set SILO_BINARY"
        )
    return found


def run(arguments: Sequence[str], *, input: Optional[bytes] = None) -> bytes:
    """Runs `silo ARGUMENTS` and returns its standard output; raises the error it reports."""
    done = subprocess.run([binary(), *arguments], input=input, capture_output=True)
    if done.returncode != 0:
        raise error_for(done.returncode, done.stderr.decode(errors="replace"))
    return done.stdout


def run_json(arguments: Sequence[str]) -> Any:
    return json.loads(run([*arguments, "--json"]))


def stream(arguments: Sequence[str], chunk: int = CHUNK) -> Iterator[bytes]:
    """Runs `silo ARGUMENTS` and yields its standard output in chunks as it comes."""
    process = subprocess.Popen([binary(), *arguments], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert process.stdout is not None and process.stderr is not None
    finished = False
    try:
        while True:
            data = process.stdout.read(chunk)
            if not data:
                break
            yield data
        errors = process.stderr.read()
        status = process.wait()
        finished = True
        if status != 0:
            raise error_for(status, errors.decode(errors="replace"))
    finally:
        if not finished:
            process.kill()
            process.wait()
        process.stdout.close()
        process.stderr.close()


def copy_out(arguments: Sequence[str], fileobj: IO[bytes]) -> int:
    """Writes the output of `silo ARGUMENTS` to `fileobj`; returns how many bytes."""
    total = 0
    for data in stream(arguments):
        fileobj.write(data)
        total += len(data)
    return total
