"""`gocachemgr doctor`: is this node set up the way the cache needs? One check, one row.

Each check is a small function returning a ``Check``: pass, warn or fail, what
was found and how to fix it. Checks that touch the share run on a daemon
thread bounded by ``shared_timeout`` (a dead hard NFS mount blocks forever);
after one of them hangs the rest are not tried.
"""

from __future__ import annotations

import contextlib
import errno
import grp
import os
import secrets
import stat
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from gocachemgr.config import Config
from gocachemgr.errors import UserError, describe_os_error
from gocachemgr.mounts import (
    MOUNTINFO_ENV,
    PROC_MOUNTINFO,
    Mount,
    judge_nfs,
    mount_for,
    read_mounts,
)
from gocachemgr.store.atomic import NO_HARD_LINKS, AtomicFile
from gocachemgr.store.lease import Lease, LeaseTimeout, lease_name_for
from gocachemgr.store.shared import (
    FORMAT,
    SUBDIRS,
    SharedStore,
    SharedUnavailable,
    call_bounded,
    open_nofollow,
)
from gocachemgr.toolchain import PIN_FIX, find_go, go_sha256, load_pin, pin_mismatch
from gocachemgr.units import format_size

PASS, WARN, FAIL = "pass", "warn", "fail"
SKEW_WARN = 2.0  # the racy-clean rule's window
SKEW_FAIL = 60.0
FREE_WARN_PERCENT = 10.0
FREE_WARN_BYTES = 2 << 30
FREE_FAIL_PERCENT = 1.0
FANOUT_DIRS = ("actions", "objects", "artifacts")
LAYOUT_FIX = "see docs/operations.md §1"


@dataclass(frozen=True)
class Check:
    name: str
    status: str  # pass, warn or fail
    detail: str
    fix: str = ""


def run_doctor(config: Config, env: Mapping[str, str]) -> Iterator[Check]:
    """Every check, in order, as each finishes (a slow share shows where it is stuck)."""
    try:
        mounts: list[Mount] | str = read_mounts(env)
    except OSError as exc:
        mounts = f"cannot read {env.get(MOUNTINFO_ENV) or PROC_MOUNTINFO}: {describe_os_error(exc)}"
    yield check_local_disk(config, mounts)
    yield check_free_space("local free space", config.local_dir)
    if config.shared_dir is None:
        yield Check(
            "shared dir",
            WARN,
            "no shared dir configured: this node uses its local cache only",
            "set shared_dir (GOCACHEMGR_SHARED_DIR or --shared-dir), e.g. /mnt/nfs/gocache",
        )
    else:
        yield from _share_checks(config, config.shared_dir, mounts)
    yield check_toolchain(config, env)


def _share_checks(config: Config, root: Path, mounts: list[Mount] | str) -> Iterator[Check]:
    share = _Bounded(config.shared_timeout)
    yield from share.run("share filesystem", lambda: check_share_mount(root, mounts))
    found = share.run("shared dir", lambda: check_share_dir(root))
    yield from found
    if not found or found[0].status == FAIL:
        return
    if config.read_only:
        yield Check("share writes", PASS, "not checked: read_only is set, this node never writes")
    else:
        writable = share.run("share writable", lambda: check_share_writable(root))
        yield from writable
        if writable and writable[0].status == PASS:
            tmp = root / "tmp"
            yield from share.run("atomic publish", lambda: check_atomic_ops(tmp))
            yield from share.run("lease", lambda: check_lease(root, config))
            yield from share.run("clock skew", lambda: check_clock(tmp))
    yield from share.run("share directory modes", lambda: check_share_modes(root))
    yield from share.run("share group", lambda: check_share_group(root))
    yield check_umask()
    yield from share.run("share free space", lambda: check_free_space("share free space", root))


class _Bounded:
    """Runs share checks with a time limit each; after one hangs, the rest are skipped."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.hung = False

    def run(self, name: str, check: Callable[[], Check | list[Check]]) -> list[Check]:
        if self.hung:
            return []
        try:
            result = call_bounded(check, self.timeout)
        except TimeoutError:
            self.hung = True
            return [
                Check(
                    name,
                    FAIL,
                    f"the share did not answer within {self.timeout:g} s (shared_timeout): "
                    f"a hung mount or a dead server; the remaining share checks were skipped",
                    "check the NFS server and this node's mount (dmesg, `mount -t nfs,nfs4`)",
                )
            ]
        except OSError as exc:
            return [Check(name, FAIL, describe_os_error(exc), "check the share and its mount")]
        return result if isinstance(result, list) else [result]


# -- local disk ----------------------------------------------------------------


def check_local_disk(config: Config, mounts: list[Mount] | str) -> Check:
    """LMDB needs a local mmap and working locks; GOCACHE is read on every build."""
    name = "local disk"
    if isinstance(mounts, str):
        return Check(name, WARN, f"{mounts}; filesystem types not checked", "")
    paths = {"local dir": config.local_dir, "GOCACHE": config.gocache_dir}
    paths["lmdb index"] = config.index_dir
    found = {label: mount_for(path, mounts) for label, path in paths.items()}
    for label, mount in found.items():
        if mount is not None and mount.network:
            return Check(
                name,
                FAIL,
                f"{label} {paths[label]} is on {mount.describe()}: "
                f"LMDB needs a local mmap and working locks, and every build reads GOCACHE",
                "set local_dir (GOCACHEMGR_LOCAL_DIR or --local-dir) to a directory on a local "
                "disk, e.g. /var/tmp/gocachemgr",
            )
    kinds = sorted({m.describe() for m in found.values() if m is not None}) or ["unknown"]
    return Check(name, PASS, f"local dir, GOCACHE and lmdb index on {', '.join(kinds)}")


def check_free_space(name: str, path: Path) -> Check:
    """Warn under 10 % or 2 GiB free, fail under 1 %: a full disk fails puts and uploads."""
    target = path
    while not target.exists() and target != target.parent:
        target = target.parent
    st = os.statvfs(target)
    free, total = st.f_bavail * st.f_frsize, st.f_blocks * st.f_frsize
    if total == 0:
        return Check(name, PASS, f"{path}: size not reported by the filesystem")
    percent = 100 * free / total
    detail = f"{format_size(free)} free of {format_size(total)} ({percent:.1f} %) at {path}"
    fix = "free space there (remove old entries, grow the disk or export) or move the directory"
    if percent < FREE_FAIL_PERCENT:
        return Check(name, FAIL, detail, fix)
    if percent < FREE_WARN_PERCENT or free < FREE_WARN_BYTES:
        return Check(name, WARN, detail, fix)
    return Check(name, PASS, detail)


# -- the share -----------------------------------------------------------------


def check_share_mount(root: Path, mounts: list[Mount] | str) -> list[Check]:
    """Which filesystem holds the share; for NFS, its client options judged one by one."""
    name = "share filesystem"
    if isinstance(mounts, str):
        return [Check(name, WARN, f"{mounts}; mount options not checked", "")]
    mount = mount_for(root, mounts)
    if mount is None:
        return [Check(name, WARN, f"no mount holds {root} in mountinfo", "")]
    if mount.nfs:
        head = Check(name, PASS, f"{root} is on {mount.describe()}")
        return [head] + [
            Check(f"NFS {f.topic}", f.status, f.detail, f.fix) for f in judge_nfs(mount)
        ]
    if mount.network:
        return [Check(name, PASS, f"{root} is on {mount.describe()}: not NFS, options not judged")]
    return [
        Check(
            name,
            PASS,
            f"{root} is on {mount.describe()}: a local filesystem, shared only by this "
            f"machine's processes",
        )
    ]


def check_share_dir(root: Path) -> Check:
    """Exists, is a directory, can be listed, and FORMAT is ours (or absent: laid out later)."""
    name = "shared dir"
    try:
        st = os.stat(root)
    except FileNotFoundError:
        return Check(
            name,
            FAIL,
            f"{root} does not exist",
            f"mount the share, or create the root once: mkdir -m 2775 {root} ({LAYOUT_FIX})",
        )
    if not stat.S_ISDIR(st.st_mode):
        return Check(name, FAIL, f"{root} is not a directory", "point shared_dir at a directory")
    try:
        entries = len(os.listdir(root))
        with os.fdopen(open_nofollow(root / "FORMAT"), "rb") as f:
            found: str | None = f.read(256).decode(errors="replace").strip()
    except FileNotFoundError:
        found = None
    except OSError as exc:
        return Check(
            name,
            FAIL,
            f"cannot read {root}: {describe_os_error(exc)}",
            f"give your group read access: chgrp <group> {root}; chmod 2775 {root}",
        )
    if found is None:
        return Check(name, PASS, f"{root}: no FORMAT yet; the first writer lays the share out")
    if found != FORMAT:
        return Check(
            name,
            FAIL,
            f"{root}/FORMAT says {found!r}, this gocachemgr speaks {FORMAT!r}",
            "use the gocachemgr that wrote it, or point shared_dir at another directory",
        )
    return Check(name, PASS, f"{root}: FORMAT {FORMAT!r}, {entries} entries")


def check_share_writable(root: Path) -> Check:
    """Lay the share out if needed (as any writer would), then create and drop a temp file."""
    name = "share writable"
    fix = (
        f"make {root} writable for your group (chgrp, chmod 2775; on the server: rw export, "
        f"no root_squash for root builds, quota) — {LAYOUT_FIX}"
    )
    try:
        SharedStore(root).open()
    except SharedUnavailable as exc:
        return Check(name, FAIL, str(exc), fix)
    tmp = root / "tmp"
    try:
        with AtomicFile(tmp) as f:  # never committed: removed on exit
            f.write(b"gocachemgr doctor\n")
    except OSError as exc:
        return Check(name, FAIL, f"cannot create a file in {tmp}: {describe_os_error(exc)}", fix)
    return Check(name, PASS, f"created and removed a file in {tmp}")


def check_atomic_ops(tmp: Path) -> Check:
    """What publishing relies on: O_EXCL refuses an existing file, rename replaces atomically."""
    name = "atomic publish"
    stem = tmp / f".doctor-{os.getpid()}-{secrets.token_hex(4)}"
    first, second, link = (Path(f"{stem}-{n}") for n in ("a", "b", "c"))
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        for path, data in ((first, b"a"), (second, b"b")):
            fd = os.open(path, flags, 0o664)
            os.write(fd, data)
            os.close(fd)
        try:
            os.close(os.open(first, flags, 0o664))
            return Check(
                name,
                FAIL,
                f"O_EXCL created {first} although it existed: concurrent uploads could "
                f"write into one temp file",
                "use NFS v3 or later (O_EXCL is atomic there); check the server",
            )
        except FileExistsError:
            pass
        os.replace(second, first)
        if first.read_bytes() != b"b" or second.exists():
            return Check(
                name,
                FAIL,
                "rename over an existing file did not replace it",
                "the share's filesystem must support atomic rename",
            )
        try:
            os.link(first, link)
            links = "hard links work"
        except OSError as exc:
            if exc.errno not in NO_HARD_LINKS:
                raise
            links = (
                f"no hard links ({errno.errorcode.get(exc.errno or 0, exc.errno)}): publishing "
                f"falls back to check-then-rename, safe as those files are content-addressed"
            )
    finally:
        for path in (first, second, link):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
    return Check(name, PASS, f"O_EXCL refuses an existing file, rename replaces; {links}")


def check_lease(root: Path, config: Config) -> Check:
    """Take and give back a test lease in locks/: module lists and gc depend on leases."""
    name = "lease"
    lease = Lease(
        root / "locks",
        f"doctor-{lease_name_for(f'{os.uname().nodename}:{os.getpid()}')}",
        what="gocachemgr doctor",
        stale_after=config.lease_stale,
        timeout=min(config.shared_timeout, 5.0),
    )
    start = time.monotonic()
    try:
        lease.acquire()
        lease.release()
    except (LeaseTimeout, OSError) as exc:
        detail = str(exc) if isinstance(exc, LeaseTimeout) else describe_os_error(exc)
        return Check(name, FAIL, detail, f"make {root / 'locks'} writable ({LAYOUT_FIX})")
    took = 1000 * (time.monotonic() - start)
    return Check(name, PASS, f"took and released a lease in {root / 'locks'} in {took:.0f} ms")


def check_clock(tmp: Path) -> Check:
    """A new file's mtime is the server's clock: compare it with ours."""
    before = time.time()
    with AtomicFile(tmp) as f:
        f.write(b"clock\n")
        mtime = os.stat(f.path).st_mtime  # on NFS: flushes the write, the server stamps it
    after = time.time()
    skew = mtime - after if mtime > after else min(0.0, mtime - before)
    return judge_skew(skew)


def judge_skew(skew: float) -> Check:
    """``skew``: the share's clock minus this node's, in seconds."""
    name = "clock skew"
    side = "ahead of" if skew > 0 else "behind"
    detail = f"the share's clock is {abs(skew):.1f} s {side} this node's"
    fix = (
        "sync the clocks of every node and the NFS server (chrony, ntpd): the racy-clean rule "
        "(2 s) and lease staleness depend on sane clocks"
    )
    if abs(skew) > SKEW_FAIL:
        return Check(name, FAIL, detail, fix)
    if abs(skew) > SKEW_WARN:
        return Check(name, WARN, detail, fix)
    return Check(name, PASS, f"within {SKEW_WARN:g} s ({abs(skew):.2f} s)")


def check_share_modes(root: Path) -> Check:
    """Directories must be 2775: group-writable for other users' uploads, setgid for the group."""
    name = "share directory modes"
    dirs = [root, *(root / sub for sub in SUBDIRS)]
    for sub in FANOUT_DIRS:
        with contextlib.suppress(FileNotFoundError, NotADirectoryError):
            dirs += [
                Path(e.path) for e in os.scandir(root / sub) if e.is_dir(follow_symlinks=False)
            ]
    bad: list[tuple[Path, int]] = []
    checked = 0
    for path in dirs:
        try:
            mode = os.lstat(path).st_mode
        except FileNotFoundError:
            continue
        checked += 1
        if not (mode & stat.S_IWGRP and mode & stat.S_ISGID):
            bad.append((path, stat.S_IMODE(mode)))
    if not bad:
        return Check(name, PASS, f"{checked} directories group-writable with setgid")
    path, mode = bad[0]
    return Check(
        name,
        WARN,
        f"{len(bad)} of {checked} directories lack group write or setgid "
        f"(first: {path} mode {mode:04o}): other users' uploads fail with EACCES",
        f"find {root} -type d -exec chmod 2775 {{}} +",
    )


def check_share_group(root: Path) -> Check:
    """The share root's group must be one of ours, or its group permissions do not apply."""
    name = "share group"
    gid = os.stat(root).st_gid
    group = _group_name(gid)
    if gid == os.getegid() or gid in os.getgroups():
        return Check(name, PASS, f"{root} belongs to group {group}, one of this user's groups")
    mine = ", ".join(_group_name(g) for g in sorted({os.getegid(), *os.getgroups()}))
    return Check(
        name,
        WARN,
        f"{root} belongs to group {group}; this user is in {mine}",
        f"chgrp -R <build group> {root}, or add this user to group {group}; every node needs "
        f"the same numeric GID",
    )


def _group_name(gid: int) -> str:
    try:
        return f"{grp.getgrgid(gid).gr_name} ({gid})"
    except KeyError:
        return str(gid)


def check_umask() -> Check:
    """Files and directories on the share are created 0664/0775 minus the umask."""
    name = "umask"
    umask = _current_umask()
    if umask & 0o060 == 0:
        return Check(name, PASS, f"umask {umask:03o} keeps group read and write")
    return Check(
        name,
        WARN,
        f"umask {umask:03o} takes group read/write away: directories gocachemgr creates on "
        f"the share become {0o775 & ~umask:o} and other users' uploads fail",
        "run builds with `umask 002` (in the CI job, the service unit or ~/.profile)",
    )


def _current_umask() -> int:
    """Read without changing it (os.umask would, for a moment, for every thread)."""
    with contextlib.suppress(OSError, ValueError), open("/proc/self/status") as f:
        for line in f:
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    old = os.umask(0o022)
    os.umask(old)
    return old


# -- the toolchain -------------------------------------------------------------


def check_toolchain(config: Config, env: Mapping[str, str]) -> Check:
    """This node's go against the share's pin (`gocachemgr toolchain pin`)."""
    name = "toolchain pin"
    if config.shared_dir is None:
        return Check(name, WARN, "no shared dir: no pin to compare with", "")
    try:
        go = find_go(config, env)
        pin = load_pin(config)
    except UserError as exc:  # no go, or a malformed pin: the message says what to do
        return Check(name, FAIL, str(exc))
    except TimeoutError:
        return Check(name, FAIL, "the share did not answer while reading the pin", "")
    except OSError as exc:
        return Check(name, WARN, f"cannot read the pin: {describe_os_error(exc)}", "")
    if pin is None:
        return Check(
            name,
            WARN,
            f"no toolchain pinned in {config.shared_dir}: nodes may build with different go",
            "run `gocachemgr toolchain pin` on a node with the cluster's go",
        )
    problem = pin_mismatch(pin, go, go_sha256(go, config.index_dir), config.shared_dir)
    if problem is not None:
        return Check(name, FAIL, problem, PIN_FIX)
    return Check(name, PASS, f"{go} is the pinned {pin.describe()}")


# -- presentation ----------------------------------------------------------------


def failed(checks: Sequence[Check]) -> bool:
    return any(c.status == FAIL for c in checks)


def format_check(check: Check) -> str:
    """One table row, and the fix on a second line for a warning or failure."""
    row = f"{check.status.upper():<4}  {check.name:<22}  {check.detail}"
    return f"{row}\n{'':<30}fix: {check.fix}" if check.fix and check.status != PASS else row


def summary(checks: Sequence[Check]) -> str:
    counts = {s: sum(c.status == s for c in checks) for s in (PASS, WARN, FAIL)}
    return f"{counts[PASS]} passed, {counts[WARN]} warned, {counts[FAIL]} failed"


def as_json(checks: Sequence[Check]) -> dict[str, object]:
    return {"ok": not failed(checks), "checks": [asdict(c) for c in checks]}
