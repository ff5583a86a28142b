# The Volume page's background commits, on a training loop: checkpoints written to the volume are
# committed every few seconds and once more when the container ends, with no volume.commit() in the
# code. Stopped (SIGTERM) mid-run, a second run resumes from the last checkpoint kept. A stand-in
# "epoch" writes a generated checkpoint of 1 MiB.
# Run: python -m silo run python/examples/checkpoints.py EPOCHS
import os
import pathlib
import time

import silo as modal

stub = modal.Stub()
volume = modal.Volume.persisted("training-checkpoints")


@stub.function(volumes={"/vol/models": volume}, _allow_background_volume_commits=True)
def train(epochs: int) -> str:
    directory = pathlib.Path("/vol/models/checkpoints")
    directory.mkdir(parents=True, exist_ok=True)
    saved = sorted(int(p.stem.split("-")[1]) for p in directory.glob("epoch-*.bin"))
    start = saved[-1] + 1 if saved else 0
    for epoch in range(start, epochs):
        time.sleep(0.05)  # the epoch's work
        partial = directory / f".epoch-{epoch}.partial"
        partial.write_bytes(os.urandom(1 << 20))
        partial.rename(directory / f"epoch-{epoch}.bin")  # a checkpoint is whole or absent
    return f"resumed at epoch {start}, trained to epoch {epochs - 1}"


@stub.local_entrypoint()
def main(epochs: str = "10"):
    print(train.remote(int(epochs)))
