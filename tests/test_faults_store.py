"""Shared-tier faults under the real server: EIO/ESTALE reads, ENOSPC writes, a hung share.

The local tier (lmdb index, files in GOCACHE), the Server and the protocol
bytes are all real; the share is a real directory written by the real
``SharedStore``. The only fake is ``FaultyShared`` below, a documented
fault-injection subclass: a test cannot make a local disk answer EIO, ESTALE
or ENOSPC on demand, nor hang like a dead NFS server, so it raises or waits
where the real store would touch the share.
"""

from __future__ import annotations

import asyncio
import base64
import errno
import hashlib
import json
import os
import threading
import time
from collections import Counter as Tally
from collections.abc import Iterator
from pathlib import Path

import pytest

from gocachemgr.cacheprog.server import Server
from gocachemgr.index import Index
from gocachemgr.reporter import Reporter
from gocachemgr.stats import Counters, read_stats
from gocachemgr.store import ActionEntry
from gocachemgr.store.atomic import TEMP_PREFIX, AtomicFile
from gocachemgr.store.local import LocalStore
from gocachemgr.store.shared import SharedStore
from gocachemgr.store.tiered import TieredStore
from tests.helpers import warnings_in


def action_id(name: str) -> str:
    return hashlib.sha256(f"action {name}".encode()).hexdigest()


def body_of(name: str) -> bytes:
    return f"body of {name}\n".encode() * 50


def output_id(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


class FaultyShared(SharedStore):
    """FAKE for fault injection: the real SharedStore on a real dir, plus injected faults.

    ``read_errno`` makes reads fail, either on the action record or midway
    through copying the object (after part of the body reached the local temp
    file); ``write_errno`` makes uploads fail; ``read_delay``/``write_delay``
    make calls hang (until ``release`` is set) like an unresponsive NFS server.
    """

    def __init__(self, root: Path, *, read_errno: int | None = None, read_step: str = "record",
                 write_errno: int | None = None, read_delay: float = 0.0,
                 write_delay: float = 0.0) -> None:
        super().__init__(root)
        self.read_errno = read_errno
        self.read_step = read_step
        self.write_errno = write_errno
        self.read_delay = read_delay
        self.write_delay = write_delay
        self.release = threading.Event()
        self.calls: Tally[str] = Tally()

    @staticmethod
    def _raise(code: int) -> None:
        raise OSError(code, os.strerror(code))

    def get_action(self, action_id: str) -> ActionEntry | None:
        self.calls["get_action"] += 1
        if self.read_delay:
            self.release.wait(self.read_delay)
        if self.read_errno is not None and self.read_step == "record":
            self._raise(self.read_errno)
        return super().get_action(action_id)

    def read_object_into(self, action_id: str, entry: ActionEntry, dest: AtomicFile) -> bool:
        self.calls["read_object_into"] += 1
        if self.read_errno is not None and self.read_step == "object":
            dest.write(self.object_path(entry.output_id).read_bytes()[: entry.size // 2])
            self._raise(self.read_errno)
        return super().read_object_into(action_id, entry, dest)

    def put_object(self, output_id: str, size: int, src: str) -> bool:
        self.calls["put_object"] += 1
        if self.write_delay:
            self.release.wait(self.write_delay)
        if self.write_errno is not None:
            self._raise(self.write_errno)
        return super().put_object(output_id, size, src)

    def put_action(self, action_id: str, entry: ActionEntry) -> None:
        if self.write_errno is not None:
            self._raise(self.write_errno)
        super().put_action(action_id, entry)


def seed_share(root: Path, names: list[str], scratch: Path) -> None:
    """Publish entries with the real SharedStore, as another node would have."""
    store = SharedStore(root)
    store.open()
    scratch.mkdir(exist_ok=True)
    for name in names:
        body = body_of(name)
        src = scratch / name
        src.write_bytes(body)
        store.put_object(output_id(body), len(body), str(src))
        store.put_action(action_id(name), ActionEntry(output_id(body), len(body), 1_000_000_000))


class Node:
    """A real local tier (lmdb + GOCACHE) behind a TieredStore with the given shared tier."""

    def __init__(self, root: Path, shared: SharedStore | None) -> None:
        self.gocache = root / "gocache"
        self.index = Index(root / "index")
        self.local = LocalStore(gocache_dir=str(self.gocache), index=self.index)
        self.warnings: list[str] = []
        self.store = TieredStore(self.local, shared, counters=Counters(),
                                 reporter=Reporter(self.warnings.append))

    def warning_lines(self) -> list[str]:
        return warnings_in("".join(self.warnings))

    def stats(self) -> dict[str, int]:
        return read_stats(self.index)

    def temp_files(self) -> list[Path]:
        return list(self.gocache.glob(f"*/{TEMP_PREFIX}*"))

    def close(self) -> None:
        self.store.close()
        self.store.read_pool.shutdown(wait=True)  # join threads a fake held, before closing lmdb
        self.index.close()


class Served:
    """The real Server reading real protocol bytes that the test writes as it goes."""

    def __init__(self, store: TieredStore, *, shared_timeout: float = 5.0,
                 flush_timeout: float = 5.0) -> None:
        self.stream = asyncio.StreamReader()
        self.log: list[str] = []
        self.order: list[int] = []
        self._replies: dict[int, asyncio.Future[dict[str, object]]] = {}
        self.server = Server(store, self._send, shared_timeout=shared_timeout,
                             flush_timeout=flush_timeout, log=self.log.append)
        self.task = asyncio.ensure_future(self.server.serve(self.stream))

    def _future(self, request_id: int) -> asyncio.Future[dict[str, object]]:
        if request_id not in self._replies:
            self._replies[request_id] = asyncio.get_running_loop().create_future()
        return self._replies[request_id]

    def _send(self, message: bytes) -> None:
        reply = json.loads(message)
        future = self._future(reply["ID"])
        assert not future.done(), f"two replies for ID {reply['ID']}"
        self.order.append(reply["ID"])
        future.set_result(reply)

    def _request(self, message: dict[str, object]) -> None:
        self.stream.feed_data(json.dumps(message).encode() + b"\n\n")

    def get(self, request_id: int, name: str) -> None:
        self._request({"ID": request_id, "Command": "get", "ActionID": _b64(action_id(name))})

    def put(self, request_id: int, name: str) -> None:
        body = body_of(name)
        self._request({"ID": request_id, "Command": "put", "ActionID": _b64(action_id(name)),
                       "OutputID": _b64(output_id(body)), "BodySize": len(body)})
        self.stream.feed_data(json.dumps(base64.b64encode(body).decode()).encode() + b"\n\n")

    async def reply(self, request_id: int, timeout: float = 10.0) -> dict[str, object]:
        return await asyncio.wait_for(self._future(request_id), timeout)

    async def close(self, request_id: int) -> dict[str, object]:
        self._request({"ID": request_id, "Command": "close"})
        reply = await self.reply(request_id)
        assert await asyncio.wait_for(self.task, 10) == 0
        return reply


def _b64(hex_id: str) -> str:
    return base64.b64encode(bytes.fromhex(hex_id)).decode()


def assert_put_ok(node: Node, reply: dict[str, object], name: str) -> None:
    """The put succeeded: a DiskPath inside GOCACHE holding exactly the body."""
    assert "Err" not in reply, reply
    disk_path = Path(str(reply["DiskPath"]))
    assert disk_path.is_absolute() and disk_path.is_relative_to(node.gocache)
    assert disk_path.read_bytes() == body_of(name)


@pytest.fixture
def share(tmp_path: Path) -> Path:
    root = tmp_path / "share"
    root.mkdir()
    seed_share(root, ["a", "b", "c"], tmp_path / "scratch")
    return root


@pytest.fixture
def nodes() -> Iterator[list[Node]]:
    made: list[Node] = []
    yield made
    for node in made:
        try:
            node.close()
        except Exception:
            pass  # already closed by the test


# -- reads fail: every get is a miss, puts are untouched -----------------------------------


@pytest.mark.parametrize(
    ("code", "step"),
    [pytest.param(code, step, id=f"{errno.errorcode[code]}-{step}")
     for code in (errno.EIO, errno.ESTALE) for step in ("record", "object")],
)
def test_shared_read_errors_become_misses(code: int, step: str, share: Path, tmp_path: Path,
                                          nodes: list[Node]) -> None:
    shared = FaultyShared(share, read_errno=code, read_step=step)
    node = Node(tmp_path / "local", shared)
    nodes.append(node)

    async def scenario() -> None:
        served = Served(node.store)
        served.get(1, "a")
        served.get(2, "b")
        served.put(3, "new")
        assert await served.reply(1) == {"ID": 1, "Miss": True}
        assert await served.reply(2) == {"ID": 2, "Miss": True}
        assert_put_ok(node, await served.reply(3), "new")
        counters = node.store.counters.snapshot()
        assert counters["shared_errors"] == 2 and counters["misses"] == 2
        assert await served.close(4) == {"ID": 4}
        assert served.log == []

    asyncio.run(scenario())

    lines = node.warning_lines()
    assert len(lines) == 1, node.warnings
    assert "read" in lines[0] and "miss" in lines[0] and os.strerror(code) in lines[0]
    stats = node.stats()
    assert stats["shared_errors"] == 2
    assert stats["hits_shared"] == 0 and stats["corrupt"] == 0 and stats["degraded_runs"] == 0
    assert stats["uploads_done"] == 1 and stats["uploads_pending"] == 0  # writes still work
    assert shared.calls["read_object_into"] == (2 if step == "object" else 0)
    # A partly copied body never becomes a local object; nothing half-written is left.
    assert node.temp_files() == []
    assert not Path(node.local.object_path(output_id(body_of("a")))).exists()
    assert node.local.check() == []
    # An I/O error is not damage: the good shared files stay where they are.
    assert list((share / "quarantine").iterdir()) == []
    assert SharedStore(share).check() == []
    assert SharedStore(share).action_path(action_id("new")).exists()


# -- writes fail: puts stay local and pending, one warning, sync catches up -------------------


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EDQUOT], ids=errno.errorcode.get)
def test_full_share_keeps_puts_local_and_pending(code: int, share: Path, tmp_path: Path,
                                                 nodes: list[Node]) -> None:
    shared = FaultyShared(share, write_errno=code)
    node = Node(tmp_path / "local", shared)
    nodes.append(node)
    names = [f"new{i}" for i in range(6)]

    async def scenario() -> None:
        served = Served(node.store)
        served.get(1, "a")
        for i, name in enumerate(names, start=2):
            served.put(i, name)
        hit = await served.reply(1)
        assert Path(str(hit["DiskPath"])).read_bytes() == body_of("a")  # reads still work
        for i, name in enumerate(names, start=2):
            assert_put_ok(node, await served.reply(i), name)
        assert await served.close(100) == {"ID": 100}
        assert served.log == []

    asyncio.run(scenario())

    lines = node.warning_lines()
    assert len(lines) == 1, node.warnings
    assert "not writable" in lines[0] and os.strerror(code) in lines[0]
    stats = node.stats()
    assert stats["shared_errors"] >= 1 and stats["uploads_failed"] >= 1
    assert stats["uploads_done"] == 0 and stats["hits_shared"] == 1
    assert stats["uploads_pending"] == len(names)
    assert not any(SharedStore(share).action_path(action_id(n)).exists() for n in names)
    assert list((share / "tmp").iterdir()) == []

    # Later (`gocachemgr sync` does this): the share has room again, pending entries go up.
    node.close()
    nodes.remove(node)
    healthy = Node(tmp_path / "local", SharedStore(share))
    nodes.append(healthy)
    assert healthy.store.resume_pending(background=False) == len(names)
    assert healthy.store.flush_uploads(timeout=10)
    assert healthy.index.count_pending() == 0
    assert all(SharedStore(share).action_path(action_id(n)).exists() for n in names)
    assert SharedStore(share).check() == []


def test_read_and_write_faults_together_still_warn_once(share: Path, tmp_path: Path,
                                                        nodes: list[Node]) -> None:
    shared = FaultyShared(share, read_errno=errno.EIO, write_errno=errno.ENOSPC)
    node = Node(tmp_path / "local", shared)
    nodes.append(node)

    async def scenario() -> None:
        served = Served(node.store)
        for i, name in enumerate(["a", "b", "c", "x", "y"], start=1):
            served.get(i, name)
        for i in range(6, 12):
            served.put(i, f"new{i}")
        for i in range(1, 6):
            assert (await served.reply(i)).get("Miss") is True
        for i in range(6, 12):
            assert_put_ok(node, await served.reply(i), f"new{i}")
        await served.close(12)

    asyncio.run(scenario())

    assert len(node.warning_lines()) == 1, node.warnings
    stats = node.stats()
    assert stats["shared_errors"] >= 6  # five failed reads, at least one failed upload
    assert stats["uploads_pending"] == 6


# -- a hung share: dropped after one timeout, local hits never wait ----------------------------


def test_slow_share_is_dropped_after_one_timeout(share: Path, tmp_path: Path,
                                                 nodes: list[Node]) -> None:
    timeout = 0.5
    shared = FaultyShared(share, read_delay=60)
    node = Node(tmp_path / "local", shared)
    nodes.append(node)

    async def scenario() -> None:
        served = Served(node.store, shared_timeout=timeout)
        served.put(1, "local")
        assert_put_ok(node, await served.reply(1), "local")

        start = time.monotonic()
        served.get(2, "a")  # the share hangs on this one
        served.get(3, "local")  # a local hit, asked after it
        hit = await served.reply(3)
        assert time.monotonic() - start < timeout
        assert Path(str(hit["DiskPath"])).read_bytes() == body_of("local")
        assert await served.reply(2) == {"ID": 2, "Miss": True}
        waited = time.monotonic() - start
        assert timeout <= waited < timeout + 3
        assert served.order.index(3) < served.order.index(2), "local hit answered first"

        start = time.monotonic()
        served.get(4, "b")  # in the share, but the share is dropped for this run
        assert await served.reply(4) == {"ID": 4, "Miss": True}
        assert time.monotonic() - start < timeout / 2
        assert shared.calls["get_action"] == 1, "a dropped share is not asked again"
        assert not node.store.shared_readable and not node.store.shared_writable
        shared.release.set()  # let the stuck thread finish before the loop ends
        await served.close(5)

    asyncio.run(scenario())

    lines = node.warning_lines()
    assert len(lines) == 1, node.warnings
    assert "did not answer within" in lines[0]
    stats = node.stats()
    assert stats["degraded_runs"] == 1 and stats["misses"] == 2 and stats["hits_local"] == 1


def test_slow_uploads_hold_up_neither_puts_nor_close(share: Path, tmp_path: Path,
                                                     nodes: list[Node]) -> None:
    flush_timeout = 0.5
    shared = FaultyShared(share, write_delay=60)
    node = Node(tmp_path / "local", shared)
    nodes.append(node)

    async def scenario() -> None:
        served = Served(node.store, flush_timeout=flush_timeout)
        start = time.monotonic()
        served.put(1, "new")
        assert_put_ok(node, await served.reply(1), "new")
        assert time.monotonic() - start < 2, "a put must not wait for its upload"
        start = time.monotonic()
        assert await served.close(2) == {"ID": 2}
        assert flush_timeout <= time.monotonic() - start < flush_timeout + 3

    asyncio.run(scenario())

    assert node.index.count_pending() == 1  # kept for the next run / sync
    shared.release.set()  # the share answers again: the same upload completes
    assert node.store.flush_uploads(timeout=10)
    assert node.index.count_pending() == 0
    assert SharedStore(share).action_path(action_id("new")).exists()
