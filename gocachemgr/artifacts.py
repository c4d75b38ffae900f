"""Whole build outputs under content keys, in both tiers: the cache behind `gocachemgr build`.

A manifest names, per target package, the SHA-256 and size of its output;
bodies are content-addressed objects. Local: ``<local_dir>/artifacts/``;
shared: ``artifacts/<kk>/<key>`` manifests next to the same ``objects/`` the
action cache uses. Every copy — into the store, out of the share, onto the
output path — goes through a temp file, is verified, then renamed.
"""

from __future__ import annotations

import json
import os
import socket
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from gocachemgr.reporter import Reporter
from gocachemgr.store import is_hex_id
from gocachemgr.store.atomic import AtomicFile, VerifyError, sha256_file
from gocachemgr.store.local import mark_used
from gocachemgr.store.shared import SharedStore
from gocachemgr.store.tiered import UNWRITABLE

MANIFEST_VERSION = 1


@dataclass(frozen=True)
class Output:
    package: str  # import path of the main package
    size: int
    sha256: str


@dataclass(frozen=True)
class Manifest:
    key: str
    outputs: tuple[Output, ...]

    def to_bytes(self) -> bytes:
        return json.dumps(
            {
                "v": MANIFEST_VERSION,
                "key": self.key,
                "outputs": [asdict(o) for o in self.outputs],
                "time_ns": time.time_ns(),
                "writer": f"{socket.gethostname()}:{os.getpid()}",
            },
            separators=(",", ":"),
        ).encode()

    @classmethod
    def parse(cls, raw: bytes, key: str) -> Manifest | None:
        """None for anything malformed, of another version, or for another key."""
        try:
            data = json.loads(raw)
            outputs = tuple(
                Output(str(o["package"]), int(o["size"]), str(o["sha256"])) for o in data["outputs"]
            )
            ok = data["v"] == MANIFEST_VERSION and data["key"] == key
        except (ValueError, KeyError, TypeError):
            return None
        if not ok or any(not is_hex_id(o.sha256) or o.size < 0 for o in outputs):
            return None
        return cls(key, outputs)


def open_shared(
    root: Path | None, reporter: Reporter, timeout: float, *, read_only: bool
) -> SharedStore | None:
    """The shared store if it passes its start-up check within ``timeout``, else None (warned)."""
    if root is None:
        return None
    shared = SharedStore(root, read_only=read_only)
    problems: list[str] = []
    try:
        shared.open_in_background(problems.append).result(timeout)
    except TimeoutError:
        reporter.warn_once(
            f"shared dir {root} did not answer within {timeout:g}s; "
            f"continuing with the local cache only"
        )
        return None
    if problems:
        reporter.warn_once(f"{problems[0]}; continuing with the local cache only")
        return None
    return shared


class ArtifactCache:
    def __init__(self, local_root: Path, shared: SharedStore | None, reporter: Reporter) -> None:
        self.root = local_root / "artifacts"
        self.shared = shared
        self.reporter = reporter
        self.hit_tier: str | None = None  # "local" or "shared" after a successful lookup
        if shared is not None:
            shared.on_corrupt = lambda what: reporter.warn_once(
                f"damaged shared cache file quarantined ({what}); treated as a miss"
            )

    def _manifest_path(self, key: str) -> Path:
        return self.root / "manifests" / key[:2] / key

    def object_path(self, sha256: str) -> Path:
        return self.root / "objects" / sha256[:2] / sha256

    def _new_file(self, target: Path) -> AtomicFile:
        target.parent.mkdir(parents=True, exist_ok=True)
        return AtomicFile(target.parent)

    # -- lookup ----------------------------------------------------------------

    def lookup(self, key: str) -> Manifest | None:
        """The manifest for ``key``: local, else fetched (verified) from the share."""
        path = self._manifest_path(key)
        try:
            manifest = Manifest.parse(path.read_bytes(), key)
        except OSError:
            manifest = None
        if manifest is not None and all(self._has(o) for o in manifest.outputs):
            self.hit_tier = "local"
            mark_used(path)  # gc removes the least recently used
            return manifest
        manifest = self._fetch_shared(key)
        if manifest is not None:
            self.hit_tier = "shared"
        return manifest

    def _has(self, output: Output) -> bool:
        try:
            return self.object_path(output.sha256).stat().st_size == output.size
        except OSError:
            return False

    def _fetch_shared(self, key: str) -> Manifest | None:
        if self.shared is None:
            return None
        try:
            raw = self.shared.get_manifest(key)
            if raw is None:
                return None
            manifest = Manifest.parse(raw, key)
            if manifest is None:
                self.shared.quarantine(self.shared.artifact_path(key), "malformed manifest")
                return None
            for output in manifest.outputs:
                if self._has(output):
                    continue
                with self._new_file(self.object_path(output.sha256)) as f:
                    referrer = self.shared.artifact_path(key)
                    if not self.shared.read_blob_into(referrer, output.sha256, output.size, f):
                        return None
                    f.commit(self.object_path(output.sha256), replace=False)
            self._write_manifest(manifest)
            return manifest
        except OSError as exc:
            self.reporter.warn_once(f"shared cache read failed ({exc}); treated as a miss")
            return None

    # -- restore -----------------------------------------------------------------

    def restore(self, manifest: Manifest, plan: list[tuple[str, str]]) -> bool:
        """Write each planned output, verified, with go's mode (0777 minus umask).

        False (and the damaged local object removed) if any body fails its hash.
        """
        by_package = {o.package: o for o in manifest.outputs}
        if sorted(by_package) != sorted(p for p, _ in plan):
            return False
        mode = 0o777 & ~_umask()
        for package, dest in plan:
            output = by_package[package]
            source = self.object_path(output.sha256)
            try:
                with self._new_file(Path(dest)) as f, source.open("rb") as src:
                    f.copy_from(src)
                    f.verify(output.size, output.sha256)
                    os.chmod(f.path, mode)
                    f.commit(Path(dest))
            except VerifyError:
                source.unlink(missing_ok=True)
                self._manifest_path(manifest.key).unlink(missing_ok=True)
                return False
            except FileNotFoundError:
                return False
        return True

    # -- store ---------------------------------------------------------------------

    def store(self, key: str, plan: list[tuple[str, str]]) -> Manifest:
        """Copy the outputs go just wrote into the local tier, then publish to the share."""
        outputs = []
        for package, dest in plan:
            size, digest = sha256_file(Path(dest))
            target = self.object_path(digest)
            if not self._has(Output(package, size, digest)):
                with self._new_file(target) as f, open(dest, "rb") as src:
                    f.copy_from(src)
                    f.verify(size, digest)  # changed under us while copying: refuse
                    f.commit(target, replace=False)
            outputs.append(Output(package, size, digest))
        manifest = Manifest(key, tuple(outputs))
        self._write_manifest(manifest)
        self._publish(manifest)
        return manifest

    def _write_manifest(self, manifest: Manifest) -> None:
        path = self._manifest_path(manifest.key)
        with self._new_file(path) as f:
            f.write(manifest.to_bytes())
            f.commit(path)

    def _publish(self, manifest: Manifest) -> None:
        if self.shared is None or self.shared.read_only:
            return
        try:
            for output in manifest.outputs:
                self.shared.put_object(
                    output.sha256, output.size, str(self.object_path(output.sha256))
                )
            self.shared.put_manifest(manifest.key, manifest.to_bytes())
        except OSError as exc:
            what = "is not writable" if exc.errno in UNWRITABLE else "upload failed"
            self.reporter.warn_once(
                f"shared cache {what} ({exc}); the output is cached locally only"
            )


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask
