"""mountinfo parsing and the NFS option judge, on lines as the kernel writes them."""

from __future__ import annotations

from pathlib import Path

from gocachemgr.mounts import Mount, judge_nfs, mount_for, parse_mountinfo, read_mounts

SAMPLE = """\
22 1 253:1 / / rw,relatime shared:1 - ext4 /dev/vda1 rw,errors=remount-ro
25 22 0:22 / /tmp rw,nosuid,nodev shared:5 - tmpfs tmpfs rw,size=8155420k,mode=1777
30 22 253:2 / /data rw,noatime - xfs /dev/vdb1 rw,attr2,inode64,logbufs=8,noquota
31 30 0:45 / /data/containers/x rw,relatime - overlay overlay rw,lowerdir=/l,upperdir=/u,workdir=/w
40 22 0:50 / /mnt/nfs3 rw,relatime shared:30 - nfs srv:/export rw,vers=3,rsize=1048576,\
wsize=1048576,namlen=255,hard,nolock,proto=tcp,timeo=600,retrans=2,sec=sys,mountaddr=10.0.0.1,\
mountvers=3,mountport=20048,mountproto=udp,local_lock=all,addr=10.0.0.1
41 22 0:51 / /mnt/nfs rw,relatime shared:31 master:7 - nfs4 srv:/srv rw,vers=4.2,rsize=1048576,\
wsize=1048576,namlen=255,hard,proto=tcp,timeo=600,retrans=2,sec=sys,clientaddr=10.0.0.2,\
local_lock=none,addr=10.0.0.1
42 22 0:52 / /mnt/my\\040share rw - nfs4 srv:/a\\040b rw,vers=4.1,soft,lookupcache=none
43 22 0:53 / /mnt/nfs rw,relatime - nfs4 srv:/other rw,vers=4.2,hard,acregmax=600
this line is not mountinfo
"""


def _by_point(mounts: list[Mount]) -> dict[str, Mount]:
    return {m.mount_point: m for m in mounts}


def test_parse_fields_escapes_and_optional_fields() -> None:
    mounts = parse_mountinfo(SAMPLE)
    assert len(mounts) == 8  # the malformed line is skipped
    root = mounts[0]
    assert (root.mount_point, root.fstype, root.source) == ("/", "ext4", "/dev/vda1")
    assert root.options == ("rw", "relatime")
    assert root.super_options == ("rw", "errors=remount-ro")
    points = _by_point(mounts)
    assert points["/tmp"].fstype == "tmpfs" and not points["/tmp"].network
    assert points["/data"].fstype == "xfs" and not points["/data"].network
    assert points["/data/containers/x"].fstype == "overlay"
    nfs3 = points["/mnt/nfs3"]
    assert nfs3.nfs and nfs3.network
    assert nfs3.settings()["vers"] == "3" and nfs3.settings()["hard"] is None
    escaped = points["/mnt/my share"]  # \040 is a space
    assert escaped.source == "srv:/a b" and escaped.fstype == "nfs4"


def test_mount_for_takes_longest_prefix_and_last_of_stacked() -> None:
    mounts = parse_mountinfo(SAMPLE)
    assert mount_for("/data/containers/x/y", mounts).fstype == "overlay"  # type: ignore[union-attr]
    assert mount_for("/data/containersX", mounts).fstype == "xfs"  # type: ignore[union-attr]
    assert mount_for("/var/lib", mounts).mount_point == "/"  # type: ignore[union-attr]
    assert mount_for("/mnt/my share/gocache", mounts).source == "srv:/a b"  # type: ignore[union-attr]
    # Two mounts on /mnt/nfs: the later one is on top.
    assert mount_for("/mnt/nfs/gocache", mounts).source == "srv:/other"  # type: ignore[union-attr]


def test_mount_for_resolves_symlinks(tmp_path: Path) -> None:
    target = tmp_path / "real"
    target.mkdir()
    (tmp_path / "link").symlink_to(target)
    mounts = [
        Mount("/", "ext4", "/dev/vda1", ("rw",), ("rw",)),
        Mount(str(target), "nfs4", "srv:/x", ("rw",), ("rw", "vers=4.2")),
    ]
    assert mount_for(tmp_path / "link" / "sub", mounts).fstype == "nfs4"  # type: ignore[union-attr]


def _verdicts(mount: Mount) -> dict[str, tuple[str, str, str]]:
    return {f.topic: (f.status, f.detail, f.fix) for f in judge_nfs(mount)}


def test_judge_nfs4_healthy() -> None:
    mount = Mount("/m", "nfs4", "s:/", ("rw",), ("rw", "vers=4.2", "hard", "local_lock=none"))
    verdicts = _verdicts(mount)
    assert {status for status, _, _ in verdicts.values()} == {"pass"}
    assert "locking" not in verdicts  # local_lock=none: nothing to note


def test_judge_nfs3_nolock() -> None:
    verdicts = _verdicts(_by_point(parse_mountinfo(SAMPLE))["/mnt/nfs3"])
    assert verdicts["hard/soft"][0] == "pass"
    assert verdicts["version"][0] == "warn" and "4.2" in verdicts["version"][2]
    assert verdicts["locking"][0] == "pass" and "never uses them" in verdicts["locking"][1]


def test_judge_soft_lookupcache_none_and_slow_options() -> None:
    points = _by_point(parse_mountinfo(SAMPLE))
    bad = _verdicts(points["/mnt/my share"])
    assert bad["hard/soft"][0] == "fail" and "EIO" in bad["hard/soft"][1]
    assert bad["lookup cache"][0] == "warn"
    assert bad["version"][0] == "pass"
    late = _verdicts(points["/mnt/nfs"])  # the one on top: acregmax=600
    assert late["attribute cache"][0] == "warn" and "600 s late" in late["attribute cache"][1]
    noac = _verdicts(Mount("/m", "nfs", "s:/", ("rw",), ("rw", "vers=4.1", "noac")))
    assert noac["attribute cache"][0] == "warn" and "noac" in noac["attribute cache"][1]
    positive = _verdicts(Mount("/m", "nfs4", "s:/", ("rw",), ("rw", "lookupcache=pos")))
    assert positive["lookup cache"][0] == "pass"


def test_read_mounts_from_the_hook_file(tmp_path: Path) -> None:
    copy = tmp_path / "mountinfo"
    copy.write_text(SAMPLE)
    assert len(read_mounts({"GOCACHEMGR_MOUNTINFO": str(copy)})) == 8
    assert any(m.mount_point == "/" for m in read_mounts({}))  # this process's real mounts
