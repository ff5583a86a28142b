# The Volume page's background commits example, as written there but for the import line: no
# volume.commit(), and the file is in the volume once the container has ended (its final commit).
# Run: python -m silo run python/examples/background_commits.py
import pathlib

import silo as modal

stub = modal.Stub()
volume = modal.Volume.persisted("my-volume")


@stub.function(volumes={"/vol/models": volume}, _allow_background_volume_commits=True)
def train():
    p = pathlib.Path("/vol/models/dummy.txt")
    p.write_text("I will be persisted without volume.commit()!")


@stub.local_entrypoint()
def main():
    train.remote()
