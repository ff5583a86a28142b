"""Times a function run by Silo's Python package against the same function run by `python3 -c`
(a fresh interpreter, the usual way to run a little Python), in the same run: a cold `.remote()`
(its container started, the worker importing the file, the call), a warm `.remote()` round trip,
and `.map` over 100 inputs, with how many containers served it and how many calls overlapped.
Usage: remote.py ROUNDS (run by scripts/bench/remote.sh)."""

import os
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import remote_app  # noqa: E402

rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 3


def best(samples):
    return min(samples)


baseline = []
for _ in range(rounds):
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-c", "import sys; sys.path.insert(0, sys.argv[1]); import remote_app; print(remote_app.work.local(1))", os.path.dirname(os.path.abspath(__file__))],
        check=True, capture_output=True,
    )
    baseline.append(time.perf_counter() - start)

inside = []
for _ in range(50):
    start = time.perf_counter()
    remote_app.work.local(1)
    inside.append(time.perf_counter() - start)

cold, warm, mapped = [], [], []
workers, overlaps = 0, 0
for _ in range(rounds):
    with remote_app.stub.run():
        start = time.perf_counter()
        remote_app.work.remote(0)
        cold.append(time.perf_counter() - start)
        trips = []
        for i in range(50):
            start = time.perf_counter()
            remote_app.work.remote(i)
            trips.append(time.perf_counter() - start)
        warm.append(statistics.median(trips))
        start = time.perf_counter()
        results = list(remote_app.work.map(range(100)))
        mapped.append(time.perf_counter() - start)
        assert [r[0] for r in results] == list(range(100))
        workers = max(workers, len({r[2] for r in results}))
        spans = sorted((r[3], r[4]) for r in results)
        overlaps = max(overlaps, sum(1 for a, b in zip(spans, spans[1:]) if b[0] < a[1]))

base = best(baseline)
print(f"| what | time | over `python3 -c` |")
print(f"| --- | --- | --- |")
print(f"| the function by `python3 -c` (a new interpreter) | {base * 1000:.1f} ms | 1.00× |")
print(f"| the function itself, called in this process (median of 50) | {statistics.median(inside) * 1000:.2f} ms | {statistics.median(inside) / base:.3f}× |")
print(f"| cold `.remote()`: container start, worker import, call | {best(cold) * 1000:.1f} ms | {best(cold) / base:.2f}× |")
print(f"| warm `.remote()` round trip (median of 50) | {best(warm) * 1000:.2f} ms | {best(warm) / base:.3f}× |")
print(f"| `.map` over 100 inputs (warm containers where started) | {best(mapped) * 1000:.0f} ms | {best(mapped) / base:.2f}× |")
print(f"\n`.map` over 100 inputs: served by {workers} containers (one worker each); {overlaps} of its calls began before the one before them ended")
