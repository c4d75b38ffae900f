"""`gocachemgr build` and `gocachemgr key` with the real go command."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Callable
from pathlib import Path

from gocachemgr.config import Config
from gocachemgr.toolchain import find_go
from tests.helpers import Node


def logging_go(tmp_path: Path) -> tuple[Path, Path]:
    """A `go` that records every invocation, then runs the real one: proof of "no go process"."""
    log = tmp_path / "go-invocations.log"
    wrapper = tmp_path / "bin" / "go"
    wrapper.parent.mkdir(parents=True, exist_ok=True)
    wrapper.write_text(f'#!/bin/sh\necho "$@" >> "{log}"\nexec "{find_go(Config.load())}" "$@"\n')
    wrapper.chmod(0o755)
    return wrapper, log


def invocations(log: Path) -> list[str]:
    return log.read_text().splitlines() if log.exists() else []


def manifests(node: Node) -> list[Path]:
    return list((node.local_dir / "artifacts" / "manifests").glob("*/*"))


def test_hit_runs_no_go_process(
    make_node: Callable[..., Node], sample: Path, tmp_path: Path
) -> None:
    wrapper, log = logging_go(tmp_path)
    node = make_node("a", None)
    node.base_env["GOCACHEMGR_GO"] = str(wrapper)
    node.run("build", "-o", str(tmp_path / "first"), ".", cwd=sample)
    assert any(line.startswith("build") for line in invocations(log))
    before = len(invocations(log))

    hit = node.run("build", "-v", "-o", str(tmp_path / "second"), ".", cwd=sample)

    assert len(invocations(log)) == before, "a hit must not start go"
    assert "local hit" in hit.stderr
    assert (tmp_path / "first").read_bytes() == (tmp_path / "second").read_bytes()
    mode = stat.S_IMODE((tmp_path / "second").stat().st_mode)
    assert mode == stat.S_IMODE((tmp_path / "first").stat().st_mode) == 0o777 & ~_umask()
    assert node.stats()["builds_hit_local"] == 1


def test_node_b_gets_node_a_binary_from_the_share_without_go(
    make_node: Callable[..., Node], sample: Path, shared_dir: Path, tmp_path: Path
) -> None:
    wrapper, log = logging_go(tmp_path)
    a, b = make_node("a", shared_dir), make_node("b", shared_dir)
    for node in (a, b):
        node.base_env["GOCACHEMGR_GO"] = str(wrapper)
    a.run("build", "-o", str(tmp_path / "from-a"), ".", cwd=sample)
    before = len(invocations(log))

    got = b.run("build", "-v", "-o", str(tmp_path / "from-b"), ".", cwd=sample)

    assert len(invocations(log)) == before, "node B must not start go"
    assert "shared hit" in got.stderr
    assert (tmp_path / "from-a").read_bytes() == (tmp_path / "from-b").read_bytes()
    assert b.stats()["builds_hit_shared"] == 1


def test_default_output_name_and_output_dir(
    make_node: Callable[..., Node], sample: Path, tmp_path: Path
) -> None:
    node = make_node("a", None)
    node.run("build", cwd=sample)
    built = (sample / "gocachemgr-sample").read_bytes()
    (sample / "gocachemgr-sample").unlink()
    node.run("build", cwd=sample)  # hit: written where go build would write it
    assert (sample / "gocachemgr-sample").read_bytes() == built
    out_dir = tmp_path / "bin"
    out_dir.mkdir()
    node.run("build", "-o", str(out_dir) + "/", ".", cwd=sample)
    assert (out_dir / "gocachemgr-sample").read_bytes() == built


def test_racy_same_size_same_mtime_edit_is_not_missed(
    make_node: Callable[..., Node], sample: Path, tmp_path: Path
) -> None:
    node = make_node("a", None)
    source = sample / "greet" / "greet.go"
    node.run("build", "-o", str(tmp_path / "one"), ".", cwd=sample)
    st = source.stat()
    text = source.read_text()
    source.write_text(text.replace('"Hello, "', '"Howdy, "'))  # same size
    os.utime(source, ns=(st.st_atime_ns, st.st_mtime_ns))  # same mtime tick

    node.run("build", "-o", str(tmp_path / "two"), ".", cwd=sample)

    import subprocess

    out = subprocess.run([str(tmp_path / "two")], capture_output=True, text=True).stdout
    assert out.startswith("Howdy, Gocachemgr!")


def test_unknown_package_shows_gos_error_and_caches_nothing(
    make_node: Callable[..., Node], sample: Path
) -> None:
    node = make_node("a", None)
    proc = node.run("build", "./no/such/package", cwd=sample, check=False)
    assert proc.returncode == 1
    assert "no/such/package" in proc.stderr and "Traceback" not in proc.stderr
    assert manifests(node) == []


def test_broken_go_mod_shows_gos_error_and_caches_nothing(
    make_node: Callable[..., Node], sample: Path
) -> None:
    (sample / "go.mod").write_text("module example.com/x\n\ngo 1.24\nrequire (\n")
    node = make_node("a", None)
    proc = node.run("build", ".", cwd=sample, check=False)
    assert proc.returncode == 1
    assert "go.mod" in proc.stderr and "Traceback" not in proc.stderr
    assert manifests(node) == []


def test_unreadable_source_shows_gos_error_and_caches_nothing(
    make_node: Callable[..., Node], sample: Path
) -> None:
    (sample / "broken.go").symlink_to(sample / "does-not-exist.go")
    node = make_node("a", None)
    proc = node.run("build", ".", cwd=sample, check=False)
    assert proc.returncode != 0
    assert "does-not-exist" in proc.stderr or "broken.go" in proc.stderr
    assert manifests(node) == []


def test_unsupported_flag_falls_through_with_a_note(
    make_node: Callable[..., Node], sample: Path, tmp_path: Path
) -> None:
    node = make_node("a", None)
    proc = node.run("build", "-v", "-x", "-o", str(tmp_path / "x"), ".", cwd=sample)
    assert "-x prints the commands go runs; running plain go build" in proc.stderr
    assert (tmp_path / "x").exists()
    assert manifests(node) == []


def test_key_explain_and_diff(make_node: Callable[..., Node], sample: Path) -> None:
    node = make_node("a", None)
    first = json.loads(node.run("key", "--json", "--explain", ".", cwd=sample).stdout)
    names = [name for name, _ in first["fields"]]
    assert (
        "toolchain" in names
        and "file example.com/gocachemgr-sample/greet/greet.go" in names
        and "flags" in names
    )
    (sample / "stats" / "stats.go").write_text(
        (sample / "stats" / "stats.go").read_text().replace("return 0", "return -0")
    )
    second = node.run("key", "--diff", first["key"], ".", cwd=sample)
    lines = second.stdout.splitlines()
    assert lines[0] != first["key"]
    assert "changed  file example.com/gocachemgr-sample/stats/stats.go" in lines
    same = node.run("key", "-tags", "b,a", ".", cwd=sample).stdout
    assert same == node.run("key", "-tags", "a b", ".", cwd=sample).stdout


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def test_several_main_packages_into_an_output_dir(
    make_node: Callable[..., Node], sample: Path, tmp_path: Path
) -> None:
    second = sample / "cmd" / "second"
    second.mkdir(parents=True)
    (second / "main.go").write_text(
        'package main\n\nimport "fmt"\n\nfunc main() { fmt.Println(2) }\n'
    )
    node = make_node("a", None)
    out = tmp_path / "out"
    node.run("build", "-o", str(out) + "/", "./...", cwd=sample)
    built = {p.name: p.read_bytes() for p in out.iterdir()}
    assert sorted(built) == ["gocachemgr-sample", "second"]
    for path in out.iterdir():
        path.unlink()

    hit = node.run("build", "-v", "-o", str(out) + "/", "./...", cwd=sample)

    assert "local hit" in hit.stderr
    assert {p.name: p.read_bytes() for p in out.iterdir()} == built


def test_trimpath_builds_share_outputs_across_checkout_paths(
    make_node: Callable[..., Node], tmp_path: Path, shared_dir: Path
) -> None:
    from tests.helpers import copy_sample

    first, second = copy_sample(tmp_path / "ci-a" / "src"), copy_sample(tmp_path / "ci-b" / "x")
    a, b = make_node("a", shared_dir), make_node("b", shared_dir)
    a.run("build", "-trimpath", "-o", str(tmp_path / "from-a"), ".", cwd=first)

    got = b.run("build", "-v", "-trimpath", "-o", str(tmp_path / "from-b"), ".", cwd=second)

    assert "shared hit" in got.stderr
    assert (tmp_path / "from-a").read_bytes() == (tmp_path / "from-b").read_bytes()


def test_without_trimpath_other_checkout_paths_do_not_share(
    make_node: Callable[..., Node], tmp_path: Path, shared_dir: Path
) -> None:
    """Without -trimpath the binary embeds the source path: another checkout must miss."""
    from tests.helpers import copy_sample

    first, second = copy_sample(tmp_path / "ci-a" / "src"), copy_sample(tmp_path / "ci-b" / "x")
    a, b = make_node("a", shared_dir), make_node("b", shared_dir)
    a.run("build", "-o", str(tmp_path / "from-a"), ".", cwd=first)

    got = b.run("build", "-v", "-o", str(tmp_path / "from-b"), ".", cwd=second)

    assert "hit" not in got.stderr
    assert str(second).encode() in (tmp_path / "from-b").read_bytes()
