"""The seeds' examples, run with only `import modal` changed to `import silo as modal`."""

from __future__ import annotations

import os
import pathlib
import signal
import subprocess
import sys
import time

import pytest

import silo

EXAMPLES = pathlib.Path(__file__).resolve().parents[1] / "examples"

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="containers need root")


def run_example(name: str, *arguments: str, env: "dict | None" = None) -> str:
    """What `python -m silo run EXAMPLE ARGUMENTS` printed; it must succeed."""
    ran = subprocess.run(
        [sys.executable, "-m", "silo", "run", str(EXAMPLES / name), *arguments], capture_output=True, text=True, timeout=600, env=env
    )
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


def test_background_commits_keep_a_stopped_training_loops_checkpoints_and_it_resumes(store: str) -> None:
    volume = silo.Volume.from_name("training-checkpoints")

    def saved() -> list:
        try:
            return sorted(int(e.path.split("-")[1].split(".")[0]) for e in volume.listdir("/checkpoints") if e.path.endswith(".bin"))
        except silo.NotFoundError:
            return []

    first = subprocess.Popen(
        [sys.executable, "-m", "silo", "run", str(EXAMPLES / "checkpoints.py"), "100000"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    # Background commits bring checkpoints into the volume while the loop runs.
    deadline = time.time() + 120
    while len(saved()) < 2 and first.poll() is None and time.time() < deadline:
        time.sleep(0.2)
    assert len(saved()) >= 2, first.stderr.read() if first.poll() is not None else "no checkpoint committed in time"
    first.send_signal(signal.SIGTERM)
    _, err = first.communicate(timeout=300)
    assert first.returncode == 128 + signal.SIGTERM, err
    kept = saved()
    # Every checkpoint up to the last, whole, including what the final commit at the stop added.
    assert kept == list(range(len(kept)))
    # (A checkpoint being written when the stop came is left as its `.partial` file, which the
    # final commit keeps too; the checkpoints themselves are renamed into place whole.)
    assert all(e.size == 1 << 20 for e in volume.listdir("/checkpoints") if e.path.endswith(".bin"))
    resumed = run_example("checkpoints.py", str(len(kept) + 3))
    assert resumed.splitlines() == [f"resumed at epoch {len(kept)}, trained to epoch {len(kept) + 2}"]



def test_the_concurrent_write_and_commit_example_commits_and_the_write_succeeds(store: str) -> None:
    assert run_example("concurrent_write.py").splitlines() == ["wrote other.file during the commit: hello"]
    big = [e for e in silo.Volume.from_name("my-volume").listdir("/") if e.path == "big.file"]
    assert big and big[0].size == 5 * 1024 * 1024 * 20


def test_the_first_example_persists_what_its_function_commits(store: str) -> None:
    assert run_example("first_volume.py").splitlines() == ["hello"]


def test_background_commits_persist_without_a_commit_call(store: str) -> None:
    run_example("background_commits.py")
    text = b"".join(silo.Volume.from_name("my-volume").read_file("dummy.txt"))
    assert text == b"I will be persisted without volume.commit()!"


def test_a_commit_with_a_file_still_open_succeeds_and_takes_it_as_it_is_on_disk(store: str) -> None:
    assert run_example("busy_volume.py").splitlines() == ["committed data.txt: b''"]


def test_the_fine_tuning_example_checkpoints_into_the_volume_and_resumes(store: str) -> None:
    env = dict(os.environ, PYTHONPATH=str(EXAMPLES / "standins"))
    assert run_example("finetune.py", "6", env=env).splitlines() == ["{'resumed_from': 0, 'global_step': 6}"]
    volume = silo.Volume.from_name("finetune-checkpoints")
    # Committed in the background and at the container's end: the last two checkpoints, whole.
    kept = sorted(e.path for e in volume.listdir("/model"))
    assert kept == ["model/checkpoint-4", "model/checkpoint-6"]
    assert [e.size for e in volume.listdir("/model/checkpoint-6") if e.path.endswith(".bin")] == [16 << 20]
    assert run_example("finetune.py", "10", env=env).splitlines() == ["{'resumed_from': 6, 'global_step': 10}"]
    assert sorted(e.path for e in volume.listdir("/model")) == ["model/checkpoint-10", "model/checkpoint-8"]
