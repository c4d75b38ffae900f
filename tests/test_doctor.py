"""`gocachemgr doctor` through the real CLI: a healthy setup, and each way a node can be wrong."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path

from gocachemgr.doctor import judge_skew
from tests.helpers import Node, run_with_readonly_share


def doctor(node: Node, *, check: bool = False) -> tuple[int, dict[str, dict[str, str]]]:
    proc = node.run("doctor", "--json", check=check)
    assert "Traceback" not in proc.stderr
    report = json.loads(proc.stdout)
    checks = {c["name"]: c for c in report["checks"]}
    assert report["ok"] == all(c["status"] != "fail" for c in checks.values())
    return proc.returncode, checks


def fake_mountinfo(tmp_path: Path, *lines: str) -> Path:
    """A mountinfo copy: this kernel has no NFS client, so NFS mounts are described, not made."""
    path = tmp_path / "mountinfo"
    root = "22 1 253:1 / / rw,relatime shared:1 - ext4 /dev/vda1 rw,errors=remount-ro"
    path.write_text("\n".join([root, *lines]) + "\n")
    return path


def with_env(node: Node, **extra: str) -> Node:
    return Node(node.local_dir, node.shared_dir, {**node.base_env, **extra})


def test_healthy_local_setup_passes(make_node: Callable[..., Node], shared_dir: Path) -> None:
    node = make_node("a", shared_dir)
    code, checks = doctor(node)
    assert code == 0, checks
    assert not [c for c in checks.values() if c["status"] == "fail"]
    for name in ("local disk", "shared dir", "share writable", "atomic publish", "lease"):
        assert checks[name]["status"] == "pass", checks[name]
    assert checks["clock skew"]["status"] == "pass"
    assert checks["toolchain pin"]["status"] == "warn"  # nothing pinned yet
    assert not list((shared_dir / "tmp").iterdir()), "doctor left files in tmp/"
    assert not list((shared_dir / "locks").iterdir()), "doctor left a lease behind"
    text = node.run("doctor").stdout  # the human table
    assert "PASS  share writable" in text and "0 failed" in text.splitlines()[-1]


def test_no_shared_dir_is_a_warning(make_node: Callable[..., Node]) -> None:
    code, checks = doctor(make_node("a", None))
    assert code == 0
    assert checks["shared dir"]["status"] == "warn"
    assert "share writable" not in checks


def test_missing_share_fails(make_node: Callable[..., Node], tmp_path: Path) -> None:
    code, checks = doctor(make_node("a", tmp_path / "not-mounted"))
    assert code == 1
    assert checks["shared dir"]["status"] == "fail"
    assert "mkdir -m 2775" in checks["shared dir"]["fix"]


def test_read_only_share_fails(
    make_node: Callable[..., Node], shared_dir: Path, tmp_path: Path
) -> None:
    node = make_node("a", shared_dir)
    node.run("doctor")  # lays the share out while it is writable
    proc = run_with_readonly_share(node, shared_dir, "doctor", "--json", cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr
    checks = {c["name"]: c for c in json.loads(proc.stdout)["checks"]}
    assert checks["share writable"]["status"] == "fail"
    assert "Read-only file system" in checks["share writable"]["detail"]


def test_soft_nfs_mount_fails(
    make_node: Callable[..., Node], shared_dir: Path, tmp_path: Path
) -> None:
    info = fake_mountinfo(
        tmp_path,
        f"40 22 0:50 / {shared_dir} rw,relatime - nfs srv:/export "
        f"rw,vers=3,soft,proto=tcp,timeo=600,retrans=2,lookupcache=none,local_lock=none",
    )
    node = with_env(make_node("a", shared_dir), GOCACHEMGR_MOUNTINFO=str(info))
    code, checks = doctor(node)
    assert code == 1
    assert checks["share filesystem"]["detail"].endswith(f"at {shared_dir})")
    assert checks["NFS hard/soft"]["status"] == "fail"
    assert "soft" in checks["NFS hard/soft"]["detail"] and "hard" in checks["NFS hard/soft"]["fix"]
    assert checks["NFS version"]["status"] == "warn"
    assert checks["NFS lookup cache"]["status"] == "warn"
    assert checks["local disk"]["status"] == "pass"


def test_hard_nfs4_mount_passes(
    make_node: Callable[..., Node], shared_dir: Path, tmp_path: Path
) -> None:
    info = fake_mountinfo(
        tmp_path,
        f"41 22 0:51 / {shared_dir} rw,relatime - nfs4 srv:/srv "
        f"rw,vers=4.2,hard,proto=tcp,timeo=600,retrans=2,local_lock=none",
    )
    code, checks = doctor(with_env(make_node("a", shared_dir), GOCACHEMGR_MOUNTINFO=str(info)))
    assert code == 0
    assert {checks[f"NFS {t}"]["status"] for t in ("hard/soft", "version", "lookup cache")} == {
        "pass"
    }


def test_local_dir_on_nfs_fails(make_node: Callable[..., Node], tmp_path: Path) -> None:
    node = make_node("a", None)
    info = fake_mountinfo(
        tmp_path, f"41 22 0:51 / {node.local_dir.parent} rw - nfs4 srv:/home rw,vers=4.2,hard"
    )
    code, checks = doctor(with_env(node, GOCACHEMGR_MOUNTINFO=str(info)))
    assert code == 1
    assert checks["local disk"]["status"] == "fail"
    assert "LMDB" in checks["local disk"]["detail"] and "local_dir" in checks["local disk"]["fix"]


def test_hung_share_is_reported_not_waited_for(
    make_node: Callable[..., Node], shared_dir: Path
) -> None:
    # A FIFO at FORMAT blocks open() forever, as a dead hard NFS mount would.
    os.mkfifo(shared_dir / "FORMAT")
    node = with_env(make_node("a", shared_dir), GOCACHEMGR_SHARED_TIMEOUT="1")
    start = time.monotonic()
    code, checks = doctor(node)
    assert time.monotonic() - start < 20
    assert code == 1
    assert checks["shared dir"]["status"] == "fail"
    assert "did not answer within 1 s" in checks["shared dir"]["detail"]
    assert "share writable" not in checks  # skipped, not waited for again


def test_clock_skew_thresholds() -> None:
    assert judge_skew(0.3).status == "pass"
    assert judge_skew(-5).status == "warn" and "behind" in judge_skew(-5).detail
    assert judge_skew(120).status == "fail" and "racy-clean" in judge_skew(120).fix
