# The seed's `g(reload)`: runs in a reused container; sees bar.txt only after a reload.
import pathlib
import subprocess
import sys

p = pathlib.Path("/root/foo/bar.txt")
if len(sys.argv) > 1 and sys.argv[1] == "--reload":
    subprocess.run(["silo", "volume", "reload", "/root/foo"], check=True, capture_output=True)  # volume.reload()
if p.exists():
    print(f"{p=} contains '{p.read_text()}'")
else:
    print(f"{p=} does not exist!")
