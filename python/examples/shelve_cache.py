# The SharedVolume page's basic example: a shelve disk cache on a shared volume, as written there but
# for the import line, with what the page lost filled in (the stub; the cache population) and the
# flufl.lock lock it recommends against concurrent writers. Four containers compute overlapping keys.
# Run: python -m silo run python/examples/shelve_cache.py
import shelve
from datetime import timedelta

from flufl.lock import Lock

import silo as modal

stub = modal.Stub()
volume = modal.SharedVolume()


@stub.function(shared_volumes={"/root/cache": volume}, concurrency_limit=4)
def expensive_computation(key: str):
    with Lock("/root/cache/shelve.lock", lifetime=timedelta(seconds=600)):
        with shelve.open("/root/cache/shelve") as cache:
            cached_val = cache.get(key)
        if cached_val is not None:
            return cached_val
        # cache miss; populate value
        value = sum(ord(c) for c in key) ** 2
        with shelve.open("/root/cache/shelve") as cache:
            cache[key] = value
        return value


@stub.local_entrypoint()
def main():
    keys = [f"key-{i % 12}" for i in range(40)]
    results = list(expensive_computation.map(keys))
    wrong = [k for k, v in zip(keys, results) if v != sum(ord(c) for c in k) ** 2]
    print(f"{len(results)} results, {len(set(keys))} keys, {len(wrong)} wrong")
