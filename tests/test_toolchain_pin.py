"""Toolchain pin, show, the check before every go command, and `toolchain verify`, with real go."""

from __future__ import annotations

import hashlib
import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from gocachemgr.index import Index
from tests.helpers import Node, warnings_in

OTHER_SHA = "0" * 64


@pytest.fixture
def pinned(make_node: Callable[..., Node], shared_dir: Path) -> Node:
    node = make_node("a", shared_dir)
    node.run("toolchain", "pin")
    return node


def repin_with(shared_dir: Path, **changes: str) -> None:
    """Rewrite the pin as a node with another go would have left it."""
    path = shared_dir / "toolchain.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), **changes}))


def one_line_error(proc: subprocess.CompletedProcess[str], needle: str) -> None:
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("gocachemgr: error: ") and needle in lines[0]


def test_pin_records_this_go_and_show_matches(pinned: Node, shared_dir: Path) -> None:
    pin = json.loads((shared_dir / "toolchain.json").read_text())
    shown = json.loads(pinned.run("toolchain", "show", "--json").stdout)
    go = Path(shown["local"]["go"]).resolve()
    assert pin["sha256"] == hashlib.sha256(go.read_bytes()).hexdigest()
    assert pin["GOVERSION"].startswith("go") and pin["GOOS"] and pin["GOARCH"]
    assert "@" in pin["pinned_by"] and pin["pinned_at"].endswith("Z")
    assert shown["matches"] is True and shown["pin"] == pin
    assert shown["local"]["GOVERSION"] == pin["GOVERSION"]
    assert not list((shared_dir / "tmp").iterdir())  # published by rename, nothing left
    # The binary's hash is remembered in the local index, keyed by its stat.
    index = Index(pinned.local_dir / "index")
    try:
        table = index.env.open_db(b"go_sha256")
        with index.env.begin(db=table) as txn:
            assert [bytes(v).decode() for _, v in txn.cursor()] == [pin["sha256"]]
    finally:
        index.close()
    text = pinned.run("toolchain", "show").stdout
    assert "matches the pin" in text


def test_matching_pin_is_silent(pinned: Node) -> None:
    proc = pinned.go("version")
    assert proc.stdout.startswith("go version go") and warnings_in(proc.stderr) == []


def test_mismatch_warns_refuses_or_is_ignored(pinned: Node, shared_dir: Path) -> None:
    repin_with(shared_dir, sha256=OTHER_SHA, GOVERSION="go1.0.0", pinned_by="ci@ref")
    warned = pinned.go("version")
    assert warned.stdout.startswith("go version go"), "warn mode must still run go"
    (line,) = warnings_in(warned.stderr)
    assert "go1.0.0" in line and "ci@ref" in line and "toolchain pin" in line

    refuse = Node(
        pinned.local_dir, shared_dir, {**pinned.base_env, "GOCACHEMGR_TOOLCHAIN_PIN": "refuse"}
    )
    refused = refuse.go("version", check=False)
    one_line_error(refused, "toolchain_pin = refuse")
    assert refused.stdout == ""  # go never started

    off = Node(pinned.local_dir, shared_dir, {**pinned.base_env, "GOCACHEMGR_TOOLCHAIN_PIN": "off"})
    quiet = off.go("version")
    assert warnings_in(quiet.stderr) == []

    doctor = pinned.run("doctor", "--json", check=False)
    assert doctor.returncode == 1
    checks = {c["name"]: c for c in json.loads(doctor.stdout)["checks"]}
    assert checks["toolchain pin"]["status"] == "fail"
    assert "go1.0.0" in checks["toolchain pin"]["detail"]

    shown = pinned.run("toolchain", "show", check=False)
    assert shown.returncode == 1 and "DIFFERS from the pin" in shown.stdout


def test_malformed_pin_warns(pinned: Node, shared_dir: Path) -> None:
    (shared_dir / "toolchain.json").write_text("{not json")
    proc = pinned.go("version")
    (line,) = warnings_in(proc.stderr)
    assert "malformed" in line and "gocachemgr toolchain pin" in line


def test_pin_needs_a_writable_share(make_node: Callable[..., Node], shared_dir: Path) -> None:
    one_line_error(make_node("a", None).run("toolchain", "pin", check=False), "no shared dir")
    node = make_node("b", shared_dir)
    read_only = Node(node.local_dir, shared_dir, {**node.base_env, "GOCACHEMGR_READ_ONLY": "1"})
    one_line_error(read_only.run("toolchain", "pin", check=False), "read-only")
    assert not (shared_dir / "toolchain.json").exists()


@pytest.fixture
def archive(tmp_path: Path) -> tuple[Path, str]:
    path = tmp_path / "go1.99.0.linux-amd64.tar.gz"
    path.write_bytes(b"not really a Go archive\n")
    return path, hashlib.sha256(path.read_bytes()).hexdigest()


def test_verify_ok_with_hex_or_checksum_file(
    make_node: Callable[..., Node], archive: tuple[Path, str], tmp_path: Path
) -> None:
    node = make_node("a", None)
    path, digest = archive
    ok = node.run("toolchain", "verify", str(path), "--sha256", digest.upper())
    assert ok.stdout == f"{path}: OK\n"
    sums = tmp_path / "SHA256SUMS"
    sums.write_text(f"{OTHER_SHA}  go1.98.0.linux-amd64.tar.gz\n{digest} *dl/{path.name}\n")
    assert node.run("toolchain", "verify", str(path), "--sha256", str(sums)).stdout.endswith("OK\n")
    single = tmp_path / f"{path.name}.sha256"  # go.dev/dl style: the digest alone
    single.write_text(digest + "\n")
    assert node.run("toolchain", "verify", str(path), "--sha256", str(single)).returncode == 0


def test_verify_failed(make_node: Callable[..., Node], archive: tuple[Path, str]) -> None:
    path, digest = archive
    proc = make_node("a", None).run(
        "toolchain", "verify", str(path), "--sha256", OTHER_SHA, check=False
    )
    assert proc.returncode == 1
    assert proc.stdout == f"{path}: FAILED (sha256 is {digest}, expected {OTHER_SHA})\n"


def test_verify_bad_input(
    make_node: Callable[..., Node], archive: tuple[Path, str], tmp_path: Path
) -> None:
    node = make_node("a", None)
    path, digest = archive

    def verify(*args: str) -> subprocess.CompletedProcess[str]:
        return node.run("toolchain", "verify", *args, check=False)

    one_line_error(verify(str(tmp_path / "missing.tar.gz"), "--sha256", digest), "not a file")
    one_line_error(verify(str(path), "--sha256", digest[:-1]), "neither 64 hex digits")
    sums = tmp_path / "SHA256SUMS"
    sums.write_text(f"{digest}  something-else.tar.gz\n")
    one_line_error(verify(str(path), "--sha256", str(sums)), f"no line for {path.name}")
