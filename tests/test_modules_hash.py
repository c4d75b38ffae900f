"""Our h1: hashes against the real go's, on modules served by a generated file:// proxy."""

from __future__ import annotations

import io
import json
import os
import subprocess
import warnings
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gocachemgr.config import Config
from gocachemgr.modules.dirhash import ZipHashError, hash1, hash_gomod, hash_zip
from gocachemgr.modules.synth import (
    ModuleVersion,
    Upstream,
    synthetic_graph,
    upstream_fixture,
    write_proxy,
)
from gocachemgr.sandbox import isolated_env
from gocachemgr.toolchain import find_go


@dataclass
class World:
    """The upstream fixture and an env whose GOCACHE every test here shares (std compiles once)."""

    upstream: Upstream
    env: dict[str, str]
    go: str


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    root = tmp_path_factory.mktemp("modules")
    env = isolated_env(root / "env")
    # conftest's _isolate is per test; this module-wide setup needs the same isolation.
    with pytest.MonkeyPatch.context() as mp:
        for key in list(os.environ):
            if key not in env:
                mp.delenv(key)
        for key, value in env.items():
            mp.setenv(key, value)
        upstream = upstream_fixture(root / "upstream")
        go = find_go(Config.load())
    env.update(GOPROXY=upstream.goproxy, GOFLAGS="-mod=readonly", GOWORK="off")
    yield World(upstream, env, go)


def run_go(
    world: World, modcache: Path, *args: str, cwd: Path, check: bool = True, **env: str
) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [world.go, *args],
        cwd=cwd,
        env={**world.env, "GOMODCACHE": str(modcache), **env},
        capture_output=True,
        text=True,
        errors="replace",  # go quotes file names from zips byte for byte
        timeout=300,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"go {' '.join(args)} exited {proc.returncode}:\n{proc.stderr}")
    return proc


def json_stream(text: str) -> list[dict[str, str]]:
    """The concatenated JSON objects `go mod download -json` prints."""
    decoder, records, pos = json.JSONDecoder(), [], 0
    while pos < len(text):
        if text[pos].isspace():
            pos += 1
            continue
        record, pos = decoder.raw_decode(text, pos)
        records.append(record)
    return records


@pytest.fixture(scope="module")
def downloaded(world: World, tmp_path_factory: pytest.TempPathFactory) -> tuple[list, Path]:
    """`go mod download -json all` into a fresh module cache: go's own hashes of everything."""
    modcache = tmp_path_factory.mktemp("dl") / "modcache"
    proc = run_go(
        world, modcache, "mod", "download", "-json", "all", cwd=world.upstream.consumer_dir
    )
    return json_stream(proc.stdout), modcache


def go_sum(consumer_dir: Path) -> dict[str, str]:
    """go.sum as {"path version[/go.mod]": "h1:..."}."""
    lines = (consumer_dir / "go.sum").read_text().splitlines()
    return {f"{p} {v}": h for p, v, h in (line.split() for line in lines)}


def test_hash_zip_equals_go_sum_and_ziphash(downloaded: tuple[list, Path]) -> None:
    records, _ = downloaded
    assert {r["Path"] for r in records} >= {"example.com/lib", "example.com/Upper/Case"}
    for r in records:
        assert "Error" not in r, r
        ours = hash_zip(Path(r["Zip"]))
        assert ours == r["Sum"], r["Path"]
        assert Path(r["Zip"] + "hash").read_text().strip() == ours


def test_hash_gomod_equals_go(world: World, downloaded: tuple[list, Path]) -> None:
    records, modcache = downloaded
    for r in records:
        assert hash_gomod(Path(r["GoMod"]).read_bytes()) == r["GoModSum"], r["Path"]
    # Every .mod go fetched, graph-only ones included, is vouched for by go.sum.
    sums = go_sum(world.upstream.consumer_dir)
    mods = sorted((modcache / "cache" / "download").glob("example.com/**/@v/*.mod"))
    assert len(mods) > len(records)
    for mod in mods:
        escaped = mod.parent.parent.relative_to(modcache / "cache" / "download").as_posix()
        path = escaped.replace("!upper", "Upper").replace("!case", "Case")
        assert hash_gomod(mod.read_bytes()) == sums[f"{path} {mod.stem}/go.mod"], mod


def test_consumer_builds_and_the_graph_only_version_stays_mod_only(
    world: World, tmp_path: Path
) -> None:
    modcache, exe = tmp_path / "modcache", tmp_path / "consumer"
    consumer = world.upstream.consumer_dir
    run_go(world, modcache, "build", "-o", str(exe), ".", cwd=consumer)
    out = subprocess.run([exe], capture_output=True, text=True, check=True).stdout
    assert out == world.upstream.expected_output
    lib = modcache / "cache" / "download" / "example.com" / "lib" / "@v"
    upper = modcache / "cache" / "download" / "example.com" / "!upper" / "!case" / "@v"
    assert {"v1.0.0.zip", "v1.0.0.ziphash", "v1.0.0.mod"} <= set(os.listdir(upper))
    # A go >= 1.17 main module loads the module graph lazily: a plain build
    # never asks for lib v1.0.0, which only the go 1.16 module old requires.
    assert sorted(lib.glob("v1.0.0.*")) == []
    # `go mod download` (what CI runs first) loads the graph: v1.0.0's go.mod, no zip.
    run_go(world, modcache, "mod", "download", cwd=consumer)
    run_go(world, modcache, "build", "-o", str(exe), ".", cwd=consumer)
    assert sorted(p.name for p in lib.glob("v1.0.0.*")) == ["v1.0.0.mod"]
    assert {"v1.2.0.mod", "v1.2.0.zip"} <= {p.name for p in lib.glob("v1.2.0.*")}
    assert not list(lib.glob("v1.1.0.*"))  # reached only through the pruned mid
    assert not list((modcache / "cache" / "download").rglob("*.tmp"))
    assert not list((modcache / "cache" / "download").rglob("*.partial"))


def test_synthetic_graph_builds(world: World, tmp_path: Path) -> None:
    graph = synthetic_graph(tmp_path / "synth", 5)
    assert len(graph.versions) == 5
    deep = graph.versions[4].files["go.mod"]
    assert "example.com/synth/m002" in deep and "example.com/synth/m001" in deep  # not a star
    exe = tmp_path / "synth-consumer"
    run_go(
        world,
        tmp_path / "modcache",
        "build",
        "-o",
        str(exe),
        ".",
        cwd=graph.consumer_dir,
        GOPROXY=graph.goproxy,
    )
    out = subprocess.run([exe], capture_output=True, text=True, check=True).stdout
    assert out == graph.expected_output


def test_write_proxy_layout_is_go_s_and_deterministic(world: World, tmp_path: Path) -> None:
    for name in ("one", "two"):
        write_proxy(tmp_path / name, world.upstream.versions)
    files = sorted(p.relative_to(tmp_path / "one") for p in (tmp_path / "one").rglob("*"))
    for rel in files:
        if (tmp_path / "one" / rel).is_file():
            assert (tmp_path / "one" / rel).read_bytes() == (tmp_path / "two" / rel).read_bytes()
    lib = tmp_path / "one" / "example.com" / "lib" / "@v"
    assert (lib / "list").read_text() == "v1.0.0\nv1.1.0\nv1.2.0\n"
    assert json.loads((lib / "v1.1.0.info").read_text())["Version"] == "v1.1.0"
    with zipfile.ZipFile(lib / "v1.1.0.zip") as zf:
        assert zf.namelist() == ["example.com/lib@v1.1.0/go.mod", "example.com/lib@v1.1.0/lib.go"]
    [pseudo] = [mv for mv in world.upstream.versions if mv.path == "example.com/pseudo"]
    pseudo_dir = tmp_path / "one" / "example.com" / "pseudo" / "@v"
    assert (pseudo_dir / "list").read_text() == ""  # a proxy lists tags only
    assert json.loads((pseudo_dir / f"{pseudo.version}.info").read_text())["Time"] == pseudo.time
    assert (tmp_path / "one" / "example.com" / "!upper" / "!case" / "@v" / "v1.0.0.zip").exists()
    # Publishing more later merges the list.
    extra = ModuleVersion("example.com/lib", "v1.3.0-rc.1", {"go.mod": "module example.com/lib\n"})
    write_proxy(tmp_path / "one", [extra])
    assert (lib / "list").read_text() == "v1.0.0\nv1.1.0\nv1.2.0\nv1.3.0-rc.1\n"
    with pytest.raises(ValueError, match=r"no go\.mod"):
        ModuleVersion("example.com/x", "v1.0.0", {"x.go": "package x\n"})


class _RawName(zipfile.ZipInfo):
    """An entry whose name bytes are written as given, without the UTF-8 flag (old tools)."""

    def _encodeFilenameFlags(self) -> tuple[bytes, int]:
        return self.filename.encode("cp437"), self.flag_bits


def test_odd_zips_hash_like_go(world: World, tmp_path: Path) -> None:
    """Duplicates, a directory entry, NUL and non-UTF-8 names, a multi-chunk file: go's HashZip."""
    proxy = tmp_path / "proxy"
    write_proxy(proxy, [ModuleVersion("example.com/odd", "v1.0.0", {"go.mod": "module odd\n"})])
    zip_path = proxy / "example.com" / "odd" / "@v" / "v1.0.0.zip"
    prefix = "example.com/odd@v1.0.0/"
    with warnings.catch_warnings(), zipfile.ZipFile(zip_path, "a") as zf:
        warnings.simplefilter("ignore")  # "Duplicate name": the point of this zip
        zf.writestr(prefix + "a.go", "first")
        zf.writestr(prefix + "a.go", "second")
        zf.writestr(prefix + "dir/", "")
        zf.writestr(prefix + "nul\x00name", "x")
        zf.writestr(prefix + "caf\u00e9.txt", "utf-8 flagged")
        zf.writestr(_RawName(prefix + b"raw\xe9\x80".decode("cp437")), "no flag")
        zf.writestr(prefix + "big.bin", os.urandom(3 << 20), zipfile.ZIP_STORED)
    proc = run_go(
        world,
        tmp_path / "modcache",
        "mod",
        "download",
        "-json",
        "example.com/odd@v1.0.0",
        cwd=tmp_path,
        check=False,  # go hashes the zip, then refuses to extract it
        GOPROXY=proxy.as_uri(),
        GOFLAGS="-mod=mod",
    )
    [record] = json_stream(proc.stdout)
    assert record["Sum"].startswith("h1:")
    assert hash_zip(zip_path) == record["Sum"]


def test_malformed_zips_raise_zip_hash_error(world: World, tmp_path: Path) -> None:
    good = next(world.upstream.proxy_dir.glob("example.com/nested/@v/*.zip")).read_bytes()
    bad = tmp_path / "bad.zip"
    for data in (b"", b"not a zip at all", good[: len(good) // 2], good[:-1], good[:40]):
        bad.write_bytes(data)
        with pytest.raises(ZipHashError, match="cannot hash"):
            hash_zip(bad)
    with pytest.raises(FileNotFoundError):
        hash_zip(tmp_path / "missing.zip")


@pytest.fixture(scope="module")
def sample_zip(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    proxy = tmp_path_factory.mktemp("sample-proxy")
    files = {
        "go.mod": "module example.com/s\n",
        "a.go": "package s\n" * 50,
        "b/c.go": "package c\n",
    }
    write_proxy(proxy, [ModuleVersion("example.com/s", "v1.0.0", files)])
    return (proxy / "example.com" / "s" / "@v" / "v1.0.0.zip").read_bytes()


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    flips=st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), max_size=4),
    cut=st.integers(0, 10_000) | st.none(),
)
def test_damaged_zip_hashes_or_raises_zip_hash_error(
    sample_zip: bytes, tmp_path: Path, flips: list[tuple[int, int]], cut: int | None
) -> None:
    data = bytearray(sample_zip)
    for pos, byte in flips:
        data[pos % len(data)] = byte
    path = tmp_path / "damaged.zip"
    path.write_bytes(bytes(data[:cut]))
    try:
        assert hash_zip(path).startswith("h1:")
    except ZipHashError as e:
        assert "\n" not in str(e)


def test_hash1_refuses_newline_names() -> None:
    with pytest.raises(ValueError, match="newlines"):
        hash1([("a\nb", io.BytesIO)])
