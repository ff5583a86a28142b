"""The seeds' examples, run with only `import modal` changed to `import silo as modal`."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

import pytest

EXAMPLES = pathlib.Path(__file__).resolve().parents[1] / "examples"

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="containers need root")


def run_example(name: str) -> str:
    ran = subprocess.run([sys.executable, "-m", "silo", "run", str(EXAMPLES / name)], capture_output=True, text=True, timeout=600)
    assert ran.returncode == 0, ran.stderr
    return ran.stdout


def test_the_reload_example_prints_what_the_page_says(store: str) -> None:
    # The page's output, but for its last line's quotes, which its own f-string prints.
    assert run_example("reload.py").splitlines() == [
        "p=PosixPath('/root/foo/bar.txt') does not exist!",
        "Created p=PosixPath('/root/foo/bar.txt')",
        "Committed p=PosixPath('/root/foo/bar.txt')",
        "p=PosixPath('/root/foo/bar.txt') does not exist!",
        "p=PosixPath('/root/foo/bar.txt') contains 'hello'",
    ]


def test_the_shelve_cache_under_flufl_lock_fills_from_four_containers(store: str) -> None:
    assert run_example("shelve_cache.py").splitlines() == ["40 results, 12 keys, 0 wrong"]
    # The app's shared volume went with the app.
    listed = subprocess.run([os.environ["SILO_BINARY"], "nfs", "list"], capture_output=True, text=True).stdout
    assert "ephemeral-" not in listed


def test_the_model_store_serves_a_model_trained_after_its_container_started(store: str) -> None:
    out = run_example("model_store.py").splitlines()
    assert out[0] == "not found before training"
    # The model's answer: 10 × its scale (the length of "model-PID") plus its 4 MiB of weights.
    answer = int(out[1].removeprefix("answer: "))
    assert (answer - (4 << 20)) % 10 == 0 and 7 <= (answer - (4 << 20)) // 10 <= 13


def test_a_persisted_shared_volume_keeps_the_cache_between_runs(store: str) -> None:
    assert run_example("persist.py").splitlines() == ["downloaded the checkpoint"]
    assert run_example("persist.py").splitlines() == [f"found the checkpoint ({8 << 20} bytes)"]
