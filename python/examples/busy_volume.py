# The Volume page's "volume busy" example, as written there but for the import line, with the commit
# the page lost filled in. On Modal's legacy backend the commit fails with "volume busy"; on Silo it
# succeeds and takes the file as it is on disk at that moment: Python's write is still in its buffer,
# so the committed file is empty. Close (or flush) before committing to keep what was written.
# Run: python -m silo run python/examples/busy_volume.py
import silo as modal

stub = modal.Stub()
volume = modal.Volume.persisted("my-volume")


@stub.function(volumes={"/vol": volume}, _allow_background_volume_commits=False)
def seed_volume():
    f = open("/vol/data.txt", "w")
    f.write("hello world") # file not closed after writing
    volume.commit()
    f.close()  # closed file too late


@stub.local_entrypoint()
def main():
    seed_volume.remote()
    print(f"committed data.txt: {b''.join(volume.read_file('data.txt'))!r}")
