"""Content keys for whole build outputs: toolchain · env · flags · VCS stamp · closure.

Soundness first: a key may only be equal for two builds when `go build` would
write byte-identical outputs for both. Everything go reads is either hashed
here or fixed by something hashed here (the toolchain identity covers GOROOT,
module-cache versions are immutable and named by path@version + go.sum).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from gocachemgr.index import Index
from gocachemgr.keys.flags import BuildArgs
from gocachemgr.keys.graph import Closure, GraphCache, Package, resolve_closure, run_go_list
from gocachemgr.keys.hashing import KeyHasher
from gocachemgr.keys.identity import Toolchain, ToolchainMemo, relevant_env
from gocachemgr.keys.memo import RACY_NS, FileMemo, FileState, check_files
from gocachemgr.store.shared import SharedStore
from gocachemgr.watch import WatchState


@dataclass
class KeyResult:
    key: str
    closure: Closure
    toolchain: Toolchain
    ran_go_list: bool
    fields: list[tuple[str, str]] = field(default_factory=list)  # for --explain
    files_hashed: int = 0
    files_statted: int = 0
    vcs: str = "off"  # the VCS stamp that went into the key


def _git(repo: str, *args: str, env: Mapping[str, str]) -> str:
    proc = subprocess.run(
        ["git", "-C", repo, *args], capture_output=True, text=True, env=dict(env), timeout=120
    )
    return proc.stdout if proc.returncode == 0 else f"error {proc.returncode}: {proc.stderr}"


def vcs_stamp(build: BuildArgs, closure: Closure, cwd: str, env: Mapping[str, str]) -> str:
    """What `-buildvcs` would embed: go looks for a repository from the current directory
    and stamps main packages of the main module inside it (cmd/go/internal/load), never
    standard ones (cmd/go, cmd/gofmt...)."""
    if build.flag("buildvcs") == "false" or not any(
        p.is_command and not p.standard for p in closure.targets
    ):
        return "off"
    directory = cwd
    while not os.path.exists(os.path.join(directory, ".git")):
        parent = os.path.dirname(directory)
        if parent == directory:
            other = [
                d
                for d in (".hg", ".svn", ".bzr", ".fossil")
                if os.path.exists(os.path.join(cwd, d))
            ]
            return f"none {other}"
        directory = parent
    if shutil.which("git", path=env.get("PATH")) is None:
        return "git repository, no git command"
    modules = {str(p.module.get("Dir")) for p in closure.targets if p.module}
    inside = sorted(
        os.path.relpath(m, directory)
        for m in modules
        if m == directory or m.startswith(directory + os.sep)
    )
    trimmed = build.flag("trimpath") == "true"  # then no checkout path reaches the binary
    return json.dumps(
        {
            "repo": "" if trimmed else directory,
            "modules": inside,
            "head": _git(
                directory, "-c", "log.showsignature=false", "log", "-1", "--format=%H:%ct", env=env
            ),
            "modified": bool(_git(directory, "status", "--porcelain", env=env).strip()),
        }
    )


@dataclass(frozen=True)
class WatchView:
    """What a live watcher vouches for since this workspace's last key."""

    root: str
    seq: int
    dirty: frozenset[str] | None  # None: not trusted, stat-check everything
    # A watcher was registered when seq was read. If not, any later watcher starts
    # after seq, so a mark saved with this seq can never be trusted.
    watched: bool = True

    def trusted(self, path: str) -> bool:
        if self.dirty is None or not _under(path, self.root):
            return False
        return not any(_under(path, d) for d in self.dirty)


def _under(path: str, directory: str) -> bool:
    return path == directory or path.startswith(directory.rstrip(os.sep) + os.sep)


class KeyEngine:
    """Computes content keys with the lmdb memos of one local root."""

    def __init__(
        self,
        index: Index,
        go: str,
        env: Mapping[str, str],
        cwd: str,
        *,
        shared: SharedStore | None = None,
    ) -> None:
        self.index = index
        self.go = go
        self.env = env
        self.cwd = cwd
        self.files = FileMemo(index)
        self.graphs = GraphCache(index, shared)
        self.toolchains = ToolchainMemo(index, self.files, shared)
        self.watch = WatchState(index)
        self.marks = index.env.open_db(b"keymarks")

    def _check(
        self,
        paths: list[str],
        now_ns: int,
        counts: list[int],
        view: WatchView,
        seen: dict[str, FileState],
    ) -> dict[str, FileState]:
        """States of ``paths``; those already checked in this computation (``seen``) are
        not checked again: the graph and content parts of a key see one snapshot."""
        todo = [path for path in paths if path not in seen]
        if todo:
            result = check_files(self.files, todo, now_ns=now_ns, trusted=view.trusted)
            counts[0] += result.hashed
            counts[1] += result.statted
            seen.update(result.states)
        return {path: seen[path] for path in paths}

    def _mark(self, workspace: str) -> dict[str, object] | None:
        with self.index.env.begin(db=self.marks) as txn:
            raw = txn.get(workspace.encode())
        return json.loads(raw) if raw else None

    def _save_mark(self, workspace: str, mark: dict[str, object]) -> None:
        with self.index.env.begin(write=True, db=self.marks) as txn:
            txn.put(workspace.encode(), json.dumps(mark).encode())

    def _watch_view(self, mark: dict[str, object] | None, now_ns: int) -> WatchView:
        root = os.path.realpath(self.cwd)
        seq = self.watch.current_seq()
        watched = bool(self.watch.watchers())
        if mark is None or not watched:
            return WatchView(root, seq, None, watched)
        changes = self.watch.changes_since(root, int(mark["seq"]), now_ns)  # type: ignore[arg-type]
        return WatchView(root, changes.seq, changes.paths if changes.trusted else None)

    def compute(self, build: BuildArgs, *, explain: bool = False) -> KeyResult:
        """The key for ``go build`` with these arguments in ``cwd``.

        With a live watcher that saw nothing change under ``cwd`` since the
        last key of this workspace (and every input lies under ``cwd``), that
        key is reused without touching a file. Raises GoListFailed when go
        would refuse the build, OSError when a source cannot be read.
        """
        started = time.time_ns()
        counts = [0, 0]
        seen: dict[str, FileState] = {}
        toolchain = self.toolchains.toolchain(self.go, self.env, started)
        env_part = json.dumps(relevant_env(self.env))
        ws = KeyHasher("workspace")
        for name, value in (
            ("toolchain", toolchain.identity),
            ("env", env_part),
            ("flags", json.dumps(build.list_flags())),
            ("patterns", json.dumps(build.patterns)),
            ("cwd", self.cwd),
        ):
            ws.add(name, value)
        workspace = ws.hexdigest()
        mark = self._mark(workspace)
        view = self._watch_view(mark, started)
        if mark and mark.get("covered") and view.dirty == frozenset() and not explain:
            for _key, closure in self.graphs.candidates(workspace):
                self._save_mark(workspace, {**mark, "seq": view.seq})
                return KeyResult(str(mark["key"]), closure, toolchain, False)

        def list_packages() -> Closure:
            seen.clear()  # go list reads the tree later than these states: check it again
            return run_go_list(
                self.go,
                build.list_flags(),
                build.patterns,
                self.env,
                self.cwd,
                toolchain.goenv.get("GOMODCACHE", ""),
            )

        closure, ran = resolve_closure(
            self.graphs,
            workspace,
            list_packages=list_packages,
            check=lambda paths: self._check(paths, started, counts, view, seen),
            patterns=build.patterns,
            cwd=self.cwd,
            racy_after_ns=started - RACY_NS,
        )
        result = self._content_key(
            build, closure, toolchain, env_part, started, counts, view, seen, explain
        )
        result.ran_go_list = ran
        local = closure.module_files + [
            path for p in closure.packages if p.local for path in p.source_paths()
        ]
        # realpath costs several lstat calls per file: only when a watcher can use the mark.
        covered = view.watched and all(_under(os.path.realpath(path), view.root) for path in local)
        # A VCS stamp can change without a file event under cwd (a commit in a
        # repository above it): only stamp-free builds may skip the recomputation.
        stamp_free = result.vcs == "off" or result.vcs.startswith("none")
        self._save_mark(
            workspace, {"seq": view.seq, "key": result.key, "covered": covered and stamp_free}
        )
        return result

    def _content_key(
        self,
        build: BuildArgs,
        closure: Closure,
        toolchain: Toolchain,
        env_part: str,
        started: int,
        counts: list[int],
        view: WatchView,
        seen: dict[str, FileState],
        explain: bool,
    ) -> KeyResult:
        trimpath = build.flag("trimpath") == "true"
        h = KeyHasher("build", explain=explain)
        h.add("toolchain", toolchain.identity)
        h.add("env", env_part)
        h.add("flags", json.dumps(build.key_flags()))
        h.add("targets", json.dumps(sorted(p.import_path for p in closure.targets)))
        vcs = vcs_stamp(build, closure, self.cwd, self.env)
        h.add("vcs", vcs)
        local_paths = [path for p in closure.packages if p.local for path in p.source_paths()]
        pgo = build.flag("pgo") or "auto"
        profiles = [os.path.join(p.dir, "default.pgo") for p in closure.targets if p.is_command]
        profiles = [path for path in profiles if pgo == "auto" and os.path.isfile(path)]
        paths = closure.module_files + local_paths + profiles
        states = self._check(paths, started, counts, view, seen)
        for path in closure.module_files + profiles:
            h.add(f"file {_label(path, closure, trimpath)}", states[path].content)
        if not trimpath and any(p.in_module_cache for p in closure.packages):
            # Module sources are named by their path in GOMODCACHE inside the binary.
            h.add("module cache", toolchain.goenv.get("GOMODCACHE", ""))
        for p in sorted(closure.packages, key=lambda p: p.import_path):
            if p.standard:
                h.add("std", p.import_path)
            elif not p.local:
                h.add("module", f"{p.import_path} {json.dumps(p.module, sort_keys=True)}")
            else:
                where = _module_relative(p) if trimpath else p.dir
                h.add("package", f"{p.import_path} {p.name} {where}")
                for name in p.build_files + p.embed_files:
                    # normpath(name) is relpath(join(dir, name), dir) for go list's names,
                    # without relpath's abspath calls (10,000 files: ~100 ms).
                    h.add(
                        f"file {p.import_path}/{os.path.normpath(name)}",
                        states[os.path.join(p.dir, name)].content,
                    )
        return KeyResult(
            h.hexdigest(), closure, toolchain, False, h.fields, counts[0], counts[1], vcs=vcs
        )


def _label(path: str, closure: Closure, trimpath: bool) -> str:
    """A module file's name in the key: absolute, or under -trimpath relative to the main
    module, so checkouts at different paths share keys exactly when go's outputs match."""
    roots = [str(p.module["Dir"]) for p in closure.targets if p.module and p.module.get("Dir")]
    return os.path.relpath(path, roots[0]) if trimpath and roots else path


def _module_relative(package: Package) -> str:
    """A package's dir as -trimpath records it: relative to its module root."""
    root = str((package.module or {}).get("Dir") or "")
    return os.path.relpath(package.dir, root) if root else package.dir
