# The Volume page's model store, as written there but for the import line, with what it leaves to
# the reader filled in: a stand-in for train(...) and load_model (a generated "model" of a few MiB
# saved as files), and a NotFound of its own. Training commits; inference in a container that started
# before the training finds the model only after its reload. Run: python -m silo run python/examples/model_store.py
import json
import os

import silo as modal

stub = modal.Stub()
volume = modal.Volume.persisted("model-store")
model_store_path = "/vol/models"


class NotFound(Exception):
    pass


class Model:
    def __init__(self, weights: bytes, scale: int) -> None:
        self.weights, self.scale = weights, scale

    def run(self, request: int) -> int:
        return request * self.scale + len(self.weights)


def train(model_id: str) -> Model:
    return Model(os.urandom(4 << 20), scale=len(model_id))


def save(path: str, model_id: str, model: Model) -> None:
    os.makedirs(f"{path}/{model_id}", exist_ok=True)
    with open(f"{path}/{model_id}/weights.bin", "wb") as f:
        f.write(model.weights)
    with open(f"{path}/{model_id}/config.json", "w") as f:
        json.dump({"scale": model.scale}, f)


def load_model(path: str, model_id: str) -> Model:
    try:
        with open(f"{path}/{model_id}/config.json") as f:
            config = json.load(f)
        with open(f"{path}/{model_id}/weights.bin", "rb") as f:
            return Model(f.read(), config["scale"])
    except FileNotFoundError:
        raise NotFound(model_id)


@stub.function(volumes={model_store_path: volume}, gpu="any")
def run_training(model_id: str):
    model = train(model_id)
    save(model_store_path, model_id, model)
    volume.commit()  # Persist changes


@stub.function(volumes={model_store_path: volume})
def inference(model_id: str, request):
    try:
        model = load_model(model_store_path, model_id)
    except NotFound:
        volume.reload()  # Fetch latest changes
        model = load_model(model_store_path, model_id)
    return model.run(request)


@stub.local_entrypoint()
def main():
    model_id = f"model-{os.getpid()}"
    try:
        inference.remote(model_id, 1)  # its container starts; no such model yet
    except NotFound:
        print("not found before training")
    run_training.remote(model_id)
    print("answer:", inference.remote(model_id, 10))  # same container: reloads, then loads
