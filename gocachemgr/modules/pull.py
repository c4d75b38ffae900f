"""`gocachemgr mod pull`: fill this node's module cache for a main module, shared store first.

It is ``go mod download`` run the way ``gocachemgr go`` runs it (the shared
store first in GOPROXY, new downloads published afterwards), plus a count of
where each module came from. The store is only ever read *as a proxy*: go
verifies every zip it fetches against go.sum, so nothing is copied from the
share into GOMODCACHE behind go's back.
"""

from __future__ import annotations

import json
import tempfile
import threading
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

from gocachemgr.config import Config
from gocachemgr.errors import UserError
from gocachemgr.modules.paths import escape_path, escape_version
from gocachemgr.runner import run_go

PROGRESS_INTERVAL = 0.5


@dataclass
class PullReport:
    modules: int = 0
    already_local: int = 0
    from_shared: int = 0
    from_upstream: int = 0
    errors: list[str] = field(default_factory=list)  # "path@version: go's error"

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def _ziphash(root: Path, path: str, version: str) -> Path:
    """The ``.ziphash`` file whose presence means ``path@version``'s zip is complete."""
    return root / escape_path(path) / "@v" / f"{escape_version(version)}.ziphash"


def pull_modules(
    config: Config,
    directory: Path,
    env: Mapping[str, str],
    progress: Callable[[int], None] | None = None,
) -> PullReport:
    """Download every module ``directory``'s main module needs; count where each came from.

    go runs without the usual publish step, so the share can be looked at
    afterwards to tell its modules from upstream's; the caller publishes.
    """
    if not (directory / "go.mod").is_file():
        raise UserError(f"no go.mod in {directory}; give the directory of a Go module")
    download = config.gomodcache_dir / "cache" / "download"
    before = set(download.glob("**/@v/*.ziphash"))
    stop = threading.Event()
    if progress is not None:
        threading.Thread(
            target=_report_progress, args=(download, len(before), progress, stop), daemon=True
        ).start()
    with tempfile.TemporaryFile() as out:
        try:
            code = run_go(
                config,
                ["mod", "download", "-json"],
                env=env,
                cwd=directory,
                stdout=out,
                publish=False,
            )
        finally:
            stop.set()
        out.seek(0)
        results = _json_stream(out.read().decode(errors="replace"))
    report = PullReport()
    for item in results:
        path, version = str(item.get("Path", "")), str(item.get("Version", ""))
        report.modules += 1
        if item.get("Error"):
            report.errors.append(f"{path}@{version}: {item['Error']}")
        elif _ziphash(download, path, version) in before:
            report.already_local += 1
        elif config.shared_dir and _ziphash(config.shared_dir / "modules", path, version).exists():
            report.from_shared += 1
        else:
            report.from_upstream += 1
    if code != 0 and not report.errors:
        raise UserError(f"go mod download failed (exit {code}); see go's message above")
    return report


def _report_progress(
    download: Path, baseline: int, progress: Callable[[int], None], stop: threading.Event
) -> None:
    """How many zips arrived so far, whenever it changes (go prints nothing until the end)."""
    shown = 0
    while not stop.wait(PROGRESS_INTERVAL):
        arrived = len(list(download.glob("**/@v/*.ziphash"))) - baseline
        if arrived != shown:
            progress(arrived)
            shown = arrived


def _json_stream(text: str) -> list[dict[str, object]]:
    """go prints one JSON object per module, concatenated."""
    decoder = json.JSONDecoder()
    items: list[dict[str, object]] = []
    pos = 0
    while pos < len(text):
        while pos < len(text) and text[pos].isspace():
            pos += 1
        if pos == len(text):
            break
        item, pos = decoder.raw_decode(text, pos)
        if isinstance(item, dict):
            items.append(item)
    return items
