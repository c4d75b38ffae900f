"""The shared module store: ``<shared>/modules`` laid out as a GOPROXY that every node
reads as ``file://``.

Same NFS rules as the build-cache tier: files appear by atomic publish from
``tmp/``, immutable files are never rewritten (``link``), a zip is published
only after its bytes *on the share* hash to the ``h1:`` go recorded, the
``.ziphash`` that vouches for a zip goes in before the zip, and ``@v/list`` —
the only file rewritten in place — changes under a lease. The list is merged
(the old list, plus the ``.mod`` files seen, plus the versions just added), never rebuilt from a
directory listing alone: an NFS client may serve a stale listing, and a lost
line would hide a version from ``@latest`` queries.
"""

from __future__ import annotations

import os
import secrets
import stat
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from gocachemgr.modules.dirhash import ZipHashError, hash_zip
from gocachemgr.modules.localcache import LocalVersion, version_dirs
from gocachemgr.modules.paths import (
    InvalidModulePath,
    check_escaped_path,
    is_canonical_version,
    semver_sort,
    unescape_path,
    unescape_version,
)
from gocachemgr.store.atomic import AtomicFile
from gocachemgr.store.lease import Lease, LeaseTimeout, lease_name_for
from gocachemgr.store.shared import SharedStore, group_dir, open_nofollow

EPOCH_FILE = ".epoch"  # module paths never start with a dot, so go never asks for it
MAX_LIST_BYTES = 1 << 20


class LocalZipDamaged(Exception):
    """A local zip does not hash to its own ``.ziphash``; it is not published."""


@dataclass
class ModuleOutcome:
    """What publishing one module's versions did."""

    published: list[str] = field(default_factory=list)  # version keys now complete in the store
    written: list[str] = field(default_factory=list)  # version keys that needed a file
    failed: list[tuple[str, str]] = field(default_factory=list)  # (version key, reason)
    files_written: int = 0
    bytes_written: int = 0


@dataclass
class VerifyReport:
    checked: int = 0
    bytes_checked: int = 0
    bad: list[str] = field(default_factory=list)  # one line per quarantined zip: path and reason
    lists_fixed: list[str] = field(default_factory=list)


def _read(path: Path, limit: int) -> bytes | None:
    """A small file of the share, or None when absent; never follows a symlink."""
    try:
        with os.fdopen(open_nofollow(path), "rb") as f:
            return f.read(limit + 1)
    except FileNotFoundError:
        return None


class ModuleStore:
    def __init__(
        self, shared: SharedStore, *, lease_stale: float = 30.0, lease_timeout: float = 10.0
    ) -> None:
        self.shared = shared
        self.root = shared.root / "modules"
        self._lease_stale = lease_stale
        self._lease_timeout = lease_timeout

    # -- epoch -----------------------------------------------------------------

    def epoch(self) -> str:
        """The store's current epoch (created on first use); see ``modules.ledger``."""
        raw = _read(self.root / EPOCH_FILE, 256)
        if raw is None:
            self._write_epoch(replace=False)
            raw = _read(self.root / EPOCH_FILE, 256) or b""
        return raw.decode(errors="replace").strip()

    def new_epoch(self) -> None:
        """Tell every node to re-check what it published (files were removed)."""
        self._write_epoch(replace=True)

    def _write_epoch(self, *, replace: bool) -> None:
        group_dir(self.root)
        with AtomicFile(self.shared.tmp_dir, fsync=True) as f:
            f.write(f"{secrets.token_hex(16)}\n".encode())
            f.commit(self.root / EPOCH_FILE, replace=replace)

    # -- paths -----------------------------------------------------------------

    def version_dir(self, escaped_path: str, *, create: bool = False) -> Path:
        """``modules/<escaped path>/@v``; with ``create`` each level is a group-shared plain dir."""
        check_escaped_path(escaped_path)
        path = self.root
        if create:
            group_dir(path)
        for element in [*escaped_path.split("/"), "@v"]:
            path = path / element
            if create:
                group_dir(path)
        return path

    # -- publishing ------------------------------------------------------------

    def publish_module(self, escaped_path: str, versions: Iterable[LocalVersion]) -> ModuleOutcome:
        """Publish complete local versions of one module, then merge them into ``list``.

        Every version with a ``.mod`` must end up listed, also one whose ``.mod``
        went up in an earlier run whose list merge failed (a lease held too long).
        OSError and LeaseTimeout propagate: the share itself is in trouble.
        """
        outcome = ModuleOutcome()
        directory = self.version_dir(escaped_path, create=True)
        # One listing instead of a failed open per file; a stale listing (NFS) only
        # means a publish that then finds the file there (link: EEXIST).
        present = frozenset(os.listdir(directory))
        to_list: list[str] = []
        for version in versions:
            files_before = outcome.files_written
            try:
                self._publish_version(version, directory, present, outcome)
            except LocalZipDamaged as exc:
                outcome.failed.append((version.key, str(exc)))
                continue
            outcome.published.append(version.key)
            if outcome.files_written > files_before:
                outcome.written.append(version.key)
            if "mod" in version.files:
                to_list.append(unescape_version(version.escaped_version))
        listed = self.read_list(escaped_path) if "list" in present else []
        if to_list and not set(to_list) <= set(listed):
            self.merge_list(escaped_path, to_list)
        return outcome

    def _publish_version(
        self,
        version: LocalVersion,
        directory: Path,
        present: frozenset[str],
        outcome: ModuleOutcome,
    ) -> None:
        """Publish one version's files in PUBLISH_ORDER."""
        staged: AtomicFile | None = None
        try:
            if "zip" in version.files:
                staged = self._stage_zip(version, directory, present)
            for suffix in version.files:
                target = directory / f"{version.escaped_version}.{suffix}"
                if suffix == "zip":
                    if staged is not None and staged.commit(target, replace=False):
                        outcome.files_written += 1
                        outcome.bytes_written += staged.size
                    continue
                self._publish_small(
                    version.path(suffix), target, suffix, target.name in present, outcome
                )
        finally:
            if staged is not None:
                staged.abort()

    def _stage_zip(
        self, version: LocalVersion, directory: Path, present: frozenset[str]
    ) -> AtomicFile | None:
        """Copy the zip into ``tmp/`` on the share and check the *copy* against its ziphash.

        None when the store already holds a zip of the right size (a flipped
        byte in it is ``mod verify``'s job: re-hashing every zip on every
        publish would cost more than the download it saves).
        """
        target = directory / f"{version.escaped_version}.zip"
        local_zip = version.path("zip")
        expected = version.path("ziphash").read_text(errors="replace").strip()
        local_size = local_zip.stat().st_size
        try:
            if target.name in present:
                if os.lstat(target).st_size == local_size:
                    return None
                self.shared.quarantine(target, "zip size differs from a verified copy")
        except FileNotFoundError:
            pass
        staged = AtomicFile(self.shared.tmp_dir, fsync=True)
        try:
            with local_zip.open("rb") as src:
                staged.copy_from(src)
            try:
                actual = hash_zip(staged.path)
            except ZipHashError as exc:
                actual = f"unreadable ({exc})"
            if actual != expected:
                raise LocalZipDamaged(
                    f"{local_zip} hashes to {actual}, its .ziphash says {expected}; "
                    f"not published (run `go clean -modcache` on this node)"
                )
        except BaseException:
            staged.abort()
            raise
        return staged

    def _publish_small(
        self, source: Path, target: Path, suffix: str, listed: bool, outcome: ModuleOutcome
    ) -> bool:
        """Publish a ``.mod``/``.info``/``.ziphash`` unless the store has it; True if written.

        An existing ``.mod`` or ``.ziphash`` that differs from ours is damage
        (both are fixed by the checksum database); an ``.info`` may differ
        between nodes (origin details) and the first one stays.
        """
        data = source.read_bytes()
        existing = _read(target, len(data)) if listed else None
        if existing is not None:
            if existing == data or suffix == "info":
                return False
            self.shared.quarantine(target, f".{suffix} differs from a verified copy")
        with AtomicFile(self.shared.tmp_dir, fsync=True) as f:
            f.write(data)
            written = f.commit(target, replace=False)
        if written:
            outcome.files_written += 1
            outcome.bytes_written += len(data)
        return written

    # -- the version list --------------------------------------------------------

    def read_list(self, escaped_path: str) -> list[str]:
        raw = _read(self.version_dir(escaped_path) / "list", MAX_LIST_BYTES)
        if raw is None:
            return []
        return [line.strip() for line in raw.decode(errors="replace").splitlines() if line.strip()]

    def merge_list(
        self, escaped_path: str, add: Iterable[str] = (), *, strict: bool = False
    ) -> bool:
        """Rewrite ``list`` under the module's lease; True if it changed.

        Merged: the old list, the versions with a ``.mod`` here and ``add``. With
        ``strict`` (``mod verify``) only versions whose ``.mod`` exists are kept.
        """
        directory = self.version_dir(escaped_path)
        lease = Lease(
            self.shared.root / "locks",
            lease_name_for(f"modules/{escaped_path}"),
            what=f"the version list of {unescape_path(escaped_path)}",
            stale_after=self._lease_stale,
            timeout=self._lease_timeout,
        )
        with lease:
            present = set(_versions_with_mod(directory))
            old = self.read_list(escaped_path)
            versions = present if strict else present | set(old) | set(add)
            lines = semver_sort(v for v in versions if is_canonical_version(v))
            if lines == old:
                return False
            with AtomicFile(self.shared.tmp_dir, fsync=True) as f:
                f.write("".join(f"{v}\n" for v in lines).encode())
                if lease.lost:  # another node broke it: its merge may be newer than ours
                    raise LeaseTimeout(f"lost {lease.path} to another node; retried next time")
                f.commit(directory / "list")
            return True

    # -- verifying ---------------------------------------------------------------

    def verify(self, progress: Callable[[int, int], None] | None = None) -> VerifyReport:
        """Re-hash every zip against its ``.ziphash``; quarantine the bad ones (zip and
        ziphash, so a node with a verified copy re-publishes both) and fix lists."""
        report = VerifyReport()
        modules = [(p, d) for p, d, _ in version_dirs(self.root)]
        zips = [
            directory / name
            for _, directory in modules
            for name in sorted(os.listdir(directory))
            if name.endswith(".zip")
        ]
        for done, zip_path in enumerate(zips, 1):
            problem = self._check_zip(zip_path)
            report.checked += 1
            if problem is None:
                report.bytes_checked += zip_path.stat().st_size
            else:
                report.bad.append(f"{zip_path}: {problem}")
                self.shared.quarantine(zip_path, problem)
                ziphash = zip_path.with_suffix(".ziphash")
                if ziphash.exists():
                    self.shared.quarantine(ziphash, f"vouched for a bad zip ({problem})")
            if progress:
                progress(done, len(zips))
        for escaped_path, _ in modules:
            try:
                if self.merge_list(escaped_path, strict=True):
                    report.lists_fixed.append(unescape_path(escaped_path))
            except InvalidModulePath:
                continue
        if report.bad:
            self.new_epoch()
        return report

    def _check_zip(self, zip_path: Path) -> str | None:
        """None if the zip hashes to its recorded h1, else why not."""
        if not stat.S_ISREG(os.lstat(zip_path).st_mode):
            return "not a regular file (a planted symlink?)"
        recorded = _read(zip_path.with_suffix(".ziphash"), 256)
        if recorded is None:
            return "no .ziphash records its hash"
        expected = recorded.decode(errors="replace").strip()
        try:
            actual = hash_zip(zip_path)
        except ZipHashError as exc:
            return f"not a readable zip ({exc})"
        if actual != expected:
            return f"contents hash to {actual}, recorded {expected}"
        return None


def _versions_with_mod(directory: Path) -> Iterable[str]:
    for name in os.listdir(directory):
        stem, dot, suffix = name.rpartition(".")
        if dot and suffix == "mod":
            try:
                version = unescape_version(stem)
            except InvalidModulePath:
                continue
            if is_canonical_version(version):
                yield version
