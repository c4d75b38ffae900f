"""The `go` shim: a tiny script named ``go`` that runs ``gocachemgr go "$@"``.

Put first on PATH, it sends every go command (editors, Makefiles, scripts)
through the two-tier cache without changing them. It carries a marker line so
gocachemgr can recognise its own shims: ``find_go`` skips them on PATH (a
shim finding itself would recurse forever) and ``uninstall`` removes nothing
else. Kept free of click and lmdb: ``toolchain`` imports it on every go command.
"""

from __future__ import annotations

import os
import shlex
import shutil
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from gocachemgr.errors import UserError
from gocachemgr.store.atomic import AtomicFile

SHIM_VERSION = 1
MARKER = b"# gocachemgr-shim "
# The marker sits on the second line; a shebang longer than this is not ours.
HEAD_BYTES = 512


def is_shim(path: str | os.PathLike[str]) -> bool:
    """True when ``path`` (followed if a symlink) is a gocachemgr shim of any version."""
    try:
        with open(path, "rb") as f:
            head = f.read(HEAD_BYTES)
    except OSError:
        return False
    return head.startswith(b"#!") and any(
        line.startswith(MARKER) for line in head.splitlines()[1:3]
    )


def shim_script(python: str = sys.executable) -> str:
    """The script: exec this Python on gocachemgr's fast ``go`` path (``-P``: see runner)."""
    return (
        "#!/bin/sh\n"
        f"{MARKER.decode()}{SHIM_VERSION}\n"
        "# Runs the real go through gocachemgr's two-tier build cache.\n"
        "# Written by `gocachemgr shim install`; remove with `gocachemgr shim uninstall`.\n"
        f'exec {shlex.quote(python)} -P -m gocachemgr go "$@"\n'
    )


def default_shim_dir(env: Mapping[str, str]) -> Path:
    """``~/.local/bin``: on PATH by default in most distributions' login shells."""
    return Path(env.get("HOME") or Path.home()) / ".local" / "bin"


@dataclass(frozen=True)
class ShimResult:
    path: Path
    replaced: str  # "", "shim" (an older or identical shim) or "file" (--force)


def install_shim(directory: Path, *, force: bool = False) -> ShimResult:
    """Write ``directory/go`` atomically; refuse to replace a file that is not our shim."""
    target = directory / "go"
    replaced = ""
    if os.path.isdir(target):
        raise UserError(f"{target} is a directory; choose another --dir")
    if os.path.lexists(target):
        replaced = "shim" if is_shim(target) else "file"
        if replaced == "file" and not force:
            raise UserError(
                f"{target} exists and is not a gocachemgr shim; "
                f"use --force to replace it, or choose another --dir"
            )
    directory.mkdir(parents=True, exist_ok=True)
    with AtomicFile(directory, mode=0o755) as f:
        f.write(shim_script().encode())
        f.commit(target)
    return ShimResult(target, replaced)


def first_on_path(shim: Path, env: Mapping[str, str]) -> bool:
    """True when a plain ``go`` under ``env``'s PATH would run ``shim``."""
    found = shutil.which("go", path=env.get("PATH", os.defpath))
    try:
        return found is not None and os.path.samefile(found, shim)
    except OSError:
        return False


def uninstall_shim(directory: Path) -> Path | None:
    """Remove ``directory/go`` if it is our shim; None when there was none."""
    target = directory / "go"
    if not os.path.lexists(target):
        return None
    if not is_shim(target):
        raise UserError(f"{target} is not a gocachemgr shim; not removing it")
    target.unlink()
    return target
