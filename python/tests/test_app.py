"""Functions in Silo containers: a warm worker per container, volumes attached, results and errors
across, map over containers at once, and `python -m silo run`."""

from __future__ import annotations

import importlib.util
import os
import pathlib
import subprocess
import sys
import uuid

import pytest

import silo

APP = pathlib.Path(__file__).parent / "apps" / "counter.py"

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="containers need root")


@pytest.fixture
def app(store: str, monkeypatch: pytest.MonkeyPatch):
    name = f"py-app-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("SILO_TEST_VOLUME", name)
    monkeypatch.setenv("SILO_TEST_MOUNT", f"/silo-{name}")
    silo.Volume.objects.create(name)
    spec = importlib.util.spec_from_file_location("counter", APP)
    module = importlib.util.module_from_spec(spec)
    sys.modules["counter"] = module
    spec.loader.exec_module(module)
    yield module
    module.stub.stop()
    del sys.modules["counter"]


def test_remote_calls_reuse_one_warm_worker_with_the_volume_attached(app, tmp_path: pathlib.Path) -> None:
    with app.stub.run():
        first = app.write.remote("a.txt", "one")
        second = app.write.remote("b.txt", "two")
        # One worker, kept: the same process, its module state carried from call to call.
        assert first["pid"] == second["pid"] and (first["calls"], second["calls"]) == (1, 2)
        assert first["greeting"] == "hello" and first["remote"] == "1"
        # The secret went by the worker's environment, not into the container's record.
        records = pathlib.Path(os.environ["SILO_HOME"], "containers")
        assert not any("GREETING" in p.read_text() for p in records.glob("*.json"))
        # Another function's container reloads and sees what the first committed.
        assert app.read.remote("b.txt") == "two"
        assert app.doubled.remote(21) == 42
        with pytest.raises(ValueError, match="from the container"):
            app.fails.remote("from the container")
        with pytest.raises(silo.FunctionTimeoutError):
            app.slow.remote()
        # map: the inputs' order, objects of the user's module pickled both ways.
        assert [r[0] for r in app.square.map([app.Point(x) for x in range(6)])] == [x * x for x in range(6)]
        # Two calls meet at a rendezvous only if they run at once: two containers, two workers.
        rendezvous = tmp_path / "rendezvous"
        rendezvous.mkdir()
        results = list(app.square.map([app.Point(7), app.Point(8)], [str(rendezvous)] * 2))
        assert {r[0] for r in results} == {49, 64} and results[0][1] != results[1][1]
        assert max(r[2] for r in results) < min(r[3] for r in results)  # the intervals overlap
        assert app.doubled.spawn(5).get(timeout=120) == 10
    volume = silo.Volume.from_name(os.environ["SILO_TEST_VOLUME"])
    assert b"".join(volume.read_file("/a.txt")) == b"one"
    assert silo.Volume.from_name(os.environ["SILO_TEST_VOLUME"]).history()[-1].version == 2
    # The containers are gone with the app's run.
    listed = subprocess.run([os.environ["SILO_BINARY"], "container", "list"], capture_output=True, text=True).stdout
    assert "silo-py-app" not in listed and len(listed.strip().splitlines()) <= 1


def test_python_m_silo_run_calls_the_files_local_entrypoint(store: str) -> None:
    name = f"py-run-{uuid.uuid4().hex[:8]}"
    silo.Volume.objects.create(name)
    env = dict(os.environ, SILO_TEST_VOLUME=name, SILO_TEST_MOUNT=f"/silo-{name}")
    ran = subprocess.run([sys.executable, "-m", "silo", "run", f"{APP}::main", "entry.txt"], env=env, capture_output=True, text=True, timeout=600)
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.strip() == "1"
    assert b"".join(silo.Volume.from_name(name).read_file("/entry.txt")) == b"written by the entrypoint"
    wrong = subprocess.run([sys.executable, "-m", "silo", "run", f"{APP}::nothing"], env=env, capture_output=True, text=True)
    assert wrong.returncode == 2 and "entrypoints: main" in wrong.stderr


def test_a_class_keeps_one_object_per_arguments_in_its_container(app) -> None:
    with app.stub.run():
        doubling = app.Model(2)
        first = doubling.predict.remote(5)
        second = doubling.predict.remote(6)
        # One object, made (and entered) once, in one worker.
        assert (first[0], second[0]) == (10, 12)
        assert first[1] == second[1] and first[2] == second[2] and second[3] == 1
        tripling = app.Model(3).predict.remote(5)
        assert tripling[0] == 15 and tripling[1] != first[1] and tripling[2] == first[2]
        assert [r[0] for r in doubling.predict.map(range(4))] == [0, 2, 4, 6]
        assert app.Model(4).predict.local(2)[0] == 8
        with pytest.raises(AttributeError):
            doubling.load
