"""What each workspace's builds used: the action ids prefetch copies ahead of go.

go's lookups are nearly serial, so every entry that has to come from NFS adds
its round trips to the build. The cacheprog helper notes the action ids a go
command ended up with (hits and puts) and keeps them per workspace, in lmdb and
on the share; the next go command there (on this node or a fresh CI runner)
copies those entries into the local tier in parallel before go asks.

The workspace key must be the same on every node, so it is made from the
module path in go.mod, the directory relative to the module root and the
target platform, never from a checkout path. A wrong or stale list costs only
bandwidth: prefetched entries are verified like any shared hit.
"""

from __future__ import annotations

import contextlib
import os
import platform
import re
import sys
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path

from gocachemgr.index import Index
from gocachemgr.keys.hashing import KeyHasher
from gocachemgr.store.shared import SharedStore

MAGIC = b"gocachemgr-used 1\n"
_RECORD = 33  # 32 raw bytes of action id, 1 byte of age
# 30000 records stay under the share's manifest size limit (1 MiB).
MAX_IDS = 30_000
# An id none of the last MAX_AGE go commands used is dropped: `go build`, `go vet`
# and `go test` in one workspace keep each other's entries, stale ones fade out.
MAX_AGE = 8
SHARED_KIND = "used"

_MODULE_LINE = re.compile(rb"^\s*module\s+\"?([^\s\"/][^\s\"]*)\"?", re.MULTILINE)
_HOST_ARCH = {
    "x86_64": "amd64",
    "amd64": "amd64",
    "aarch64": "arm64",
    "arm64": "arm64",
    "i386": "386",
    "i686": "386",
    "ppc64le": "ppc64le",
    "s390x": "s390x",
    "riscv64": "riscv64",
}

Used = list[tuple[str, int]]  # (action id hex, age in go commands), most recent first


def host_platform() -> tuple[str, str]:
    """GOOS/GOARCH of this machine as go names them (go's default target)."""
    goos = {"win32": "windows", "cygwin": "windows"}.get(sys.platform, sys.platform)
    goos = "linux" if goos.startswith("linux") else goos
    machine = platform.machine().lower()
    return goos, _HOST_ARCH.get(machine, machine)


def _module_root(cwd: str) -> Path | None:
    here = Path(cwd)
    for directory in (here, *here.parents):
        if (directory / "go.mod").is_file():
            return directory
    return None


def workspace_key(cwd: str, env: Mapping[str, str]) -> str:
    """xxh3-128 of (module path, cwd relative to the module root, GOOS, GOARCH).

    Outside a module the absolute cwd stands in (then only this node matches).
    GOOS/GOARCH come from the environment, else the host's (a `go env -w`
    default is not read: a miss here only costs a useless prefetch).
    """
    root = _module_root(cwd)
    module, relative = "", os.path.abspath(cwd)
    if root is not None:
        with contextlib.suppress(OSError):
            found = _MODULE_LINE.search((root / "go.mod").read_bytes()[: 1 << 16])
            module = found.group(1).decode(errors="replace") if found else ""
        relative = os.path.relpath(cwd, root)
    host_os, host_arch = host_platform()
    hasher = KeyHasher("used-list")
    hasher.add("module", module)
    hasher.add("dir", relative)
    hasher.add("goos", env.get("GOOS") or host_os)
    hasher.add("goarch", env.get("GOARCH") or host_arch)
    return hasher.hexdigest()


def encode(used: Used) -> bytes:
    return MAGIC + b"".join(bytes.fromhex(i) + bytes((age,)) for i, age in used[:MAX_IDS])


def decode(raw: bytes | None) -> Used | None:
    """The list, or None when absent or not one of ours (then it is simply not used)."""
    if raw is None or not raw.startswith(MAGIC):
        return None
    body = memoryview(raw)[len(MAGIC) :]
    if len(body) % _RECORD or len(body) // _RECORD > MAX_IDS:
        return None
    records = [body[i : i + _RECORD] for i in range(0, len(body), _RECORD)]
    return [(r[:32].hex(), r[32]) for r in records]


def merge(old: Used | None, used_now: Iterable[str]) -> Used:
    """This run's ids first (age 0, in go's order), then older ones aged by one run."""
    fresh = list(dict.fromkeys(used_now))
    seen = set(fresh)
    older = [(i, age + 1) for i, age in old or () if i not in seen and age < MAX_AGE]
    return ([(i, 0) for i in fresh] + sorted(older, key=lambda item: item[1]))[:MAX_IDS]


class UsageLog:
    """The used lists: lmdb table ``used`` (workspace key → list), shared ``artifacts/used/``."""

    def __init__(self, index: Index, shared: SharedStore | None) -> None:
        self.env = index.env
        self.db = index.env.open_db(b"used")
        self.shared = shared

    def local(self, key: str) -> Used | None:
        with self.env.begin(db=self.db) as txn:
            return decode(txn.get(key.encode()))

    def from_share(self, key: str) -> Used | None:
        """The list another node published (raises OSError for shared trouble)."""
        if self.shared is None:
            return None
        return decode(self.shared.get_manifest(key, SHARED_KIND))

    def record(self, key: str, used_now: Iterable[str], fallback: Used | None) -> Used | None:
        """Merge this run into the local list (``fallback`` when there is none yet).

        Returns the new list when its set of ids changed (worth publishing), else None.
        One write transaction: go commands running at once on this node both count.
        """
        with self.env.begin(write=True, db=self.db) as txn:
            old = decode(txn.get(key.encode())) or fallback
            new = merge(old, used_now)
            txn.put(key.encode(), encode(new))
        changed = {i for i, _ in new} != {i for i, _ in old or ()}
        return new if changed else None

    def publish(self, key: str, used: Used) -> None:
        """Last writer wins: the share holds the latest changed list of any node."""
        if self.shared is not None:
            self.shared.put_manifest(key, encode(used), SHARED_KIND)


class Recorder:
    """The action ids one go command ended up with; saved once, at close."""

    def __init__(self, log: UsageLog, key: str) -> None:
        self.log = log
        self.key = key
        self.ids: dict[str, None] = {}  # insertion-ordered set: go's request order
        self.base: Used | None = None  # the shared list prefetch read, if it had to

    def note(self, action_id: str) -> None:
        """Called on the event loop only (hits and puts), so it needs no lock."""
        self.ids[action_id] = None

    def save(self, publish: bool, timeout: float) -> None:
        """Record locally; publish a changed list to the share within ``timeout`` s.

        The shared write runs on a daemon thread: a hung mount must not hold
        go's exit, and a list that does not arrive only costs a prefetch.
        """
        if not self.ids:
            return  # `go list` and friends: nothing worth remembering
        changed = self.log.record(self.key, list(self.ids), self.base)
        if changed is None or not publish:
            return

        def write() -> None:
            with contextlib.suppress(OSError):
                self.log.publish(self.key, changed)

        worker = threading.Thread(target=write, daemon=True, name="publish-used")
        worker.start()
        worker.join(timeout)
