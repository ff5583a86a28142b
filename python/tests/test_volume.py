"""The `silo` package's Volume against both stores: Modal's calls, and history, diff and versions."""

from __future__ import annotations

import asyncio
import io
import os
import pathlib
import subprocess
import sys
import uuid

import pytest

import silo

SOURCE = str(pathlib.Path(silo.__file__).resolve().parents[1])


@pytest.fixture
def name(store: str) -> str:
    return f"py-{uuid.uuid4().hex[:10]}"


def tree(volume: silo.Volume, version: "int | None" = None) -> dict:
    return {entry.path: entry.type for entry in volume.iterdir("/", recursive=True, version=version)}


def read(volume: silo.Volume, path: str, version: "int | None" = None) -> bytes:
    return b"".join(volume.read_file(path, version=version))


def test_volumes_are_found_made_listed_renamed_and_deleted(name: str) -> None:
    with pytest.raises(silo.NotFoundError):
        silo.Volume.from_name(name).info()
    volume = silo.Volume.from_name(name, create_if_missing=True)
    # Made once: asking again finds it.
    assert silo.Volume.from_name(name, create_if_missing=True).info().latest_version == 0
    info = volume.info()
    assert (info.name, info.kind, info.latest_version) == (name, "snapshot", 0)
    assert name in [v.name for v in silo.Volume.objects.list()]
    with pytest.raises(FileExistsError):
        silo.Volume.objects.create(name)
    silo.Volume.objects.create(name, allow_existing=True)
    silo.Volume.rename(name, name + "-b")
    assert silo.Volume.persisted(name + "-b").info().name == name + "-b"
    silo.Volume.objects.delete(name + "-b")
    with pytest.raises(silo.NotFoundError):
        silo.Volume.objects.delete(name + "-b")
    silo.Volume.objects.delete(name + "-b", allow_missing=True)


def test_a_batch_upload_is_one_commit_and_refuses_to_overwrite_without_force(name: str, tmp_path: pathlib.Path) -> None:
    local = tmp_path / "local"
    (local / "sub").mkdir(parents=True)
    (local / "a.txt").write_bytes(b"alpha")
    (local / "sub" / "b.txt").write_bytes(b"beta")
    (tmp_path / "model.bin").write_bytes(os.urandom(3 << 20))
    volume = silo.Volume.from_name(name, create_if_missing=True)
    with volume.batch_upload() as batch:
        batch.put_file(tmp_path / "model.bin", "/models/model.bin")
        batch.put_file(io.BytesIO(b"from a file object"), "/notes.txt")
        batch.put_file(str(tmp_path / "model.bin"), "/copies/")
        batch.put_directory(local, "/data")
    assert volume.info().latest_version == 1
    assert tree(volume) == {
        "copies": silo.FileEntryType.DIRECTORY,
        "copies/model.bin": silo.FileEntryType.FILE,
        "data": silo.FileEntryType.DIRECTORY,
        "data/a.txt": silo.FileEntryType.FILE,
        "data/sub": silo.FileEntryType.DIRECTORY,
        "data/sub/b.txt": silo.FileEntryType.FILE,
        "models": silo.FileEntryType.DIRECTORY,
        "models/model.bin": silo.FileEntryType.FILE,
        "notes.txt": silo.FileEntryType.FILE,
    }
    assert read(volume, "/models/model.bin") == (tmp_path / "model.bin").read_bytes()
    assert read(volume, "notes.txt") == b"from a file object"
    # Again: nothing is put, the whole upload is refused, and no version is made.
    (local / "a.txt").write_bytes(b"alpha, changed")
    with pytest.raises(FileExistsError, match=r"batch_upload\(force=True\)"):
        with volume.batch_upload() as batch:
            batch.put_directory(local, "/data")
    assert volume.info().latest_version == 1
    with volume.batch_upload(force=True) as batch:
        batch.put_directory(local, "/data")
    assert read(volume, "/data/a.txt") == b"alpha, changed"
    # A block that raises puts nothing.
    with pytest.raises(RuntimeError):
        with volume.batch_upload() as batch:
            batch.put_file(io.BytesIO(b"x"), "/never.txt")
            raise RuntimeError("stopped")
    assert "never.txt" not in tree(volume)


def test_entries_reads_versions_history_and_diff(name: str, tmp_path: pathlib.Path) -> None:
    volume = silo.Volume.from_name(name, create_if_missing=True)
    with volume.batch_upload() as batch:
        batch.put_file(io.BytesIO(b"one"), "/d/f.txt")
    with volume.batch_upload(force=True) as batch:
        batch.put_file(io.BytesIO(b"two, longer"), "/d/f.txt")
        batch.put_file(io.BytesIO(b"g"), "/g.txt")
    entries = {e.path: e for e in volume.listdir("/d")}
    assert entries["d/f.txt"].size == len(b"two, longer") and entries["d/f.txt"].mtime > 0
    assert [e.path for e in volume.listdir("/")] == ["d", "g.txt"]
    assert read(volume, "/d/f.txt") == b"two, longer"
    assert read(volume, "/d/f.txt", version=1) == b"one"
    assert tree(volume, version=1) == {"d": silo.FileEntryType.DIRECTORY, "d/f.txt": silo.FileEntryType.FILE}
    assert read(silo.Volume.from_name(name, version=1), "/d/f.txt") == b"one"
    out = io.BytesIO()
    assert volume.read_file_into_fileobj("/g.txt", out) == 1 and out.getvalue() == b"g"
    assert [v.version for v in volume.history()] == [0, 1, 2]
    assert volume.history()[2].files_added == 1 and volume.history()[2].files_changed == 1
    assert sorted((c.kind, c.path) for c in volume.diff(1, 2)) == [("added", "/g.txt"), ("modified", "/d/f.txt")]
    with pytest.raises(silo.NotFoundError):
        read(volume, "/missing")


def test_files_are_removed_and_copied(name: str) -> None:
    volume = silo.Volume.from_name(name, create_if_missing=True)
    with volume.batch_upload() as batch:
        batch.put_file(io.BytesIO(b"a"), "/a.txt")
        batch.put_file(io.BytesIO(b"b"), "/dir/b.txt")
    volume.copy_files(["/a.txt", "/dir/b.txt"], "/copies")
    assert read(volume, "/copies/a.txt") == b"a" and read(volume, "/copies/b.txt") == b"b"
    volume.remove_file("/a.txt")
    with pytest.raises(silo.InvalidError):
        volume.remove_file("/dir")
    volume.remove_file("/dir", recursive=True)
    assert set(tree(volume)) == {"copies", "copies/a.txt", "copies/b.txt"}
    with pytest.raises(silo.InvalidError):
        volume.read_only().remove_file("/copies/a.txt")
    assert volume.with_mount_options(read_only=True).is_read_only


def test_an_ephemeral_volume_goes_with_its_block(store: str) -> None:
    with silo.Volume.ephemeral() as volume:
        with volume.batch_upload() as batch:
            batch.put_file(io.BytesIO(b"scratch"), "/s.txt")
        assert read(volume, "/s.txt") == b"scratch"
        made = volume.name
    assert made not in [v.name for v in silo.Volume.objects.list()]


def test_every_call_has_an_aio_form(name: str) -> None:
    async def main() -> list:
        volume = silo.Volume.from_name(name, create_if_missing=True)
        with volume.batch_upload() as batch:
            batch.put_file(io.BytesIO(b"x"), "/x.txt")
        listed, info = await asyncio.gather(volume.listdir.aio("/"), volume.info.aio())
        assert info.latest_version == 1
        return [e.path for e in listed]

    assert asyncio.run(main()) == ["x.txt"]


def run_in_container(name: str, path: str, program: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [os.environ["SILO_BINARY"], "run", "-v", f"{name}:{path}", "--", sys.executable, "-c", program],
        capture_output=True,
        text=True,
    )


@pytest.mark.skipif(os.geteuid() != 0, reason="containers need root")
def test_commit_and_reload_act_on_the_containers_own_mount(name: str) -> None:
    path = f"/silo-py-{uuid.uuid4().hex[:8]}"
    program = f"""
import asyncio, sys
sys.path.insert(0, {SOURCE!r})
import silo
volume = silo.Volume.from_name({name!r})
open({path!r} + "/first.txt", "w").write("first")
volume.commit()
open({path!r} + "/second.txt", "w").write("second")
asyncio.run(volume.commit.aio())
print(sorted(e.path for e in volume.listdir("/")))
"""
    ran = run_in_container(name, path, program)
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.strip() == "['first.txt', 'second.txt']"
    volume = silo.Volume.from_name(name)
    assert [v.version for v in volume.history()] == [0, 1, 2]

    # reload(): a container that started before another commit sees it once it reloads.
    program = f"""
import sys
sys.path.insert(0, {SOURCE!r})
import silo
volume = silo.Volume.from_name({name!r})
before = sorted(__import__("os").listdir({path!r}))
print(before, flush=True)
sys.stdin.readline()
volume.reload()
print(sorted(__import__("os").listdir({path!r})))
"""
    container = subprocess.Popen(
        [os.environ["SILO_BINARY"], "run", "-v", f"{name}:{path}", "--", sys.executable, "-c", program],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    assert container.stdout is not None and container.stdin is not None
    assert container.stdout.readline().strip() == "['first.txt', 'second.txt']"
    with volume.batch_upload() as batch:
        batch.put_file(io.BytesIO(b"third"), "/third.txt")
    container.stdin.write("go\n")
    container.stdin.flush()
    out, err = container.communicate(timeout=120)
    assert container.returncode == 0, err
    assert out.strip() == "['first.txt', 'second.txt', 'third.txt']"
    # Outside a container, there is no mount to act on.
    with pytest.raises(silo.InvalidError):
        volume.commit()


def test_shared_volumes_have_the_same_calls_and_no_commit(name: str, tmp_path: pathlib.Path) -> None:
    cache = silo.NetworkFileSystem.from_name(name, create_if_missing=True)
    assert cache.info().kind == "shared"
    assert name in [v.name for v in silo.NetworkFileSystem.objects.list()]
    assert name not in [v.name for v in silo.Volume.objects.list()]
    # A snapshot volume of the name is not a shared one.
    with pytest.raises(FileExistsError):
        silo.Volume.from_name(name, create_if_missing=True)
    assert cache.write_file("/model/weights.bin", io.BytesIO(b"w" * 1000)) == 1000
    (tmp_path / "config.json").write_text("{}")
    cache.add_local_file(tmp_path / "config.json")
    cache.write_file("/model/weights.bin", io.BytesIO(b"again"))
    assert read(cache, "/model/weights.bin") == b"again"
    assert set(tree(cache)) == {"config.json", "model", "model/weights.bin"}
    with pytest.raises(silo.InvalidError):
        cache.commit()
    assert silo.SharedVolume().persist(name).info().kind == "shared"
    with silo.NetworkFileSystem.ephemeral() as scratch:
        assert scratch.info().kind == "shared"
