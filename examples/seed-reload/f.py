# The seed's `f`: runs in its own container, writes bar.txt into the volume at /root/foo, commits.
import pathlib
import subprocess

p = pathlib.Path("/root/foo/bar.txt")
p.write_text("hello")
print(f"Created {p=}")
subprocess.run(["silo", "volume", "commit", "/root/foo"], check=True, capture_output=True)  # volume.commit()
print(f"Committed {p=}")
