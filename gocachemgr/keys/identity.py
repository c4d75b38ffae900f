"""What the toolchain and the environment contribute to a content key, without running go.

A hit must not start a go process, so ``go env`` is run once per (go binary
content, relevant environment, GOENV file) and remembered; the binary and its
compile/link/asm/cgo tools are identified by content digest every time (cheap:
the file memo re-reads them only when their stat changes).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass

from gocachemgr.index import Index
from gocachemgr.keys.hashing import KeyHasher
from gocachemgr.keys.memo import FileMemo, check_files
from gocachemgr.store.shared import SharedStore

# Variables read by go that cannot change a build's output (or are ours).
ENV_IGNORED = frozenset(
    {
        "GOCACHE",
        "GOCACHEPROG",
        "GOMAXPROCS",
        "GOGC",
        "GOMEMLIMIT",
        "GOTRACEBACK",
        "GOTELEMETRY",
        "GOTELEMETRYDIR",
        "GOCOVERDIR",
    }
)
ENV_EXTRA = frozenset({"CC", "CXX", "AR", "FC", "PKG_CONFIG", "GCCGO"})
# Where this node keeps and fetches modules. With a shared dir the runner sets
# them per node (GOMODCACHE under the local dir) and per mount (GOPROXY), yet
# they never change an output: module versions are pinned by go.mod/go.sum,
# which the key covers. The one exception, GOMODCACHE's path inside a binary
# built without -trimpath, the content key adds itself. `go env` prints them
# exactly as set, so they need not key its memo either.
MODULE_LOCATION_VARS = frozenset({"GOMODCACHE", "GOPROXY", "GONOPROXY"})
GO_ENV_VARS = (
    "GOVERSION",
    "GOROOT",
    "GOOS",
    "GOARCH",
    "GOHOSTOS",
    "GOHOSTARCH",
    "GOAMD64",
    "GOARM",
    "GOARM64",
    "GO386",
    "GOMIPS",
    "GOMIPS64",
    "GOPPC64",
    "GORISCV64",
    "GOWASM",
    "GOEXPERIMENT",
    "GOFIPS140",
    "CGO_ENABLED",
    "CC",
    "CXX",
    "CGO_CFLAGS",
    "CGO_CPPFLAGS",
    "CGO_CXXFLAGS",
    "CGO_FFLAGS",
    "CGO_LDFLAGS",
    "GOFLAGS",
    "GOTOOLCHAIN",
    "GOMODCACHE",
    "GOPATH",
    "GOPROXY",
    "GONOSUMDB",
    "GOPRIVATE",
    "GONOPROXY",
    "GOINSECURE",
    "GOSUMDB",
    "GOENV",
    "GODEBUG",
)


class ToolchainError(Exception):
    """`go env` failed: the build would fail too, so go's own message is shown."""


def relevant_env(env: Mapping[str, str]) -> list[tuple[str, str]]:
    """Every variable that can change an output: when unsure, it is included."""
    return sorted(
        (k, v)
        for k, v in env.items()
        if (
            k.startswith(("GO", "CGO_"))
            and k not in ENV_IGNORED
            and k not in MODULE_LOCATION_VARS
            and not k.startswith("GOCACHEMGR_")
        )
        or k in ENV_EXTRA
    )


def _go_env_file(env: Mapping[str, str]) -> bytes:
    name = env.get("GOENV")
    if name == "off":
        return b""
    if not name:
        base = env.get("XDG_CONFIG_HOME") or os.path.join(env.get("HOME", ""), ".config")
        name = os.path.join(base, "go", "env")
    try:
        with open(name, "rb") as f:
            return f.read()
    except OSError:
        return b""


@dataclass(frozen=True)
class Toolchain:
    go: str
    goenv: dict[str, str]
    identity: str  # hex digest over everything above


class ToolchainMemo:
    """Toolchain facts, remembered locally and (when given) in the shared tier.

    Binaries are identified by content (xxh3, memoised by stat in the file
    memo), not by inode or mtime, so every node with the same toolchain at the
    same path computes the same identity — and a new node can take `go env`'s
    answer from the share instead of running go.
    """

    def __init__(self, index: Index, files: FileMemo, shared: SharedStore | None = None) -> None:
        self.env = index.env
        self.db = index.env.open_db(b"toolchains")
        self.files = files
        self.shared = shared

    def _local(self, key: str) -> str | None:
        with self.env.begin(db=self.db) as txn:
            raw = txn.get(key.encode())
        return raw.decode() if raw is not None else None

    def _remember(self, key: str, value: str) -> None:
        with self.env.begin(write=True, db=self.db) as txn:
            txn.put(key.encode(), value.encode())

    def _digests(self, paths: list[str], now_ns: int) -> dict[str, str]:
        present = [p for p in paths if os.path.isfile(p)]
        states = check_files(self.files, present, now_ns=now_ns).states
        return {p: states[p].content.hex() if p in states else "missing" for p in paths}

    def _go_env(self, go: str, go_digest: str, env: Mapping[str, str]) -> dict[str, str]:
        key = KeyHasher("go-env")
        key.add("go", f"{go} {go_digest}")
        key.add("env", json.dumps(relevant_env(env)))
        key.add("set", " ".join(sorted(k for k in MODULE_LOCATION_VARS if env.get(k))))
        key.add("goenv-file", _go_env_file(env))
        memo_key = key.hexdigest()
        text = local = self._local(memo_key)
        if text is None and self.shared is not None:
            with contextlib.suppress(OSError):
                raw = self.shared.get_manifest(memo_key, "toolchains")
                text = raw.decode() if raw else None
        try:
            goenv = json.loads(text) if text else None
        except ValueError:
            goenv = None
        if not isinstance(goenv, dict) or "GOROOT" not in goenv:
            text = _run_go_env(go, env)
            goenv = json.loads(text)
            if self.shared is not None:
                with contextlib.suppress(OSError):
                    self.shared.put_manifest(memo_key, text.encode(), "toolchains")
        value = json.dumps(goenv)
        if value != local:  # a write transaction syncs to disk: not on every key
            self._remember(memo_key, value)
        goenv.update({k: env[k] for k in MODULE_LOCATION_VARS if env.get(k)})
        return goenv

    def toolchain(self, go: str, env: Mapping[str, str], now_ns: int) -> Toolchain:
        go_digest = self._digests([os.path.realpath(go)], now_ns)[os.path.realpath(go)]
        goenv = self._go_env(go, go_digest, env)
        tool_dir = os.path.join(
            goenv["GOROOT"], "pkg", "tool", f"{goenv['GOHOSTOS']}_{goenv['GOHOSTARCH']}"
        )
        tools = [os.path.join(tool_dir, t) for t in ("compile", "link", "asm", "cgo")]
        tools.append(os.path.join(goenv["GOROOT"], "VERSION"))
        ident = KeyHasher("toolchain")
        ident.add("go", f"{go} {go_digest}")
        facts = {k: v for k, v in goenv.items() if k not in MODULE_LOCATION_VARS}
        ident.add("go env", json.dumps(facts, sort_keys=True))
        for path, digest in self._digests(tools, now_ns).items():
            ident.add(path, digest)
        if goenv.get("CGO_ENABLED") == "1":
            ident.add("cc", self._c_compiler(goenv.get("CC") or "gcc", env, now_ns))
        return Toolchain(go, goenv, ident.hexdigest())

    def _c_compiler(self, cc: str, env: Mapping[str, str], now_ns: int) -> str:
        """The C compiler's path, content digest and `--version`: cgo outputs depend on it."""
        words = cc.split()
        path = shutil.which(words[0], path=env.get("PATH")) if words else None
        if path is None:
            return f"{cc}: not found"
        real = os.path.realpath(path)
        digest = self._digests([real], now_ns)[real]
        version = self._local("cc:" + digest)
        if version is None:
            try:
                version = subprocess.run(
                    [path, "--version"], capture_output=True, text=True, timeout=30, env=dict(env)
                ).stdout
            except (OSError, subprocess.TimeoutExpired):
                version = "unknown"
            self._remember("cc:" + digest, version)
        return f"{cc} {real} {digest} {version}"


def _run_go_env(go: str, env: Mapping[str, str]) -> str:
    proc = subprocess.run(
        [go, "env", "-json", *GO_ENV_VARS],
        capture_output=True,
        text=True,
        env=dict(env),
        timeout=120,
        cwd=os.path.sep,
    )
    if proc.returncode != 0:
        raise ToolchainError(proc.stderr.strip() or f"go env exited {proc.returncode}")
    return proc.stdout
