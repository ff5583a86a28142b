"""An app for the tests: functions on a volume, state kept in a warm worker, a timeout."""

import os
import time

import silo as modal

stub = modal.Stub("counter")
volume = modal.Volume.from_name(os.environ["SILO_TEST_VOLUME"])
calls = []


class Point:
    def __init__(self, x: int) -> None:
        self.x = x


@stub.function(volumes={os.environ["SILO_TEST_MOUNT"]: volume}, secret=modal.Secret.from_dict({"GREETING": "hello"}))
def write(name: str, text: str) -> dict:
    calls.append(name)
    with open(os.path.join(os.environ["SILO_TEST_MOUNT"], name), "w") as f:
        f.write(text)
    volume.commit()
    return {"pid": os.getpid(), "calls": len(calls), "greeting": os.environ.get("GREETING"), "remote": os.environ.get("SILO_IS_REMOTE")}


@stub.function(volumes={os.environ["SILO_TEST_MOUNT"]: volume})
def read(name: str) -> str:
    volume.reload()
    with open(os.path.join(os.environ["SILO_TEST_MOUNT"], name)) as f:
        return f.read()


@stub.function(concurrency_limit=2)
def square(point: Point, rendezvous: str = "") -> tuple:
    """x², and the worker's pid; with `rendezvous`, waits until another call has arrived there too,
    which only calls running at once can do."""
    start = time.time()
    if rendezvous:
        open(os.path.join(rendezvous, str(point.x)), "w").close()
        deadline = time.time() + 60
        while len(os.listdir(rendezvous)) < 2:
            if time.time() > deadline:
                raise TimeoutError("no other call arrived: the calls did not run at once")
            time.sleep(0.01)
    return point.x * point.x, os.getpid(), start, time.time()


@stub.function()
async def doubled(x: int) -> int:
    return 2 * x


@stub.function()
def fails(message: str) -> None:
    raise ValueError(message)


@stub.function(timeout=1)
def slow() -> None:
    time.sleep(30)


@stub.local_entrypoint()
def main(name: str = "from-entrypoint") -> None:
    print(write.remote(name, "written by the entrypoint")["remote"])


@stub.cls(volumes={os.environ["SILO_TEST_MOUNT"]: volume})
class Model:
    def __init__(self, factor: int) -> None:
        self.factor = factor
        self.entered = 0

    @modal.enter()
    def load(self) -> None:
        self.entered += 1

    @modal.method()
    def predict(self, x: int) -> tuple:
        return x * self.factor, id(self), os.getpid(), self.entered
