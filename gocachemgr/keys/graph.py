"""The package closure of a build (`go list -deps -json`) and the graph cache around it.

`go list` costs a go process and a few hundred ms, so its answer is stored in
lmdb per workspace (toolchain, env, flags, patterns, cwd) together with a
*graph key*: the digest of everything that can change which packages and
files take part — module files, the listing of every local package dir, the
header hash of every .go file there (package clause, build constraints,
imports, embeds), embed directories, and the tree under `...` patterns. A
body-only edit leaves the graph key alone, so `go list` runs only when the
graph can have changed.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field

from gocachemgr.index import Index
from gocachemgr.keys.hashing import KeyHasher
from gocachemgr.keys.memo import FileState
from gocachemgr.store.shared import SharedStore

LIST_FIELDS = (
    "ImportPath,Dir,Name,Standard,DepOnly,Module,GoFiles,CgoFiles,CFiles,CXXFiles,MFiles,"
    "HFiles,FFiles,SFiles,SwigFiles,SwigCXXFiles,SysoFiles,EmbedFiles,EmbedPatterns,"
    "IgnoredGoFiles,IgnoredOtherFiles"
)
BUILD_FILE_FIELDS = (
    "GoFiles",
    "CgoFiles",
    "CFiles",
    "CXXFiles",
    "MFiles",
    "HFiles",
    "FFiles",
    "SFiles",
    "SwigFiles",
    "SwigCXXFiles",
    "SysoFiles",
)
SOURCE_SUFFIXES = (
    ".go",
    ".c",
    ".h",
    ".s",
    ".S",
    ".cc",
    ".cpp",
    ".cxx",
    ".hh",
    ".hpp",
    ".hxx",
    ".m",
    ".f",
    ".F",
    ".for",
    ".f90",
    ".syso",
    ".swig",
    ".swigcxx",
    ".sx",
)


class GoListFailed(Exception):
    """`go list` refused the build (unknown package, broken go.mod...): go build would too."""

    def __init__(self, code: int, stderr: str) -> None:
        super().__init__(stderr.strip() or f"go list exited {code}")
        self.code = code
        self.stderr = stderr


@dataclass
class Package:
    import_path: str
    dir: str
    name: str
    standard: bool
    dep_only: bool
    build_files: list[str]  # names in dir that go compiles or links
    embed_files: list[str]  # paths relative to dir
    embed_patterns: list[str]
    module: dict[str, object] | None  # go list's Module object
    in_module_cache: bool = False  # Dir lies in GOMODCACHE (immutable, read-only)

    @property
    def local(self) -> bool:
        """Sources we must hash: everything but the standard library (fixed by the toolchain
        identity) and the module cache (path@version + go.sum name it; go verifies it).

        Decided by where the files are, not by module metadata: vendored copies
        and local replacements carry a version yet can be edited.
        """
        return not self.standard and not self.in_module_cache

    @property
    def is_command(self) -> bool:
        return self.name == "main" and not self.dep_only

    def source_paths(self) -> list[str]:
        return [os.path.join(self.dir, f) for f in self.build_files + self.embed_files]


@dataclass
class Closure:
    packages: list[Package]
    module_files: list[str] = field(default_factory=list)  # go.mod, go.sum, go.work, vendor list

    @property
    def targets(self) -> list[Package]:
        return [p for p in self.packages if not p.dep_only]

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> Closure:
        data = json.loads(text)
        return cls([Package(**p) for p in data["packages"]], data["module_files"])


def run_go_list(
    go: str,
    flags: list[str],
    patterns: list[str],
    env: Mapping[str, str],
    cwd: str,
    module_cache: str,
) -> Closure:
    proc = subprocess.run(
        [go, "list", "-deps", f"-json={LIST_FIELDS}", *flags, "--", *patterns],
        capture_output=True,
        text=True,
        env=dict(env),
        cwd=cwd,
    )
    if proc.returncode != 0:
        raise GoListFailed(proc.returncode, proc.stderr)
    decoder = json.JSONDecoder()
    text, pos, packages = proc.stdout, 0, []
    while True:
        while pos < len(text) and text[pos].isspace():
            pos += 1
        if pos >= len(text):
            break
        obj, pos = decoder.raw_decode(text, pos)
        files = [f for name in BUILD_FILE_FIELDS for f in obj.get(name) or []]
        directory = obj.get("Dir", "")
        packages.append(
            Package(
                import_path=obj["ImportPath"],
                dir=directory,
                name=obj.get("Name", ""),
                standard=bool(obj.get("Standard")),
                dep_only=bool(obj.get("DepOnly")),
                build_files=files,
                embed_files=obj.get("EmbedFiles") or [],
                embed_patterns=obj.get("EmbedPatterns") or [],
                module=obj.get("Module"),
                in_module_cache=bool(module_cache)
                and directory.startswith(module_cache.rstrip(os.sep) + os.sep),
            )
        )
    return Closure(packages, _module_files(packages, env, cwd))


def _module_files(packages: list[Package], env: Mapping[str, str], cwd: str) -> list[str]:
    """go.mod/go.sum of main and locally replaced modules, go.work, vendor/modules.txt."""
    found: set[str] = set()
    for p in packages:
        if p.local and p.module and p.module.get("GoMod"):
            gomod = str(p.module["GoMod"])
            root = os.path.dirname(gomod)
            found.update(
                {gomod, os.path.join(root, "go.sum"), os.path.join(root, "vendor", "modules.txt")}
            )
    work = env.get("GOWORK")
    if work is None:
        directory = cwd
        while True:
            if os.path.exists(os.path.join(directory, "go.work")):
                work = os.path.join(directory, "go.work")
                break
            parent = os.path.dirname(directory)
            if parent == directory:
                break
            directory = parent
    if work and work != "off":
        found.update({work, work + ".sum"})
    return sorted(path for path in found if os.path.isfile(path))


def _listing(directory: str) -> list[str]:
    try:
        names = sorted(e.name + ("/" if e.is_dir() else "") for e in os.scandir(directory))
    except OSError as exc:
        return [f"!{exc.errno}"]
    return [n for n in names if n.endswith("/") or n.endswith(SOURCE_SUFFIXES)]


def _tree(root: str) -> Iterable[str]:
    for directory, dirs, files in os.walk(root):
        dirs.sort()
        yield directory
        yield from sorted(files)


def graph_files(closure: Closure) -> list[str]:
    """Files whose header (Go) or content (module files) decide the graph."""
    files: list[str] = list(closure.module_files)
    for p in closure.packages:
        if p.local:
            files += [
                os.path.join(p.dir, name)
                for name in _listing(p.dir)
                if name.endswith(".go") and not name.endswith("_test.go")
            ]
    return files


def graph_key(
    closure: Closure, patterns: list[str], cwd: str, states: Mapping[str, FileState]
) -> str:
    h = KeyHasher("graph")
    for path in closure.module_files:
        h.add("modfile:" + path, states[path].content)
    for p in closure.packages:
        if not p.local:
            continue
        listing = _listing(p.dir)
        h.add("dir:" + p.dir, "\n".join(listing))
        for name in listing:
            if name.endswith(".go") and not name.endswith("_test.go"):
                h.add("header:" + name, states[os.path.join(p.dir, name)].header)
        for pattern in p.embed_patterns:
            top = pattern.removeprefix("all:").split("/")[0]
            target = os.path.join(p.dir, top)
            if os.path.isdir(target) and not any(c in top for c in "*?["):
                h.add("embed-tree:" + target, "\n".join(_tree(target)))
            else:
                h.add("embed-dir:" + p.dir, "\n".join(sorted(os.listdir(p.dir))))
    for pattern in patterns:
        if "..." in pattern:
            roots = (
                [os.path.join(cwd, pattern.split("...")[0])]
                if pattern.startswith(".")
                else [
                    str(p.module["Dir"])
                    for p in closure.packages
                    if p.module and p.module.get("Main") and p.module.get("Dir")
                ]
            )
            for root in sorted(set(roots)):
                h.add("tree:" + root, "\n".join(_tree(root)))
    return h.hexdigest()


class GraphCache:
    """Workspace → (graph key, closure), in lmdb and (when given) the shared tier.

    A stored closure is only ever a candidate: it is used after its graph key
    has been recomputed from the tree as it is now, wherever it came from.
    """

    def __init__(self, index: Index, shared: SharedStore | None = None) -> None:
        self.env = index.env
        self.db = index.env.open_db(b"graphs")
        self.shared = shared

    def candidates(self, workspace: str) -> Iterable[tuple[str, Closure]]:
        with self.env.begin(db=self.db) as txn:
            raw = txn.get(workspace.encode())
        if raw is not None:
            yield _decode(raw)
        if self.shared is not None:
            try:
                remote = self.shared.get_manifest(workspace, "graphs")
            except OSError:
                remote = None
            if remote is not None and remote != raw:
                try:
                    yield _decode(remote)
                except (ValueError, KeyError, TypeError):
                    return  # damaged: go list will answer instead

    def put(self, workspace: str, key: str, closure: Closure, *, publish: bool) -> None:
        data = f"{key}\n{closure.to_json()}".encode()
        with self.env.begin(write=True, db=self.db) as txn:
            txn.put(workspace.encode(), data)
        if publish and self.shared is not None:
            with contextlib.suppress(OSError):
                self.shared.put_manifest(workspace, data, "graphs")

    def forget(self, workspace: str) -> None:
        with self.env.begin(write=True, db=self.db) as txn:
            txn.delete(workspace.encode())


def _decode(raw: bytes) -> tuple[str, Closure]:
    key, _, closure = raw.decode().partition("\n")
    return key, Closure.from_json(closure)


def resolve_closure(
    cache: GraphCache,
    workspace: str,
    *,
    list_packages: Callable[[], Closure],
    check: Callable[[list[str]], Mapping[str, FileState]],
    patterns: list[str],
    cwd: str,
    racy_after_ns: int,
) -> tuple[Closure, bool]:
    """The closure for this workspace; (closure, ran_go_list).

    A stored closure is reused only when the graph key recomputed from the
    tree now equals the one stored with it. A fresh closure whose inputs were
    modified around the time `go list` ran is not stored (its graph key could
    describe a newer tree than go listed).
    """
    for origin, (key, closure) in enumerate(cache.candidates(workspace)):
        try:
            states = check(graph_files(closure))
            valid = graph_key(closure, patterns, cwd, states) == key
        except (OSError, KeyError):
            valid = False
        if valid:
            if origin:  # from the share: keep it locally too
                cache.put(workspace, key, closure, publish=False)
            return closure, False
    closure = list_packages()
    states = check(graph_files(closure))
    if all(s.mtime_ns < racy_after_ns for s in states.values()):
        cache.put(workspace, graph_key(closure, patterns, cwd, states), closure, publish=True)
    else:
        cache.forget(workspace)
    return closure, True
