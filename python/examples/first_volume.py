# The Volume page's first example, as written there but for the import line (`from modal import ...`),
# with the write the page lost filled in. Run: python -m silo run python/examples/first_volume.py
from silo import Stub, Volume

stub = Stub()
vol = Volume.persisted("my-volume")


@stub.function(volumes={"/data": vol})
def run():
    with open("/data/xyz.txt", "w") as f:
        f.write("hello")
    vol.commit()  # Needed to make sure all changes are persisted


@stub.local_entrypoint()
def main():
    run.remote()
    print(b"".join(vol.read_file("xyz.txt")).decode())
