"""`gocachemgr build`: an unchanged tree gets its binaries back without running go.

Compute the content key; on a hit (local, then shared) write the outputs
where `go build` would; on a miss run `go build` through the runner (so the
GOCACHEPROG tier helps too), then keep the outputs under the key — unless
the sources changed while go was building. Anything the key cannot describe
falls through to a plain `go build`.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from gocachemgr.artifacts import ArtifactCache, open_shared
from gocachemgr.config import Config
from gocachemgr.index import Index
from gocachemgr.keys.contentkey import KeyEngine, KeyResult
from gocachemgr.keys.flags import BuildArgs, parse_build_args
from gocachemgr.keys.graph import Closure, GoListFailed, Package
from gocachemgr.keys.identity import ToolchainError
from gocachemgr.reporter import Reporter
from gocachemgr.runner import go_environment, run_go
from gocachemgr.stats import Counters
from gocachemgr.store.shared import SharedStore
from gocachemgr.toolchain import find_go

# Magic numbers of files go build may overwrite: ELF, Mach-O (both ends), PE, ar archives.
OBJECT_MAGICS = (b"\x7fELF", b"\xcf\xfa\xed\xfe", b"\xfe\xed\xfa\xcf", b"MZ", b"!<arch>")


def exec_name(import_path: str, goos: str) -> str:
    """cmd/go/internal/load.DefaultExecName: example.com/cmd/v2 installs as "cmd"."""
    parent, _, elem = import_path.rpartition("/")
    if parent and re.fullmatch(r"v[0-9]+", elem) and elem not in ("v0", "v1") and elem[1] != "0":
        elem = parent.rpartition("/")[2]
    return elem + (".exe" if goos == "windows" else "")


def _overwritable(dest: str) -> bool:
    """go refuses to overwrite a directory or a file that is not an object file."""
    if not os.path.lexists(dest):
        return True
    if not os.path.isfile(dest):
        return False
    with open(dest, "rb") as f:
        head = f.read(8)
    return head == b"" or head.startswith(OBJECT_MAGICS)


def output_plan(
    build: BuildArgs, closure: Closure, cwd: str, goos: str
) -> list[tuple[str, str]] | str:
    """(package, path) for every file `go build` would write, or why we cannot tell."""
    if (build.flag("buildmode") or "default") not in ("default", "exe", "pie"):
        return f"-buildmode={build.flag('buildmode')} outputs are not cached"
    targets = closure.targets
    commands: list[Package] = [t for t in targets if t.is_command]
    plan: list[tuple[str, str]]
    if build.output is not None:
        dest = os.path.join(cwd, build.output)
        if build.output.endswith(("/", os.sep)) or os.path.isdir(dest):
            if not commands:
                return "-o names a directory but no main package is built"
            plan = [
                (c.import_path, os.path.join(dest, exec_name(c.import_path, goos)))
                for c in commands
            ]
        elif len(targets) == 1 and commands:
            plan = [(commands[0].import_path, dest)]
        else:
            return "-o names a file but the build is not one main package"
    elif len(targets) == 1 and commands:
        plan = [
            (commands[0].import_path, os.path.join(cwd, exec_name(commands[0].import_path, goos)))
        ]
    else:
        plan = []  # go compiles these and discards the results
    for _, dest in plan:
        if not _overwritable(dest):
            return f"{dest} exists and is not an object file"
    return plan


@dataclass
class BuildOutcome:
    code: int
    status: str  # "hit-local", "hit-shared", "miss", "fallthrough", "failed"
    key: str | None = None
    reason: str = ""


class Builder:
    def __init__(
        self,
        config: Config,
        env: Mapping[str, str],
        cwd: str,
        note: Callable[[str], object],
    ) -> None:
        self.config = config
        self.env = env
        self.cwd = cwd
        self.note = note
        self.go = find_go(config, env)
        self.go_env = go_environment(config, env)
        self.index = Index(config.index_dir)
        self.counters = Counters()
        self.reporter = Reporter()

    def close(self) -> None:
        self.counters.flush(self.index)
        self.index.close()

    @functools.cached_property
    def shared(self) -> SharedStore | None:
        return open_shared(
            self.config.shared_dir,
            self.reporter,
            self.config.shared_timeout,
            read_only=self.config.read_only,
        )

    def engine(self) -> KeyEngine:
        return KeyEngine(self.index, self.go, self.go_env, self.cwd, shared=self.shared)

    def key(self, build: BuildArgs, *, explain: bool = False) -> KeyResult:
        return self.engine().compute(build, explain=explain)

    def _plain(self, args: Sequence[str], reason: str, build: BuildArgs) -> BuildOutcome:
        if build.verbose:
            self.note(f"gocachemgr build: {reason}; running plain go build")
        code = run_go(self.config, ["build", *args], self.env, cwd=self.cwd)
        return BuildOutcome(code, "fallthrough" if code == 0 else "failed", reason=reason)

    def build(self, args: Sequence[str]) -> BuildOutcome:
        build = parse_build_args(list(args))
        if build.unsupported:
            return self._plain(args, build.unsupported, build)
        try:
            result = self.key(build)
        except (GoListFailed, ToolchainError, OSError) as exc:
            # go build will fail the same way and print go's own message.
            return self._plain(args, f"cannot compute a key ({str(exc).splitlines()[0]})", build)
        plan = output_plan(build, result.closure, self.cwd, result.toolchain.goenv["GOOS"])
        if isinstance(plan, str):
            return self._plain(args, plan, build)
        cache = ArtifactCache(self.config.local_dir, self.shared, self.reporter)
        manifest = cache.lookup(result.key)
        if manifest is not None and cache.restore(manifest, plan):
            tier = cache.hit_tier or "local"
            self.counters.add(f"builds_hit_{tier}")
            if build.verbose:
                self.note(f"gocachemgr build: {tier} hit {result.key}; go not run")
            return BuildOutcome(0, f"hit-{tier}", result.key)
        self.counters.add("builds_miss")
        code = run_go(self.config, ["build", *args], self.env, cwd=self.cwd)
        if code != 0:
            return BuildOutcome(code, "failed", result.key)
        try:
            after = self.key(build)
        except (GoListFailed, ToolchainError, OSError):
            after = None
        if after is None or after.key != result.key:
            self.note("gocachemgr build: sources changed while go was building; output not cached")
            return BuildOutcome(code, "miss", result.key, reason="sources changed")
        stored = cache.store(result.key, plan)
        # An upper bound (outputs may already be stored); the next gc makes it exact.
        self.counters.add("local_bytes", sum(o.size for o in stored.outputs))
        return BuildOutcome(code, "miss", result.key)
