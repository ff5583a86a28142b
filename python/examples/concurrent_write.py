# The Volume page's concurrent write-and-commit example, as written there but for the import line
# and the file's size (100 MB where the page writes 2.5 GB). On Modal the second write fails with
# PermissionError while the commit runs; on Silo a mount stays usable during a commit: the write
# succeeds, and the commit keeps the big file.
# Run: python -m silo run python/examples/concurrent_write.py
import asyncio
import os

import aiofiles

import silo as modal

stub = modal.Stub()
volume = modal.Volume.persisted("my-volume")


@stub.function(image=modal.Image.debian_slim().pip_install("aiofiles"), volumes={"/vol": volume})
async def concurrent_write_and_commit():
    async with aiofiles.open("/vol/big.file", "w") as f:
        await f.write("hello" * 1024 * 1024 * 20)

    async def f():
        await asyncio.sleep(0.1)  # Wait for the commit to start
        # On Modal this fails with PermissionError, the commit being in progress.
        async with aiofiles.open("/vol/other.file", "w") as f:
            await f.write("hello")

    await asyncio.gather(volume.commit.aio(), f())
    return f"wrote other.file during the commit: {open('/vol/other.file').read()}"


@stub.local_entrypoint()
def main():
    print(concurrent_write_and_commit.remote())
