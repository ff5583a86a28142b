"""The function the remote benchmark calls (scripts/bench/remote.py)."""

import os
import time

import silo as modal

stub = modal.Stub("bench")


@stub.function(concurrency_limit=4)
def work(x: int) -> tuple:
    start = time.time()
    total = sum(i * i for i in range(200_000))  # a little work, about 10 ms
    return x, total, os.getpid(), start, time.time()
