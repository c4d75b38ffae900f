"""Which filesystem holds a path (from /proc/self/mountinfo), and what NFS options mean for us.

``doctor`` needs both: the lmdb index must not sit on a network filesystem,
and the share's NFS client options decide whether uploads can be torn or
other nodes' entries seen late. ``GOCACHEMGR_MOUNTINFO`` names another file
to read instead of /proc/self/mountinfo: a fault-injection hook for tests (this
kernel has no NFS client) and a way to judge a node from a copy of its mountinfo.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import NamedTuple

MOUNTINFO_ENV = "GOCACHEMGR_MOUNTINFO"
PROC_MOUNTINFO = "/proc/self/mountinfo"
NFS_TYPES = frozenset({"nfs", "nfs4"})
NETWORK_TYPES = NFS_TYPES | frozenset(
    {
        "cifs",
        "smb3",
        "smbfs",
        "ncpfs",
        "fuse.sshfs",
        "sshfs",
        "ceph",
        "fuse.ceph",
        "fuse.ceph-fuse",
        "lustre",
        "gpfs",
        "glusterfs",
        "fuse.glusterfs",
        "beegfs",
        "9p",
        "afs",
        "fuse.s3fs",
        "fuse.rclone",
        "fuse.gcsfuse",
        "fuse.juicefs",
        "orangefs",
    }
)
# Kernel defaults: acregmax and acdirmax are 60 s. Above that, new entries on
# other nodes can stay invisible (negative lookups cached) for longer.
ATTR_CACHE_MAX = 60
_ESCAPE = re.compile(r"\\([0-7]{3})")


@dataclass(frozen=True)
class Mount:
    mount_point: str
    fstype: str
    source: str
    options: tuple[str, ...]  # per mount: rw, noatime, ...
    super_options: tuple[str, ...]  # per superblock: where NFS shows vers=, hard, ...

    @property
    def network(self) -> bool:
        return self.fstype in NETWORK_TYPES

    @property
    def nfs(self) -> bool:
        return self.fstype in NFS_TYPES

    def settings(self) -> dict[str, str | None]:
        """Both option lists as name -> value (None for a flag); superblock options win."""
        result: dict[str, str | None] = {}
        for option in (*self.options, *self.super_options):
            name, eq, value = option.partition("=")
            result[name] = value if eq else None
        return result

    def describe(self) -> str:
        return f"{self.fstype} ({self.source} at {self.mount_point})"


def _unescape(field: str) -> str:
    """mountinfo writes space, tab, newline and backslash as octal escapes (\\040 ...)."""
    return _ESCAPE.sub(lambda m: chr(int(m.group(1), 8)), field)


def parse_mountinfo(text: str) -> list[Mount]:
    """Every well-formed line of a mountinfo file, in mount order (see proc(5))."""
    mounts = []
    for line in text.splitlines():
        fields = line.split(" ")
        try:
            sep = fields.index("-", 6)
            fstype, source, super_options = fields[sep + 1 : sep + 4]
        except ValueError:
            continue  # no separator or fewer than three fields after it
        mounts.append(
            Mount(
                mount_point=_unescape(fields[4]),
                fstype=_unescape(fstype),
                source=_unescape(source),
                options=tuple(fields[5].split(",")),
                super_options=tuple(_unescape(super_options).split(",")),
            )
        )
    return mounts


def read_mounts(env: Mapping[str, str] | None = None) -> list[Mount]:
    """This process's mounts, or those of the file named by ``GOCACHEMGR_MOUNTINFO``."""
    env = os.environ if env is None else env
    with open(env.get(MOUNTINFO_ENV) or PROC_MOUNTINFO, "rb") as f:
        return parse_mountinfo(os.fsdecode(f.read()))


def mount_for(path: str | os.PathLike[str], mounts: list[Mount]) -> Mount | None:
    """The mount holding ``path``: the longest mount point that prefixes its realpath.

    Of equal mount points the last wins: it was mounted on top of the others.
    """
    real = os.path.realpath(path)
    best: Mount | None = None
    for mount in mounts:
        point = mount.mount_point
        inside = point == "/" or real == point or real.startswith(point.rstrip("/") + "/")
        if inside and (best is None or len(point) >= len(best.mount_point)):
            best = mount
    return best


class Finding(NamedTuple):
    """One judged aspect of an NFS mount: pass, warn or fail, what was found, how to fix it."""

    topic: str
    status: str
    detail: str
    fix: str


def judge_nfs(mount: Mount) -> list[Finding]:
    """The share's NFS client options against docs/operations.md §2."""
    opts = mount.settings()
    findings = [_judge_hard(opts), _judge_version(mount.fstype, opts), _judge_lookupcache(opts)]
    findings.append(_judge_attr_cache(opts))
    lock = _judge_locking(opts)
    if lock is not None:
        findings.append(lock)
    return findings


def _judge_hard(opts: Mapping[str, str | None]) -> Finding:
    soft = next((name for name in ("soft", "softerr") if name in opts), None)
    if soft:
        return Finding(
            "hard/soft",
            "fail",
            f"mounted {soft}: a slow server turns into EIO in the middle of a write or rename "
            f"(torn files elsewhere on the mount, failed builds)",
            "remount with hard (e.g. vers=4.2,hard,proto=tcp in /etc/fstab); docs/operations.md §2",
        )
    shown = "hard" if "hard" in opts else "hard (the default)"
    return Finding("hard/soft", "pass", f"{shown}: a slow server delays, never corrupts", "")


def _judge_version(fstype: str, opts: Mapping[str, str | None]) -> Finding:
    version = opts.get("vers") or opts.get("nfsvers") or ("4" if fstype == "nfs4" else None)
    if version is None:
        return Finding("version", "pass", "version not shown in the mount options", "")
    major, _, minor = version.partition(".")
    if not major.isdigit():
        return Finding("version", "warn", f"unrecognised vers={version}", "mount with vers=4.2")
    if int(major) < 4:
        return Finding(
            "version",
            "warn",
            f"NFS v{version}: weaker close-to-open and lock semantics than v4, "
            f"and separate mount/lock daemons",
            "mount with vers=4.2 (or 4.1), both recommended",
        )
    note = " (4.1 or 4.2 recommended)" if int(major) == 4 and minor in ("", "0") else ""
    return Finding("version", "pass", f"NFS v{version}{note}", "")


def _judge_lookupcache(opts: Mapping[str, str | None]) -> Finding:
    mode = opts.get("lookupcache") or "all"
    if mode == "none":
        return Finding(
            "lookup cache",
            "warn",
            "lookupcache=none: every lookup goes to the server, so every cache probe "
            "costs a round trip (slow builds)",
            "use lookupcache=positive (new entries seen at once) or the default",
        )
    if mode in ("pos", "positive"):
        return Finding("lookup cache", "pass", f"lookupcache={mode}: new entries seen at once", "")
    return Finding(
        "lookup cache",
        "pass",
        f"lookupcache={mode}{' (the default)' if 'lookupcache' not in opts else ''}: another "
        f"node's new entry may be missed until directory attributes expire (a miss, never "
        f"wrong data)",
        "",
    )


def _judge_attr_cache(opts: Mapping[str, str | None]) -> Finding:
    if "noac" in opts or opts.get("actimeo") == "0":
        found = "noac" if "noac" in opts else "actimeo=0"
        return Finding(
            "attribute cache",
            "warn",
            f"{found}: every stat goes to the server (slow); published files never change "
            f"in place, so fresh attributes buy nothing",
            f"remove {found} from the mount options",
        )
    limits = {
        name: int(value)
        for name in ("actimeo", "acregmax", "acdirmax")
        if (value := opts.get(name)) is not None and value.isdigit()
    }
    large = {name: value for name, value in limits.items() if value > ATTR_CACHE_MAX}
    if large:
        shown = ", ".join(f"{name}={value}" for name, value in large.items())
        return Finding(
            "attribute cache",
            "warn",
            f"{shown}: entries other nodes publish may be seen up to {max(large.values())} s late",
            f"use values <= {ATTR_CACHE_MAX} (the defaults) or add lookupcache=positive",
        )
    shown = ", ".join(f"{name}={value}" for name, value in limits.items()) or "defaults"
    return Finding("attribute cache", "pass", f"attribute caching: {shown}", "")


def _judge_locking(opts: Mapping[str, str | None]) -> Finding | None:
    local_lock = opts.get("local_lock")
    if "nolock" not in opts and local_lock in (None, "none"):
        return None
    found = "nolock" if "nolock" in opts else f"local_lock={local_lock}"
    return Finding(
        "locking",
        "pass",
        f"{found}: flock/fcntl locks are per node only; gocachemgr never uses them on the "
        f"share (its leases are files)",
        "",
    )
