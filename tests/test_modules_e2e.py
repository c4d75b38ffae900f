"""Modules shared between nodes through the shared store, with the real go.

Node A builds from an "upstream" file:// proxy (generated modules, since no
public proxy is reachable) and publishes; node B, with upstream set to off,
builds the same program from the shared store alone, go.sum verification on.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from gocachemgr.modules.dirhash import hash_zip
from gocachemgr.modules.synth import Upstream, upstream_fixture
from gocachemgr.sandbox import isolated_env
from gocachemgr.store.atomic import TEMP_PREFIX
from tests.helpers import Node, run_with_readonly_share, warnings_in

LIB = "example.com/lib"


@pytest.fixture(scope="module")
def upstream(tmp_path_factory: pytest.TempPathFactory) -> Upstream:
    return upstream_fixture(tmp_path_factory.mktemp("upstream"))


@pytest.fixture(scope="module")
def node_a(tmp_path_factory: pytest.TempPathFactory, upstream: Upstream) -> Node:
    """Node A after building the consumer once from upstream (read-only for tests)."""
    root = tmp_path_factory.mktemp("published")
    share = root / "share"
    share.mkdir()
    node = node_with(root / "a", share, isolated_env(root / "env"), upstream.goproxy)
    consumer = copy_consumer(upstream, root / "src")
    # The whole module graph (go.mod of versions never built) and then the build.
    node.go("list", "-m", "all", cwd=consumer)
    node.go("build", "-o", str(root / "app"), ".", cwd=consumer)
    return node


@pytest.fixture(scope="module")
def published(node_a: Node) -> Path:
    """The share node A filled: build cache and modules."""
    assert node_a.shared_dir is not None
    return node_a.shared_dir


def node_with(
    local: Path, share: Path | None, base: dict[str, str], goproxy: str,
    warm_from: Node | None = None,
) -> Node:
    """A node whose go verifies go.sum (no -mod=mod) and whose upstream is ``goproxy``.

    ``warm_from``: start with that node's local build cache (not its modules, its
    counters zeroed), so a test's builds compile nothing and stay quick.
    """
    node = Node(local, share, {**base, "GOPROXY": goproxy, "GOFLAGS": ""})
    if warm_from is not None:
        shutil.copytree(warm_from.local_dir, local, ignore=shutil.ignore_patterns("gomodcache"))
        node.zero_stats()
    return node


def copy_consumer(upstream: Upstream, dest: Path) -> Path:
    shutil.copytree(upstream.consumer_dir, dest)
    return dest


def run_binary(path: Path) -> str:
    return subprocess.run([str(path)], capture_output=True, text=True, check=True).stdout


def store_dir(share: Path, escaped_path: str) -> Path:
    return share / "modules" / escaped_path / "@v"


def store_problems(share: Path) -> list[str]:
    """Temp files anywhere in the share, leases left, and version lists with duplicates."""
    problems = [str(p) for p in share.rglob(f"{TEMP_PREFIX}*")]
    problems += [str(p) for p in (share / "tmp").iterdir()]
    problems += [str(p) for p in (share / "locks").iterdir()]
    for listing in (share / "modules").rglob("list"):
        lines = listing.read_text().split()
        if len(lines) != len(set(lines)):
            problems.append(f"duplicate lines in {listing}: {lines}")
    return problems


# -- the runner's module settings ---------------------------------------------------


def test_go_gets_local_modcache_and_shared_proxy_first(
    base_env: dict[str, str], tmp_path: Path, shared_dir: Path
) -> None:
    node = Node(tmp_path / "n", shared_dir, {**base_env, "GOPROXY": "https://up.example,direct",
                                             "GOPRIVATE": "corp.example"})
    values = node.go("env", "GOMODCACHE", "GOPROXY", "GONOPROXY").stdout.split("\n")

    assert values[0] == str(tmp_path / "n" / "gomodcache")
    assert values[1] == f"{(shared_dir / 'modules').as_uri()}|https://up.example,direct"
    assert values[2] == "none"  # not GOPRIVATE: private modules go through the store too


def test_nested_run_does_not_list_the_share_twice(
    base_env: dict[str, str], tmp_path: Path, shared_dir: Path
) -> None:
    node = Node(tmp_path / "n", shared_dir, base_env)
    outer = node.go("env", "GOPROXY").stdout.strip()
    nested = Node(tmp_path / "n", shared_dir, {**base_env, "GOPROXY": outer})

    assert nested.go("env", "GOPROXY").stdout.strip() == outer == (
        f"{(shared_dir / 'modules').as_uri()}|off"
    )


def test_upstream_comes_from_config_then_env_then_go_env_file(
    base_env: dict[str, str], tmp_path: Path, shared_dir: Path
) -> None:
    go_env_file = Path(base_env["XDG_CONFIG_HOME"]) / "go" / "env"
    go_env_file.parent.mkdir(parents=True)
    go_env_file.write_text("GOPROXY=https://from-file.example\n")
    store = (shared_dir / "modules").as_uri()
    env = {k: v for k, v in base_env.items() if k != "GOPROXY"}

    def goproxy(**extra: str) -> str:
        return Node(tmp_path / "n", shared_dir, {**env, **extra}).go("env", "GOPROXY").stdout

    assert goproxy() == f"{store}|https://from-file.example\n"
    assert goproxy(GOPROXY="https://env.example") == f"{store}|https://env.example\n"
    assert goproxy(GOPROXY="https://env.example", GOCACHEMGR_UPSTREAM_PROXY="off") == (
        f"{store}|off\n"
    )


def test_without_a_shared_dir_module_settings_are_untouched(
    base_env: dict[str, str], tmp_path: Path
) -> None:
    node = Node(tmp_path / "n", None, {**base_env, "GOPROXY": "https://up.example"})
    values = node.go("env", "GOMODCACHE", "GOPROXY").stdout.split("\n")

    assert values[0] == str(Path(base_env["GOPATH"]) / "pkg" / "mod")
    assert values[1] == "https://up.example"


# -- publish and build offline ------------------------------------------------------


def test_node_b_builds_offline_from_the_shared_store(
    upstream: Upstream, published: Path, tmp_path: Path, base_env: dict[str, str]
) -> None:
    share = tmp_path / "share"
    shutil.copytree(published, share)
    consumer = copy_consumer(upstream, tmp_path / "src")
    # Without the share, upstream off: the build cannot work (so B really uses the store).
    lonely = node_with(tmp_path / "c", None, base_env, "off")
    assert lonely.go("build", "-o", str(tmp_path / "x"), ".", cwd=consumer, check=False).returncode

    node_b = node_with(tmp_path / "b", share, base_env, "off")
    node_b.go("build", "-o", str(tmp_path / "app"), ".", cwd=consumer)
    graph = node_b.go("list", "-m", "all", cwd=consumer).stdout

    assert run_binary(tmp_path / "app") == upstream.expected_output
    assert f"{LIB} v1.2.0" in graph
    # The graph needed the .mod of versions nobody built; only the store had them.
    old_mods = node_b.local_dir / "gomodcache/cache/download" / LIB / "@v"
    assert (old_mods / "v1.0.0.mod").exists() and not (old_mods / "v1.0.0.zip").exists()
    assert store_problems(share) == []


def test_store_layout_has_every_kind_of_version(upstream: Upstream, published: Path) -> None:
    lib = store_dir(published, "example.com/lib")
    # v1.2.0 built, v1.0.0 reached by the unpruned graph of old (go 1.16); mid's
    # v1.1.0 is pruned away, so go never fetched it.
    assert (lib / "list").read_text() == "v1.0.0\nv1.2.0\n"
    assert (lib / "v1.0.0.mod").exists() and not (lib / "v1.0.0.zip").exists()  # .mod only
    assert hash_zip(lib / "v1.2.0.zip") == (lib / "v1.2.0.ziphash").read_text().strip()
    assert (store_dir(published, "example.com/!upper/!case") / "list").exists()
    pseudo = [mv for mv in upstream.versions if "-2024" in mv.version]
    assert pseudo, "the fixture has a pseudo-version"
    pseudo_dir = store_dir(published, pseudo[0].path.lower())
    assert (pseudo_dir / f"{pseudo[0].version}.zip").exists()
    # Listed as go lists its own cache (go skips pseudo-versions when it reads a list).
    assert (pseudo_dir / "list").read_text() == f"{pseudo[0].version}\n"
    umask = os.umask(0)
    os.umask(umask)
    for path in (published / "modules").rglob("*"):
        mode = path.stat().st_mode & 0o7777
        # group-shared: files 0664, dirs 2775 with setgid, both less the umask
        assert mode == (0o2775 & ~umask if path.is_dir() else 0o664 & ~umask), path
    assert store_problems(published) == []


def test_nothing_new_publishes_nothing(
    upstream: Upstream, node_a: Node, tmp_path: Path, base_env: dict[str, str], shared_dir: Path
) -> None:
    node = node_with(tmp_path / "a", shared_dir, base_env, upstream.goproxy, warm_from=node_a)
    consumer = copy_consumer(upstream, tmp_path / "src")
    node.go("build", "-o", str(tmp_path / "app"), ".", cwd=consumer)
    before = {p: p.stat().st_mtime_ns for p in (shared_dir / "modules").rglob("*")}
    first = node.stats()["modules_published"]

    node.go("build", "-o", str(tmp_path / "app"), ".", cwd=consumer)

    assert {p: p.stat().st_mtime_ns for p in (shared_dir / "modules").rglob("*")} == before
    local_versions = list((node.local_dir / "gomodcache/cache/download").rglob("*.mod"))
    assert first == len(local_versions) and node.stats()["modules_published"] == first


# -- many publishers ---------------------------------------------------------------


def test_four_concurrent_publishers_leave_a_consistent_store(
    upstream: Upstream, node_a: Node, tmp_path: Path, base_env: dict[str, str], shared_dir: Path
) -> None:
    seed = node_with(tmp_path / "seed", None, base_env, upstream.goproxy)
    consumer = copy_consumer(upstream, tmp_path / "src")
    seed.go("mod", "download", cwd=consumer)
    nodes = []
    for i in range(4):
        node = node_with(tmp_path / f"n{i}", shared_dir, base_env, "off")
        shutil.copytree(Path(base_env["GOPATH"]) / "pkg" / "mod", node.local_dir / "gomodcache")
        if i >= 2:  # overlapping, not identical: drop lib's newest version on two nodes
            for old in (node.local_dir / "gomodcache/cache/download/example.com/lib/@v").glob(
                f"v1.{i - 1}.0.*"
            ):
                old.chmod(0o644)
                old.unlink()
        nodes.append(node)

    procs = [
        subprocess.Popen(
            [sys.executable, "-P", "-m", "gocachemgr", "mod", "push", "--json"],
            env=node.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        for node in nodes
    ]
    outputs = [p.communicate(timeout=120) for p in procs]

    assert [p.returncode for p in procs] == [0] * 4, outputs
    reports = [json.loads(out) for out, _ in outputs]
    assert all(r["failed"] == [] for r in reports)
    assert store_problems(shared_dir) == []
    seeded = Path(base_env["GOPATH"]) / "pkg/mod/cache/download" / LIB / "@v"
    expected = sorted(p.stem for p in seeded.glob("*.mod"))
    assert len(expected) >= 2
    assert (store_dir(shared_dir, LIB) / "list").read_text().split() == expected
    verify = nodes[0].run("mod", "verify", "--json")
    assert json.loads(verify.stdout)["bad"] == []
    # And the store serves a build with upstream off.
    reader = node_with(tmp_path / "reader", shared_dir, base_env, "off", warm_from=node_a)
    reader.go("build", "-o", str(tmp_path / "app"), ".", cwd=consumer)
    assert run_binary(tmp_path / "app") == upstream.expected_output


# -- damage -------------------------------------------------------------------------


def tamper(zip_path: Path) -> None:
    """Replace a zip with a well-formed one whose contents differ (a lying store)."""
    with zipfile.ZipFile(zip_path) as z:
        entries = [(info.filename, z.read(info)) for info in z.infolist()]
    zip_path.unlink()
    with zipfile.ZipFile(zip_path, "w") as z:
        for name, data in entries:
            z.writestr(name, data + b"\n// tampered\n" if name.endswith(".go") else data)


def test_corrupted_zip_is_refused_found_quarantined_and_repaired(
    upstream: Upstream, node_a: Node, tmp_path: Path, base_env: dict[str, str], shared_dir: Path
) -> None:
    writer = node_with(tmp_path / "a", shared_dir, base_env, upstream.goproxy, warm_from=node_a)
    consumer = copy_consumer(upstream, tmp_path / "src")
    writer.go("build", "-o", str(tmp_path / "app"), ".", cwd=consumer)
    bad = store_dir(shared_dir, "example.com/lib") / "v1.2.0.zip"
    tamper(bad)

    node_b = node_with(tmp_path / "b", shared_dir, base_env, "off", warm_from=node_a)
    refused = node_b.go("build", "-o", str(tmp_path / "b-app"), ".", cwd=consumer, check=False)
    assert refused.returncode != 0
    assert "checksum mismatch" in refused.stderr and "example.com/lib@v1.2.0" in refused.stderr

    verify = node_b.run("mod", "verify", check=False)
    assert verify.returncode == 1
    assert str(bad) in verify.stderr and "quarantined" in verify.stderr
    assert not bad.exists() and list((shared_dir / "quarantine").iterdir())

    writer.go("build", "-o", str(tmp_path / "app"), ".", cwd=consumer)  # the next publish
    assert hash_zip(bad) == (bad.with_suffix(".ziphash")).read_text().strip()
    node_b.go("build", "-o", str(tmp_path / "b-app"), ".", cwd=consumer)
    assert run_binary(tmp_path / "b-app") == upstream.expected_output
    assert node_b.run("mod", "verify").returncode == 0


# -- a share that cannot be used ----------------------------------------------------


def test_missing_share_builds_from_upstream_with_one_warning(
    upstream: Upstream, node_a: Node, tmp_path: Path, base_env: dict[str, str]
) -> None:
    node = node_with(
        tmp_path / "a", tmp_path / "no-such-share", base_env, upstream.goproxy, warm_from=node_a
    )
    consumer = copy_consumer(upstream, tmp_path / "src")
    built = node.go("build", "-o", str(tmp_path / "app"), ".", cwd=consumer)

    assert run_binary(tmp_path / "app") == upstream.expected_output
    assert len(warnings_in(built.stderr)) == 1, built.stderr
    assert "does not exist" in built.stderr


@pytest.mark.skipif(os.geteuid() != 0, reason="a read-only bind mount needs root")
def test_read_only_share_builds_from_upstream_with_one_warning(
    upstream: Upstream, node_a: Node, tmp_path: Path, base_env: dict[str, str], shared_dir: Path
) -> None:
    node = node_with(tmp_path / "a", shared_dir, base_env, upstream.goproxy, warm_from=node_a)
    node.go("env", "GOPROXY")  # lays out the empty share
    consumer = copy_consumer(upstream, tmp_path / "src")

    built = run_with_readonly_share(
        node, shared_dir, "go", "build", "-o", str(tmp_path / "app"), ".", cwd=consumer
    )

    assert built.returncode == 0, built.stderr
    assert run_binary(tmp_path / "app") == upstream.expected_output
    assert len(warnings_in(built.stderr)) == 1, built.stderr
    assert not list((shared_dir / "modules").rglob("*.zip"))


# -- leases -------------------------------------------------------------------------


def plant_lease(share: Path, escaped_path: str, content: dict[str, object]) -> Path:
    from gocachemgr.store.lease import lease_name_for

    path = share / "locks" / f"{lease_name_for(f'modules/{escaped_path}')}.lease"
    path.write_text(json.dumps(content) + "\n")
    return path


def test_lease_of_a_killed_publisher_is_broken_after_the_stale_timeout(
    upstream: Upstream, node_a: Node, tmp_path: Path, base_env: dict[str, str], shared_dir: Path
) -> None:
    node = node_with(tmp_path / "a", shared_dir, base_env, upstream.goproxy, warm_from=node_a)
    node.go("env", "GOPROXY")  # lays out the share
    lease = plant_lease(shared_dir, "example.com/lib", {
        "owner": "gone-host:4242", "token": "t" * 16, "boot_id": "another-boot", "pidns": 1,
        "time": time.time() - 3600,
    })
    node.base_env = {**node.base_env, "GOCACHEMGR_LEASE_STALE": "1"}
    consumer = copy_consumer(upstream, tmp_path / "src")

    start = time.monotonic()
    built = node.go("build", "-o", str(tmp_path / "app"), ".", cwd=consumer)

    assert warnings_in(built.stderr) == []
    assert time.monotonic() - start >= 1
    assert not lease.exists()
    assert "v1.2.0" in (store_dir(shared_dir, "example.com/lib") / "list").read_text()


def test_live_lease_is_respected(
    upstream: Upstream, node_a: Node, tmp_path: Path, base_env: dict[str, str], shared_dir: Path
) -> None:
    node = node_with(tmp_path / "a", shared_dir, base_env, upstream.goproxy, warm_from=node_a)
    node.go("env", "GOPROXY")
    holder = subprocess.Popen(
        [sys.executable, "-c", (
            "import sys, time\n"
            "from pathlib import Path\n"
            "from gocachemgr.store.lease import Lease, lease_name_for\n"
            "lease = Lease(Path(sys.argv[1]), lease_name_for('modules/example.com/lib'),\n"
            "              stale_after=1.0)\n"
            "with lease:\n"
            "    print('held', flush=True)\n"
            "    time.sleep(60)\n"
        ), str(shared_dir / "locks")],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        node.base_env = {**node.base_env, "GOCACHEMGR_LEASE_STALE": "1",
                         "GOCACHEMGR_SHARED_TIMEOUT": "2"}
        consumer = copy_consumer(upstream, tmp_path / "src")
        built = node.go("build", "-o", str(tmp_path / "app"), ".", cwd=consumer)

        warnings = warnings_in(built.stderr)
        assert len(warnings) == 1 and "example.com/lib" in warnings[0], built.stderr
        assert "lib" not in [p.parent.parent.name for p in (shared_dir / "modules").rglob("list")]
        push = node.run("mod", "push", check=False)
        assert push.returncode == 1 and f"{holder.pid}" in push.stderr
    finally:
        holder.kill()
        holder.wait()
    # Once the holder is gone (killed on this machine), the next publish goes through.
    assert node.run("mod", "push").returncode == 0
    assert (store_dir(shared_dir, "example.com/lib") / "list").exists()


# -- mod pull -----------------------------------------------------------------------


def test_mod_pull_fills_the_local_cache_from_the_store(
    upstream: Upstream, published: Path, tmp_path: Path, base_env: dict[str, str]
) -> None:
    share = tmp_path / "share"
    shutil.copytree(published, share)
    consumer = copy_consumer(upstream, tmp_path / "src")
    node = node_with(tmp_path / "b", share, base_env, "off")

    report = json.loads(node.run("mod", "pull", str(consumer), "--json").stdout)

    zips = {mv.path for mv in upstream.versions} - {LIB}
    assert report["errors"] == [] and report["from_upstream"] == 0
    assert report["from_shared"] == len(zips) + 1  # every required module, lib v1.2.0 once
    again = json.loads(node.run("mod", "pull", str(consumer), "--json").stdout)
    assert again["already_local"] == report["from_shared"] and again["from_shared"] == 0


# -- bad input ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["mod", "pull", "/no/such/dir"], "does not exist"),
        (["mod", "verify"], "no shared dir configured"),
        (["mod", "push"], "no shared dir configured"),
    ],
)
def test_mod_commands_reject_bad_input_in_one_line(
    args: list[str], message: str, tmp_path: Path, base_env: dict[str, str]
) -> None:
    result = Node(tmp_path / "n", None, base_env).run(*args, check=False)

    assert result.returncode == 2
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_mod_push_to_a_missing_share_is_one_line(tmp_path: Path, base_env: dict[str, str]) -> None:
    result = Node(tmp_path / "n", tmp_path / "gone", base_env).run("mod", "push", check=False)

    assert result.returncode == 2
    assert "does not exist" in result.stderr and len(result.stderr.strip().splitlines()) == 1


# -- content keys with module dependencies ------------------------------------------


def test_gocachemgr_build_miss_publishes_its_modules(
    upstream: Upstream, node_a: Node, tmp_path: Path, base_env: dict[str, str], shared_dir: Path
) -> None:
    """Regression: `gocachemgr build` holds the lmdb index while go runs, and the module
    publish after go opened it a second time in the same process (lmdb refuses that)."""
    node = node_with(tmp_path / "a", shared_dir, base_env, upstream.goproxy, warm_from=node_a)
    consumer = copy_consumer(upstream, tmp_path / "src")

    built = node.run("build", "-o", str(tmp_path / "app"), ".", cwd=consumer)

    assert warnings_in(built.stderr) == [], built.stderr
    assert (store_dir(shared_dir, LIB) / "v1.2.0.zip").exists()
    assert run_binary(tmp_path / "app") == upstream.expected_output


def test_build_keys_ignore_where_modules_live_unless_the_binary_names_it(
    upstream: Upstream, published: Path, tmp_path: Path, base_env: dict[str, str]
) -> None:
    """Nodes keep modules under their own local dirs: with -trimpath their keys agree;
    without it the module cache path is inside the binary, so the keys must differ."""
    share = tmp_path / "share"
    shutil.copytree(published, share)
    consumer = copy_consumer(upstream, tmp_path / "src")
    nodes = [node_with(tmp_path / name, share, base_env, "off") for name in ("x", "y")]

    def key(node: Node, *flags: str) -> str:
        return node.run("key", *flags, "-o", "app", ".", cwd=consumer).stdout.strip()

    assert key(nodes[0], "-trimpath") == key(nodes[1], "-trimpath")
    assert key(nodes[0]) != key(nodes[1])


def test_a_list_merge_that_failed_is_retried_by_the_next_publish(
    node_a: Node, tmp_path: Path
) -> None:
    """Regression: a version whose .mod went up while its list merge timed out on a
    lease was never listed, as the next publish found its .mod already there."""
    from gocachemgr.modules.localcache import versions_in
    from gocachemgr.modules.store import ModuleStore
    from gocachemgr.store.lease import Lease, LeaseTimeout, lease_name_for
    from gocachemgr.store.shared import SharedStore

    share = tmp_path / "share"
    share.mkdir()
    shared = SharedStore(share)
    shared.open()
    store = ModuleStore(shared, lease_timeout=0.2)
    versions = versions_in(LIB, node_a.local_dir / "gomodcache/cache/download" / LIB / "@v")

    with Lease(share / "locks", lease_name_for(f"modules/{LIB}")), pytest.raises(LeaseTimeout):
        store.publish_module(LIB, versions)
    assert (store_dir(share, LIB) / "v1.2.0.mod").exists()
    assert not (store_dir(share, LIB) / "list").exists()

    store.publish_module(LIB, versions)
    assert "v1.2.0" in (store_dir(share, LIB) / "list").read_text().split()
