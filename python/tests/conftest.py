"""Fixtures: the built `silo`, and a store to run against, embedded and through `silo serve`."""

from __future__ import annotations

import os
import pathlib
import subprocess
from typing import Iterator

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def silo_binary() -> str:
    binary = os.environ.get("SILO_BINARY") or str(REPO / ".build" / "debug" / "silo")
    if not os.access(binary, os.X_OK):
        pytest.fail(f"no silo binary at {binary}: build it first (swift build --product silo) or set SILO_BINARY")
    return binary


class Server:
    def __init__(self, binary: str, data: pathlib.Path) -> None:
        self.process = subprocess.Popen(
            [binary, "serve", "--data", str(data), "--listen", "127.0.0.1:0", "--log-level", "warning"],
            stdout=subprocess.PIPE,
            stderr=open(str(data) + ".log", "wb"),
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline().decode()
        if "listening on " not in line:
            self.process.kill()
            raise RuntimeError(f"silo serve did not start: {line!r}; see {data}.log")
        self.url = line.split("listening on ", 1)[1].strip()
        self.token = (data / "admin-token").read_text().strip()

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=60)


@pytest.fixture(scope="session")
def server(silo_binary: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = Server(silo_binary, tmp_path_factory.mktemp("server") / "data")
    yield running
    running.stop()


@pytest.fixture(params=["embedded", "server"])
def store(request: pytest.FixtureRequest, silo_binary: str, tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """Each test runs against a fresh SILO_HOME on the embedded store, and again through a server (a
    fresh SILO_HOME beside it; volume names made unique by the test)."""
    monkeypatch.setenv("SILO_BINARY", silo_binary)
    monkeypatch.setenv("SILO_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("SILO_SERVER", raising=False)
    monkeypatch.delenv("SILO_TOKEN", raising=False)
    if request.param == "server":
        running: Server = request.getfixturevalue("server")
        monkeypatch.setenv("SILO_SERVER", running.url)
        monkeypatch.setenv("SILO_TOKEN", running.token)
    return str(request.param)
