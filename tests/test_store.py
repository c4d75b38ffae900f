"""The stores on real files and a real lmdb: AtomicFile, SharedStore, Index, LocalStore."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import stat
from pathlib import Path

import pytest

from gocachemgr.errors import UserError
from gocachemgr.index import Index, IndexOpenError
from gocachemgr.reporter import Reporter
from gocachemgr.stats import Counters
from gocachemgr.store import ActionEntry
from gocachemgr.store import atomic as atomic_module
from gocachemgr.store.atomic import TEMP_PREFIX, AtomicFile, VerifyError, sha256_file
from gocachemgr.store.local import LocalStore
from gocachemgr.store.shared import FORMAT, SUBDIRS, SharedStore, SharedUnavailable
from gocachemgr.store.tiered import TieredStore


def hexsha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def entry_for(data: bytes, time_ns: int = 1_700_000_000_000_000_001) -> ActionEntry:
    return ActionEntry(hexsha(data), len(data), time_ns)


def temps(directory: Path) -> list[Path]:
    return sorted(directory.rglob(f"{TEMP_PREFIX}*"))


def enospc(*_: object, **__: object) -> int:
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


@pytest.fixture
def d(tmp_path: Path) -> Path:
    """An empty directory of the test's own (tmp_path also holds the isolated env)."""
    path = tmp_path / "d"
    path.mkdir()
    return path


# -- AtomicFile -----------------------------------------------------------------


def test_commit_publishes_the_bytes_and_removes_the_temp(d: Path) -> None:
    with AtomicFile(d) as f:
        assert f.path.parent == d and f.path.name.startswith(TEMP_PREFIX)
        f.write(b"hello ")
        f.write(memoryview(b"world"))
        assert f.size == 11 and f.sha256 == hexsha(b"hello world")
        f.verify(11, hexsha(b"hello world"))
        assert f.commit(d / "out") is True
    assert (d / "out").read_bytes() == b"hello world"
    assert temps(d) == []


@pytest.mark.parametrize("error", [ValueError, OSError, KeyboardInterrupt, SystemExit,
                                   type("Custom", (BaseException,), {})])
def test_temp_is_removed_on_any_exception(d: Path, error: type[BaseException]) -> None:
    with pytest.raises(error), AtomicFile(d) as f:
        f.write(b"partial")
        assert temps(d) == [f.path]
        raise error()
    assert temps(d) == []
    assert list(d.iterdir()) == []


def test_abort_removes_the_temp_and_is_idempotent(d: Path) -> None:
    f = AtomicFile(d)
    f.write(b"x")
    f.abort()
    f.abort()
    assert list(d.iterdir()) == []


def test_temp_is_created_exclusively(d: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Never write into a file (or through a symlink) that somebody planted at the temp name."""
    monkeypatch.setattr(atomic_module.secrets, "token_hex", lambda n: "fixed")
    name = f"{TEMP_PREFIX}{os.getpid()}-fixed"
    (d / name).write_bytes(b"someone else's")
    with pytest.raises(FileExistsError):
        AtomicFile(d)
    assert (d / name).read_bytes() == b"someone else's"

    (d / name).unlink()
    victim = d / "victim"
    victim.write_bytes(b"precious")
    (d / name).symlink_to(victim)
    with pytest.raises(FileExistsError):
        AtomicFile(d)
    assert victim.read_bytes() == b"precious"


def test_commit_without_replace_keeps_the_existing_file(d: Path) -> None:
    target = d / "obj"
    target.write_bytes(b"first")
    with AtomicFile(d) as f:
        f.write(b"second")
        assert f.commit(target, replace=False) is False
    assert target.read_bytes() == b"first"
    assert temps(d) == []

    with AtomicFile(d) as f:
        f.write(b"third")
        assert f.commit(target) is True  # replace=True: last writer wins
    assert target.read_bytes() == b"third"

    fresh = d / "fresh"
    with AtomicFile(d) as f:
        f.write(b"new")
        assert f.commit(fresh, replace=False) is True
    assert fresh.read_bytes() == b"new" and temps(d) == []


def test_verify_errors(d: Path) -> None:
    with AtomicFile(d) as f:
        f.write(b"abc")
        with pytest.raises(VerifyError, match="size"):
            f.verify(4, hexsha(b"abc"))
        with pytest.raises(VerifyError, match="sha256"):
            f.verify(3, hexsha(b"abd"))
        f.verify(3, hexsha(b"abc"))
    empty = AtomicFile(d)
    empty.verify(0, hexsha(b""))
    empty.abort()


def test_copy_from_streams_more_than_a_chunk(d: Path) -> None:
    data = os.urandom(atomic_module.CHUNK * 2 + 17)
    src = d / "src"
    src.write_bytes(data)
    with AtomicFile(d, fsync=True) as f, src.open("rb") as source:
        f.copy_from(source)
        f.verify(len(data), hexsha(data))
        f.commit(d / "dst")
    assert sha256_file(d / "dst") == (len(data), hexsha(data))


# -- ENOSPC and EIO injected in the atomic module (python-diskcache style) --------


def test_enospc_on_write_leaves_no_temp(d: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with monkeypatch.context() as m:
        m.setattr(atomic_module.os, "write", enospc)
        with pytest.raises(OSError) as err, AtomicFile(d) as f:
            f.write(b"does not fit")
    assert err.value.errno == errno.ENOSPC
    assert list(d.iterdir()) == []


def test_enospc_on_replace_leaves_no_temp_and_the_old_target(
    d: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = d / "target"
    target.write_bytes(b"old")
    f = AtomicFile(d)
    f.write(b"new")
    with monkeypatch.context() as m:
        m.setattr(atomic_module.os, "replace", enospc)
        with pytest.raises(OSError):
            f.commit(target)  # no `with`: commit itself must clean up
    assert target.read_bytes() == b"old"
    assert temps(d) == []


def test_failed_fsync_in_commit_leaves_no_temp(d: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """Regression: commit closed (and fsynced) the temp outside its cleanup."""
    f = AtomicFile(d, fsync=True)
    f.write(b"data")
    with monkeypatch.context() as m:
        m.setattr(atomic_module.os, "fsync", lambda fd: enospc())
        with pytest.raises(OSError):
            f.commit(d / "target")
    assert list(d.iterdir()) == []


def test_enospc_in_shared_upload_leaves_no_temp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shared = opened_share(tmp_path)
    body = os.urandom(1000)
    src = tmp_path / "src"
    src.write_bytes(body)
    for name in ("write", "fsync", "link"):  # objects are published by link, not rename
        with monkeypatch.context() as m:
            m.setattr(atomic_module.os, name, enospc)
            with pytest.raises(OSError):
                shared.put_object(hexsha(body), len(body), str(src))
        assert temps(shared.root) == [], name
        assert not shared.has_object(hexsha(body)), name
    assert shared.put_object(hexsha(body), len(body), str(src)) is True


# -- SharedStore ---------------------------------------------------------------------


def opened_share(tmp_path: Path, on_corrupt: list[str] | None = None) -> SharedStore:
    root = tmp_path / "share"
    root.mkdir(exist_ok=True)
    shared = SharedStore(root)
    if on_corrupt is not None:
        shared.on_corrupt = on_corrupt.append
    shared.open()
    return shared


def test_open_refuses_a_missing_root_and_does_not_create_it(tmp_path: Path) -> None:
    root = tmp_path / "not-mounted"
    with pytest.raises(SharedUnavailable, match="does not exist"):
        SharedStore(root).open()
    assert not root.exists()


def test_open_refuses_a_file(tmp_path: Path) -> None:
    root = tmp_path / "file"
    root.write_text("x")
    with pytest.raises(SharedUnavailable, match="not a directory"):
        SharedStore(root).open()


def test_open_refuses_a_foreign_format(tmp_path: Path) -> None:
    root = tmp_path / "share"
    root.mkdir()
    (root / "FORMAT").write_text("someone-else 7\n")
    with pytest.raises(SharedUnavailable, match="someone-else 7"):
        SharedStore(root).open()
    assert sorted(p.name for p in root.iterdir()) == ["FORMAT"]  # nothing laid out


def test_open_initialises_an_empty_dir(tmp_path: Path) -> None:
    shared = opened_share(tmp_path)
    assert (shared.root / "FORMAT").read_text() == f"{FORMAT}\n"
    for name in SUBDIRS:
        mode = os.lstat(shared.root / name).st_mode
        assert stat.S_ISDIR(mode), name
        assert mode & stat.S_ISGID, f"{name} must be setgid so files keep the share's group"
    assert temps(shared.root) == []
    SharedStore(shared.root).open()  # an initialised share opens again as it is
    assert (shared.root / "FORMAT").read_text() == f"{FORMAT}\n"


def test_open_refuses_a_symlinked_subdir(tmp_path: Path) -> None:
    shared = opened_share(tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    os.rmdir(shared.root / "objects")
    (shared.root / "objects").symlink_to(elsewhere)
    with pytest.raises(SharedUnavailable, match="symlink"):
        SharedStore(shared.root).open()


def test_put_object_publishes_verified_and_skips_existing(tmp_path: Path) -> None:
    shared = opened_share(tmp_path)
    body = b"object body"
    src = tmp_path / "src"
    src.write_bytes(body)
    assert shared.put_object(hexsha(body), len(body), str(src)) is True
    path = shared.object_path(hexsha(body))
    assert path.read_bytes() == body and path.parent.name == hexsha(body)[:2]
    assert stat.S_IMODE(path.parent.stat().st_mode) & stat.S_ISGID
    inode = path.stat().st_ino

    src.write_bytes(b"would not even be read")
    assert shared.put_object(hexsha(body), len(body), str(src)) is False
    assert path.read_bytes() == body and path.stat().st_ino == inode
    assert temps(shared.root) == []


def test_put_object_never_publishes_a_damaged_body(tmp_path: Path) -> None:
    shared = opened_share(tmp_path)
    src = tmp_path / "src"
    src.write_bytes(b"damaged")
    with pytest.raises(VerifyError):
        shared.put_object(hexsha(b"original"), len(b"damaged"), str(src))
    assert not shared.has_object(hexsha(b"original"))
    assert temps(shared.root) == []


def test_action_record_round_trip(tmp_path: Path) -> None:
    shared = opened_share(tmp_path)
    action_id = hexsha(b"action")
    assert shared.get_action(action_id) is None
    entry = entry_for(b"body", time_ns=-5)
    shared.put_action(action_id, entry)
    assert shared.get_action(action_id) == entry
    record = json.loads(shared.action_path(action_id).read_bytes())
    assert record["v"] == 1 and record["writer"].endswith(f":{os.getpid()}")
    newer = entry_for(b"other")
    shared.put_action(action_id, newer)  # last writer wins
    assert shared.get_action(action_id) == newer
    assert temps(shared.root) == []


GOOD = {"v": 1, "output_id": "a" * 64, "size": 3, "time_ns": 5}


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"{not json", id="not-json"),
        pytest.param(b"[1,2]", id="list"),
        pytest.param(b'"text"', id="string"),
        pytest.param(json.dumps({**GOOD, "v": 2}).encode(), id="version"),
        pytest.param(json.dumps({k: v for k, v in GOOD.items() if k != "v"}).encode(), id="no-v"),
        pytest.param(json.dumps({**GOOD, "output_id": "../../etc"}).encode(), id="path-id"),
        pytest.param(json.dumps({**GOOD, "output_id": "A" * 64}).encode(), id="upper-hex"),
        pytest.param(json.dumps({**GOOD, "size": -1}).encode(), id="negative-size"),
        pytest.param(json.dumps({**GOOD, "size": "x"}).encode(), id="size-text"),
        pytest.param(json.dumps({**GOOD, "size": None}).encode(), id="size-null"),
        # Regressions: these escaped as OverflowError, or parsed and then broke packing.
        pytest.param(json.dumps({**GOOD, "size": float("inf")}).encode(), id="size-infinity"),
        pytest.param(json.dumps({**GOOD, "size": 2**64}).encode(), id="size-over-int64"),
        pytest.param(json.dumps({**GOOD, "time_ns": 1e30}).encode(), id="time-over-int64"),
        pytest.param(json.dumps({**GOOD, "time_ns": -(2**64)}).encode(), id="time-under"),
        pytest.param(json.dumps({**GOOD, "x": "y" * 5000}).encode(), id="too-big"),
        pytest.param(b"\xff\xfe\x00", id="binary"),
    ],
)
def test_malformed_record_is_a_miss_and_quarantined(tmp_path: Path, raw: bytes) -> None:
    corrupt: list[str] = []
    shared = opened_share(tmp_path, corrupt)
    action_id = hexsha(b"a")
    path = shared.action_path(action_id)
    path.parent.mkdir(parents=True)
    path.write_bytes(raw)
    assert shared.get_action(action_id) is None
    assert not path.exists()
    moved = list((shared.root / "quarantine").iterdir())
    assert len(moved) == 1 and moved[0].read_bytes() == raw
    assert len(corrupt) == 1 and "malformed" in corrupt[0]


def test_good_record_bounds_are_accepted(tmp_path: Path) -> None:
    shared = opened_share(tmp_path)
    action_id = hexsha(b"a")
    for record in ({**GOOD, "size": 2**63 - 1, "time_ns": 2**63 - 1},
                   {**GOOD, "size": 0, "time_ns": -(2**63)}):
        path = shared.action_path(action_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(json.dumps(record).encode())
        entry = shared.get_action(action_id)
        assert entry == ActionEntry("a" * 64, record["size"], record["time_ns"])
        assert ActionEntry.unpack(entry.pack()) == entry  # fits the index


def put_entry(shared: SharedStore, tmp_path: Path, body: bytes, action: bytes = b"a") -> tuple[
        str, ActionEntry]:
    src = tmp_path / "src"
    src.write_bytes(body)
    entry = entry_for(body)
    shared.put_object(entry.output_id, entry.size, str(src))
    shared.put_action(hexsha(action), entry)
    return hexsha(action), entry


def test_read_object_into_verifies(tmp_path: Path) -> None:
    shared = opened_share(tmp_path)
    action_id, entry = put_entry(shared, tmp_path, os.urandom(5000))
    dest_dir = tmp_path / "dest"
    dest_dir.mkdir()
    with AtomicFile(dest_dir) as dest:
        assert shared.read_object_into(action_id, entry, dest) is True
        dest.commit(dest_dir / "copy")
    assert sha256_file(dest_dir / "copy") == (entry.size, entry.output_id)


@pytest.mark.parametrize("damage", ["flip", "truncate", "append"])
def test_damaged_object_is_detected_and_quarantined(tmp_path: Path, damage: str) -> None:
    corrupt: list[str] = []
    shared = opened_share(tmp_path, corrupt)
    action_id, entry = put_entry(shared, tmp_path, os.urandom(4000))
    path = shared.object_path(entry.output_id)
    data = bytearray(path.read_bytes())
    if damage == "flip":
        data[1234] ^= 0x01
    elif damage == "truncate":
        del data[3000:]
    else:
        data += b"\x00"
    path.write_bytes(bytes(data))
    dest_dir = tmp_path / "dest"
    dest_dir.mkdir()
    with AtomicFile(dest_dir) as dest:
        assert shared.read_object_into(action_id, entry, dest) is False
    assert list(dest_dir.iterdir()) == []
    assert not path.exists()
    assert [p.read_bytes() for p in (shared.root / "quarantine").iterdir()] == [bytes(data)]
    assert len(corrupt) == 1 and "object damaged" in corrupt[0]
    assert shared.action_path(action_id).exists()  # the record was right; the object lied


def test_record_with_the_wrong_size_is_quarantined_not_the_object(tmp_path: Path) -> None:
    corrupt: list[str] = []
    shared = opened_share(tmp_path, corrupt)
    body = b"twelve bytes"
    action_id, entry = put_entry(shared, tmp_path, body)
    lying = ActionEntry(entry.output_id, entry.size + 1, entry.time_ns)
    shared.put_action(action_id, lying)
    dest_dir = tmp_path / "dest"
    dest_dir.mkdir()
    with AtomicFile(dest_dir) as dest:
        assert shared.read_object_into(action_id, lying, dest) is False
    assert shared.object_path(entry.output_id).read_bytes() == body
    assert not shared.action_path(action_id).exists()
    assert len(corrupt) == 1 and "record size wrong" in corrupt[0]


@pytest.mark.parametrize("bad", ["", "../../../../etc/passwd", "A" * 64, "a" * 63, "a" * 65,
                                 "g" * 64, "a" * 63 + "\n", "/" + "a" * 63])
def test_refuses_non_hex_ids(tmp_path: Path, bad: str) -> None:
    shared = opened_share(tmp_path)
    for call in (shared.object_path, shared.action_path, shared.get_action, shared.has_object):
        with pytest.raises(ValueError, match="non-hex"):
            call(bad)
    src = tmp_path / "src"
    src.write_bytes(b"")
    with pytest.raises(ValueError):
        shared.put_object(bad, 0, str(src))
    with pytest.raises(ValueError):
        shared.put_action(bad, entry_for(b""))


def test_does_not_follow_a_symlink_planted_at_an_object_path(tmp_path: Path) -> None:
    shared = opened_share(tmp_path)
    secret = tmp_path / "secret"
    secret.write_bytes(b"not for the cache")
    entry = entry_for(b"not for the cache")  # even the "right" hash must not be read through
    path = shared.object_path(entry.output_id)
    path.parent.mkdir()
    path.symlink_to(secret)
    shared.put_action(hexsha(b"a"), entry)
    dest_dir = tmp_path / "dest"
    dest_dir.mkdir()
    with pytest.raises(OSError) as err, AtomicFile(dest_dir) as dest:
        shared.read_object_into(hexsha(b"a"), entry, dest)
    assert err.value.errno == errno.ELOOP
    assert list(dest_dir.iterdir()) == []

    # Through the tiered store it is a miss, and nothing reaches the local tier.
    index = Index(tmp_path / "index")
    tiered = TieredStore(LocalStore(str(tmp_path / "gocache"), index), SharedStore(shared.root),
                         counters=Counters(), reporter=Reporter(None))
    try:
        assert tiered.fetch_shared(hexsha(b"a")) is None
        assert tiered.counters.snapshot().get("shared_errors") == 1
        assert not Path(tiered.local.object_path(entry.output_id)).exists()
        assert index.get_action(hexsha(b"a")) is None
    finally:
        tiered.close()
        index.close()
    assert secret.read_bytes() == b"not for the cache"


def test_does_not_follow_symlinks_at_a_record_or_a_shard_dir(tmp_path: Path) -> None:
    shared = opened_share(tmp_path)
    outside = tmp_path / "outside"
    outside.mkdir()
    fake = outside / "record"
    fake.write_text(json.dumps(GOOD))
    action_id = hexsha(b"a")
    shared.action_path(action_id).parent.mkdir()
    shared.action_path(action_id).symlink_to(fake)
    with pytest.raises(OSError) as err:
        shared.get_action(action_id)
    assert err.value.errno == errno.ELOOP

    # A planted shard directory: neither read through nor written through.
    body = b"shard"
    shard = shared.object_path(hexsha(body)).parent
    shard.symlink_to(outside, target_is_directory=True)
    (outside / hexsha(body)).write_bytes(body)
    with pytest.raises(OSError), AtomicFile(tmp_path) as dest:
        shared.read_object_into(action_id, entry_for(body), dest)
    src = tmp_path / "src"
    src.write_bytes(body)
    (outside / hexsha(body)).unlink()
    with pytest.raises(OSError):
        shared.put_object(hexsha(body), len(body), str(src))
    assert sorted(p.name for p in outside.iterdir()) == ["record"]
    assert fake.read_text() == json.dumps(GOOD)


def test_check_reports_damage(tmp_path: Path) -> None:
    shared = opened_share(tmp_path)
    _, entry = put_entry(shared, tmp_path, b"fine")
    assert shared.check() == []
    shared.object_path(entry.output_id).write_bytes(b"fine?")
    shared.put_action(hexsha(b"dangling"), entry_for(b"never uploaded"))
    (shared.tmp_dir / f"{TEMP_PREFIX}1-abc").write_bytes(b"")
    problems = shared.check()
    assert any("damaged object" in p for p in problems)
    assert any("missing object" in p for p in problems)
    assert any("temp file" in p for p in problems)


# -- Index ----------------------------------------------------------------------------


def test_index_pending_queue(tmp_path: Path) -> None:
    index = Index(tmp_path / "index")
    try:
        a, b, c = hexsha(b"a"), hexsha(b"b"), hexsha(b"c")
        index.put_action(a, entry_for(b"1"), pending=True)
        index.put_action(b, entry_for(b"2"), pending=False)
        index.put_action(c, entry_for(b"3"), pending=True)
        assert dict(index.pending()) == {a: entry_for(b"1"), c: entry_for(b"3")}
        assert index.count_pending() == 2
        index.done_pending(a)
        index.done_pending(a)  # twice is fine
        assert dict(index.pending()) == {c: entry_for(b"3")}
        assert index.get_action(a) == entry_for(b"1")  # the record stays
        assert dict(index.actions()) == {a: entry_for(b"1"), b: entry_for(b"2"),
                                         c: entry_for(b"3")}
        index.delete_action(b)
        assert index.get_action(b) is None
        # Iterating the snapshot while writing does not deadlock lmdb.
        for action_id, _ in index.pending():
            index.done_pending(action_id)
        assert index.count_pending() == 0
    finally:
        index.close()


def test_index_counters_add_and_zero(tmp_path: Path) -> None:
    index = Index(tmp_path / "index")
    try:
        assert index.counters() == {}
        index.add_counters({"gets": 3, "misses": 0})
        index.add_counters({"gets": 2, "puts": 1})
        index.add_counters({"puts": -1})
        assert index.counters() == {"gets": 5, "puts": 0}
        counters = Counters()
        counters.add("hits_local")
        counters.add("hit_bytes_local", 10)
        counters.flush(index)
        counters.flush(index)  # already moved: adds nothing
        assert index.counters()["hit_bytes_local"] == 10
        index.zero_counters()
        assert index.counters() == {}
        index.add_counters({"gets": 1})
        assert index.counters() == {"gets": 1}
    finally:
        index.close()


def test_index_reopens_with_its_data(tmp_path: Path) -> None:
    index = Index(tmp_path / "index")
    index.put_action(hexsha(b"a"), entry_for(b"x"), pending=True)
    index.add_counters({"puts": 7})
    index.close()
    again = Index(tmp_path / "index")
    try:
        assert again.get_action(hexsha(b"a")) == entry_for(b"x")
        assert again.count_pending() == 1
        assert again.counters() == {"puts": 7}
    finally:
        again.close()


def test_index_that_cannot_open_is_a_user_error(tmp_path: Path) -> None:
    (tmp_path / "index").write_text("not a dir")
    with pytest.raises(IndexOpenError) as err:
        Index(tmp_path / "index")
    assert isinstance(err.value, UserError) and "local disk" in str(err.value)


# -- LocalStore -------------------------------------------------------------------------


def test_local_store_commit_get_and_check(tmp_path: Path) -> None:
    index = Index(tmp_path / "index")
    local = LocalStore(str(tmp_path / "gocache"), index)
    try:
        body = b"compiled"
        entry = entry_for(body)
        f = local.new_object_file(entry.output_id)
        assert f.path.parent == Path(local.object_path(entry.output_id)).parent
        f.write(body)
        path = local.commit_object(f, entry)
        local.record(hexsha(b"a"), entry, pending=False)
        hit = local.get(hexsha(b"a"))
        assert hit is not None and hit.disk_path == path and hit.entry == entry
        assert local.check() == []

        wrong = local.new_object_file(entry.output_id)
        wrong.write(b"not it")
        with pytest.raises(VerifyError):
            local.commit_object(wrong, entry)
        wrong.abort()
        assert Path(path).read_bytes() == body

        Path(path).write_bytes(b"compiles")  # same size, other bytes
        assert len(local.check()) == 1
        Path(path).write_bytes(b"short")
        assert local.get(hexsha(b"a")) is None  # incomplete body: a miss
        os.unlink(path)
        assert local.get(hexsha(b"a")) is None and local.check() == []
        assert temps(tmp_path / "gocache") == []
    finally:
        index.close()
