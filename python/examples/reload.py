# The seed's reload example (the Volume page), as written there but for the import line, with the
# lines the page lost filled in. Run: python -m silo run python/examples/reload.py
import pathlib

import silo as modal

stub = modal.Stub()
volume = modal.Volume.persisted("my-volume")
p = pathlib.Path("/root/foo/bar.txt")


@stub.function(volumes={"/root/foo": volume})
def f():
    p.write_text("hello")
    print(f"Created {p=}")
    volume.commit()  # Persist changes
    print(f"Committed {p=}")


@stub.function(volumes={"/root/foo": volume})
def g(reload: bool = False):
    if reload:
        volume.reload()  # Fetch latest changes
    if p.exists():
        print(f"{p=} contains '{p.read_text()}'")
    else:
        print(f"{p=} does not exist!")


@stub.local_entrypoint()
def main():
    g.remote()  # 1. container for `g` starts
    f.remote()  # 2. container for `f` starts, commits file
    g.remote(reload=False)  # 3. reuses container for `g`, no reload
    g.remote(reload=True)   # 4. reuses container, but reloads to see file.
