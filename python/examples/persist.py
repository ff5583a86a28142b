# The SharedVolume page's persist example, as written there but for the import line, with what it
# lost filled in: the function decorator and an inference that needs a model in TRANSFORMERS_CACHE
# (a stand-in writes a generated "checkpoint" there when it is missing, where the page's would
# download one). The second run finds it. Run twice: python -m silo run python/examples/persist.py
import os

import silo as modal

volume = modal.SharedVolume().persist("model-cache-vol")
stub = modal.Stub()

CACHE_DIR = "/cache"


@stub.function(
    shared_volumes={CACHE_DIR: volume},
    # Set the transformers cache directory to the volume we created above.
    secret=modal.Secret.from_dict({"TRANSFORMERS_CACHE": CACHE_DIR}),
)
def run_inference():
    checkpoint = os.path.join(os.environ["TRANSFORMERS_CACHE"], "checkpoint.bin")
    if os.path.exists(checkpoint):
        return f"found the checkpoint ({os.path.getsize(checkpoint)} bytes)"
    with open(checkpoint, "wb") as f:  # the download, in a stand-in
        f.write(os.urandom(8 << 20))
    return "downloaded the checkpoint"


@stub.local_entrypoint()
def main():
    print(run_inference.remote())
