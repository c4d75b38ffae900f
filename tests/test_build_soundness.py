"""Soundness of `gocachemgr build`, property-tested: never a stale output.

Hypothesis draws sequences of edits to a generated module (several packages,
a main with an embed, build-tagged files, a test file, a local replace) and
of env/flag changes; after every step the binary from `gocachemgr build`
must be byte-identical to what a plain `go build` with the same flags and env
writes now. One node's caches live for the whole run, so keys computed in
one example meet trees from another — exactly where a stale hit would show.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gocachemgr.config import Config
from gocachemgr.sandbox import isolated_env
from gocachemgr.toolchain import find_go

FILES = {
    "go.mod": "module example.com/sound\n\ngo 1.24\n\nrequire example.com/lib v0.0.0\n\n"
    "replace example.com/lib => ./lib\n",
    "lib/go.mod": "module example.com/lib\n\ngo 1.24\n",
    "lib/lib.go": 'package lib\n\nfunc Name() string { return "lib-0" }\n',
    "cmd/app/main.go": (
        'package main\n\nimport (\n\t_ "embed"\n\t"fmt"\n\n\t"example.com/lib"\n'
        '\t"example.com/sound/internal/a"\n\t"example.com/sound/internal/b"\n)\n\n'
        '//go:embed msg.txt\nvar msg string\n\nvar version = "dev"\n\n'
        "func main() { fmt.Println(a.A(), b.B(), lib.Name(), msg, version) }\n"
    ),
    "cmd/app/msg.txt": "hello 0\n",
    "internal/a/a.go": 'package a\n\nfunc A() string { return "a-" + extra() }\n',
    "internal/a/extra_on.go": (
        '//go:build extra\n\npackage a\n\nfunc extra() string { return "on" }\n'
    ),
    "internal/a/extra_off.go": (
        '//go:build !extra\n\npackage a\n\nfunc extra() string { return "off" }\n'
    ),
    "internal/a/a_test.go": (
        'package a\n\nimport "testing"\n\nfunc TestA(t *testing.T) { _ = A() }\n'
    ),
    "internal/b/b.go": 'package b\n\nfunc B() string { return "b-000" }\n',
}


@dataclass
class World:
    """The module, the env and flags of the current step, and counters for assertions."""

    root: Path
    env: dict[str, str]
    flags: dict[str, str] = field(default_factory=dict)
    counter: int = 0
    hits: int = 0

    def write(self, rel: str, text: str) -> None:
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)

    def read(self, rel: str) -> str:
        return (self.root / rel).read_text()

    def next(self) -> int:
        self.counter += 1
        return self.counter

    def flag_args(self) -> list[str]:
        args = []
        for name, value in sorted(self.flags.items()):
            args += [f"-{name}"] if value == "" else [f"-{name}={value}"]
        return args


def body_edit(w: World) -> None:
    w.write("internal/b/b.go", f'package b\n\nfunc B() string {{ return "b-{w.next():03d}" }}\n')


def same_tick_edit(w: World) -> None:
    """Same size, mtime put back: only the racy-clean rule can notice."""
    path = w.root / "internal/b/b.go"
    st_before = path.stat()
    text = w.read("internal/b/b.go")
    digits = f"{w.next() % 1000:03d}"
    start = text.index('"b-') + 3
    path.write_text(text[:start] + digits + text[start + 3 :])
    os.utime(path, ns=(st_before.st_atime_ns, st_before.st_mtime_ns))


def toggle_import(w: World) -> None:
    text = w.read("cmd/app/main.go")
    if '_ "strings"' in text:
        text = text.replace('\t_ "strings"\n', "")
    else:
        text = text.replace('\t"fmt"\n', '\t"fmt"\n\t_ "strings"\n')
    w.write("cmd/app/main.go", text)


def add_or_delete_file(w: World) -> None:
    path = w.root / "internal/b/more.go"
    if path.exists():
        path.unlink()
    else:
        w.write("internal/b/more.go", f'package b\n\nvar More = "{w.next()}"\n')


def rename_file(w: World) -> None:
    old, new = w.root / "lib/lib.go", w.root / "lib/name.go"
    if not old.exists():
        old, new = new, old
    old.rename(new)


def flip_build_tag(w: World) -> None:
    if "tags" in w.flags:
        del w.flags["tags"]
    else:
        w.flags["tags"] = "extra"


def edit_constraint(w: World) -> None:
    text = w.read("internal/a/extra_on.go")
    if "|| never" in text:
        w.write("internal/a/extra_on.go", text.replace("extra || never", "extra"))
    else:
        w.write(
            "internal/a/extra_on.go", text.replace("//go:build extra", "//go:build extra || never")
        )


def embed_change(w: World) -> None:
    w.write("cmd/app/msg.txt", f"hello {w.next()}\n")


def go_mod_change(w: World) -> None:
    text = w.read("go.mod")
    w.write(
        "go.mod",
        text.replace("go 1.24", "go 1.23")
        if "go 1.24" in text
        else text.replace("go 1.23", "go 1.24"),
    )


def go_sum_change(w: World) -> None:
    path = w.root / "go.sum"
    if path.exists():
        path.unlink()
    else:
        w.write(
            "go.sum",
            "example.com/unused v1.0.0/go.mod h1:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n",
        )


def toggle_cgo(w: World) -> None:
    w.env["CGO_ENABLED"] = "1" if w.env.get("CGO_ENABLED") == "0" else "0"


def toggle_goflags(w: World) -> None:
    w.env["GOFLAGS"] = "-mod=mod" if w.env.get("GOFLAGS") != "-mod=mod" else "-mod=mod -ldflags=-s"


def toggle_goarch(w: World) -> None:
    w.env["GOARCH"] = "arm64" if w.env.get("GOARCH") != "arm64" else "amd64"


def ldflags_x(w: World) -> None:
    w.flags["ldflags"] = f"-X main.version=v{w.next()}"


def toggle_trimpath(w: World) -> None:
    if "trimpath" in w.flags:
        del w.flags["trimpath"]
    else:
        w.flags["trimpath"] = ""


def git_commit(w: World) -> None:
    """Commit the tree with -buildvcs left on (auto): the binary embeds the revision."""
    git_env = {
        **w.env,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.com",
    }
    if not (w.root / ".git").exists():
        subprocess.run(["git", "init", "-q", str(w.root)], check=True, env=git_env)
    subprocess.run(["git", "-C", str(w.root), "add", "-A"], check=True, env=git_env)
    subprocess.run(
        ["git", "-C", str(w.root), "commit", "-q", "--allow-empty", "-m", f"step {w.next()}"],
        check=True,
        env=git_env,
    )


def noop(w: World) -> None:
    """Nothing changes: the next build must be a hit."""


OPERATIONS: list[Callable[[World], None]] = [
    body_edit,
    same_tick_edit,
    toggle_import,
    add_or_delete_file,
    rename_file,
    flip_build_tag,
    edit_constraint,
    embed_change,
    go_mod_change,
    go_sum_change,
    toggle_cgo,
    toggle_goflags,
    toggle_goarch,
    ldflags_x,
    toggle_trimpath,
    git_commit,
    noop,
]


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    root = tmp_path_factory.mktemp("soundness")
    env = isolated_env(root / "env")
    env["GOCACHEMGR_LOCAL_DIR"] = str(root / "node")
    env["GOCACHEMGR_SHARED_DIR"] = ""
    return {"root": root, "env": env, "go": find_go(Config.load())}


def reset(node: dict[str, object]) -> World:
    root = Path(str(node["root"])) / "mod"
    shutil.rmtree(root, ignore_errors=True)
    world = World(root, dict(node["env"]))  # type: ignore[arg-type]
    for rel, text in FILES.items():
        world.write(rel, text)
    return world


def build_both(node: dict[str, object], w: World, step: str) -> None:
    ours, ref = w.root.parent / "ours", w.root.parent / "ref"
    for path in (ours, ref):
        path.unlink(missing_ok=True)
    args = ["build", *w.flag_args()]
    mine = subprocess.run(
        [sys.executable, "-P", "-m", "gocachemgr", *args, "-v", "-o", str(ours), "./cmd/app"],
        cwd=w.root,
        env=w.env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    plain_env = {**w.env, "GOCACHE": str(w.root.parent / "plain-gocache")}
    plain = subprocess.run(
        [str(node["go"]), *args, "-o", str(ref), "./cmd/app"],
        cwd=w.root,
        env=plain_env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert mine.returncode == plain.returncode, (step, mine.stderr[-2000:], plain.stderr[-2000:])
    assert plain.returncode == 0, (step, plain.stderr[-2000:])
    assert ours.read_bytes() == ref.read_bytes(), f"stale after {step}: {mine.stderr[-1500:]}"
    hit = "hit " in mine.stderr
    w.hits += hit
    if step == "noop":
        assert hit, f"an unchanged tree must be a hit: {mine.stderr[-1500:]}"


def run_sequence(node: dict[str, object], ops: list[Callable[[World], None]]) -> World:
    w = reset(node)
    build_both(node, w, "start")
    for op in ops:
        op(w)
        build_both(node, w, op.__name__)
    return w


@settings(max_examples=3, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    st.lists(
        st.sampled_from([op for op in OPERATIONS if op is not toggle_goarch]),
        min_size=6,
        max_size=6,
    )
)
def test_build_is_never_stale_short(
    node: dict[str, object], ops: list[Callable[[World], None]]
) -> None:
    run_sequence(node, [*ops, noop])


def test_every_operation_once_then_noop(node: dict[str, object]) -> None:
    """Each kind of edit at least once per run, whatever hypothesis draws."""
    w = run_sequence(node, [*OPERATIONS, noop])
    assert w.hits >= 2


@pytest.mark.slow
@settings(max_examples=50, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(st.sampled_from(OPERATIONS), min_size=10, max_size=10))
def test_build_is_never_stale_long(
    node: dict[str, object], ops: list[Callable[[World], None]]
) -> None:
    """≥ 500 steps; run with `pytest -m slow`."""
    run_sequence(node, ops)
