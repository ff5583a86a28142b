"""Measures shared file systems the way the seed's SharedVolume users load them, each target through
two mount points (two mounts of one volume; for the local disk, one directory twice).

Usage: shared.py ROUNDS NAME=A,B [NAME=A,B ...]   (root: drops the page cache)
Prints one table; every figure is the best of ROUNDS, and ratios are against the first target.
"""

import fcntl
import os
import statistics
import sys
import time

SMALL_FILES = 1000
SMALL_SIZE = 4096
BIG_SIZE = 1 << 30
CHUNK = 1 << 20
LOCK_ROUNDS = 500
VISIBILITY_ROUNDS = 20


def drop_caches():
    os.sync()
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("3\n")


def small_files(root, fsync):
    """Files per second: create, write 4 KiB, (fsync,) close."""
    os.makedirs(root)
    data = os.urandom(SMALL_SIZE)
    start = time.perf_counter()
    for i in range(SMALL_FILES):
        fd = os.open(f"{root}/f{i}", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        os.write(fd, data)
        if fsync:
            os.fsync(fd)
        os.close(fd)
    return SMALL_FILES / (time.perf_counter() - start)


def big_write(path):
    """Seconds to write 1 GiB, fsync and close."""
    chunk = os.urandom(CHUNK)
    start = time.perf_counter()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    for _ in range(BIG_SIZE // CHUNK):
        os.write(fd, chunk)
    os.fsync(fd)
    os.close(fd)
    return time.perf_counter() - start


def big_read(path):
    """Seconds to read a whole file."""
    start = time.perf_counter()
    fd = os.open(path, os.O_RDONLY)
    total = 0
    while True:
        got = os.read(fd, CHUNK)
        if not got:
            break
        total += len(got)
    os.close(fd)
    assert total == BIG_SIZE, f"{path}: read {total} bytes"
    return time.perf_counter() - start


def lock_round_trips(path):
    """flock LOCK_EX then LOCK_UN, per second."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    start = time.perf_counter()
    for _ in range(LOCK_ROUNDS):
        fcntl.flock(fd, fcntl.LOCK_EX)
        fcntl.flock(fd, fcntl.LOCK_UN)
    elapsed = time.perf_counter() - start
    os.close(fd)
    return LOCK_ROUNDS / elapsed


def visibility(a, b, tag):
    """Seconds from a close through A until an open through B reads what was closed: median, max."""
    delays = []
    for i in range(VISIBILITY_ROUNDS):
        text = f"{tag} {i} {time.time_ns()}".encode()
        with open(f"{a}/seen", "wb") as f:
            f.write(text)
        closed = time.perf_counter()
        while True:
            try:
                with open(f"{b}/seen", "rb") as f:
                    if f.read() == text:
                        break
            except FileNotFoundError:
                pass
            time.sleep(0.001)
        delays.append(time.perf_counter() - closed)
    return statistics.median(delays), max(delays)


def main():
    rounds = int(sys.argv[1])
    targets = []
    for spec in sys.argv[2:]:
        name, paths = spec.split("=", 1)
        a, b = paths.split(",")
        targets.append((name, a, b))
    rows = {}

    def record(what, name, value, better):
        rows.setdefault(what, {})
        best = rows[what].get(name)
        if best is None or (value > best if better == "higher" else value < best):
            rows[what][name] = value

    for r in range(rounds):
        for name, a, b in targets:
            record("small files/s, write+close", name, small_files(f"{a}/small-{r}", False), "higher")
            record("small files/s, write+fsync+close", name, small_files(f"{a}/small-sync-{r}", True), "higher")
            big = f"{a}/big-{r}"
            record("1 GiB write+fsync+close, s", name, big_write(big), "lower")
            drop_caches()
            record("1 GiB read after close, same mount, cold, s", name, big_read(big), "lower")
            drop_caches()
            record("1 GiB read through the other mount, first, s", name, big_read(f"{b}/big-{r}"), "lower")
            drop_caches()
            record("1 GiB read through the other mount, again, s", name, big_read(f"{b}/big-{r}"), "lower")
            os.unlink(big)
            record("flock+unlock round trips/s", name, lock_round_trips(f"{a}/lock"), "higher")
            median, worst = visibility(a, b, name)
            record("close on A seen by open on B, median s", name, median, "lower")
            record("close on A seen by open on B, worst s", name, worst, "lower")

    names = [name for name, _, _ in targets]
    baseline = names[0]
    print("| what | " + " | ".join(names) + " |")
    print("| --- |" + " --- |" * len(names))
    for what, values in rows.items():
        cells = []
        for name in names:
            value = values[name]
            cell = f"{value:.0f}" if value >= 100 else f"{value:.4g}"
            if name != baseline and values[baseline] > 0:
                cell += f" ({value / values[baseline]:.2f}×)"
            cells.append(cell)
        print(f"| {what} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
