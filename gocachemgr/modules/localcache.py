"""Complete module versions in this node's GOMODCACHE/cache/download.

go downloads a zip to a temp name, hashes it, writes ``<v>.ziphash`` and
only then renames the zip into place, so a zip counts once both exist;
``.lock``, ``.partial``, ``*.tmp`` and ``list`` files are go's own business.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from gocachemgr.modules.paths import (
    InvalidModulePath,
    check_escaped_path,
    is_canonical_version,
    unescape_path,
    unescape_version,
)

# Files a version can have in the store, in publish order: what vouches for the
# zip before the zip, the zip before what advertises the version.
PUBLISH_ORDER = ("mod", "ziphash", "zip", "info")


@dataclass(frozen=True)
class LocalVersion:
    escaped_path: str
    escaped_version: str
    directory: Path
    files: tuple[str, ...]  # suffixes present and complete, in PUBLISH_ORDER
    signature: str  # what the files look like now; a change means "publish again"

    @property
    def key(self) -> str:
        return f"{self.escaped_path}@{self.escaped_version}"

    @property
    def display(self) -> str:
        """``path@version`` as a person writes it (escaping undone)."""
        return f"{unescape_path(self.escaped_path)}@{unescape_version(self.escaped_version)}"

    def path(self, suffix: str) -> Path:
        return self.directory / f"{self.escaped_version}.{suffix}"


def version_dirs(download_dir: Path) -> Iterator[tuple[str, Path, int]]:
    """Every ``@v`` directory as (escaped module path, directory, mtime_ns).

    Symlinks are not followed, hidden names and go's checksum-database cache
    (``sumdb``, not a module path: no dot) are skipped.
    """
    stack = [(download_dir, "")]
    while stack:
        directory, rel = stack.pop()
        try:
            entries = list(os.scandir(directory))
        except (FileNotFoundError, NotADirectoryError):
            continue
        for entry in entries:
            if entry.name.startswith(".") or not entry.is_dir(follow_symlinks=False):
                continue
            if entry.name == "@v":
                if rel:
                    yield rel, Path(entry.path), entry.stat(follow_symlinks=False).st_mtime_ns
            elif rel or entry.name != "sumdb":
                stack.append((Path(entry.path), f"{rel}/{entry.name}" if rel else entry.name))


def versions_in(escaped_path: str, directory: Path) -> list[LocalVersion]:
    """The complete versions in one local ``@v`` directory (none for an invalid path)."""
    try:
        check_escaped_path(escaped_path)
    except InvalidModulePath:
        return []
    sizes: dict[str, dict[str, str]] = {}
    for entry in os.scandir(directory):
        stem, dot, suffix = entry.name.rpartition(".")
        if not dot or suffix not in PUBLISH_ORDER or not entry.is_file(follow_symlinks=False):
            continue
        st = entry.stat(follow_symlinks=False)
        sizes.setdefault(stem, {})[suffix] = f"{suffix}:{st.st_size}:{st.st_mtime_ns}"
    result = []
    for stem, present in sorted(sizes.items()):
        try:
            if not is_canonical_version(unescape_version(stem)):
                continue
        except InvalidModulePath:
            continue
        if "zip" not in present or "ziphash" not in present:
            present.pop("zip", None)
            present.pop("ziphash", None)
        files = tuple(s for s in PUBLISH_ORDER if s in present)
        if files:
            signature = ";".join(present[s] for s in files)
            result.append(LocalVersion(escaped_path, stem, directory, files, signature))
    return result
