"""Test helpers: nodes that run the real gocachemgr and go in subprocesses."""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

SAMPLE = Path(__file__).resolve().parent.parent / "gocachemgr" / "sample"
# A compile action in `go build -x` output runs GOROOT/pkg/tool/<os_arch>/compile.
COMPILE_LINE = re.compile(r"/pkg/tool/[^/ ]+/compile\b")


def compile_actions(go_x_output: str) -> list[str]:
    """The compile commands `go build -x` printed (empty when everything was cached)."""
    return [line for line in go_x_output.splitlines() if COMPILE_LINE.search(line)]


def copy_sample(dest: Path) -> Path:
    shutil.copytree(SAMPLE, dest)
    return dest


@dataclass
class Node:
    """One build machine: its own local dir, maybe a shared dir, the real CLI."""

    local_dir: Path
    shared_dir: Path | None
    base_env: dict[str, str]

    @property
    def env(self) -> dict[str, str]:
        env = dict(self.base_env)
        env["GOCACHEMGR_LOCAL_DIR"] = str(self.local_dir)
        env["GOCACHEMGR_SHARED_DIR"] = str(self.shared_dir) if self.shared_dir else ""
        return env

    def run(
        self, *args: str, cwd: Path | None = None, timeout: float = 600, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """Run ``gocachemgr ARGS`` as a user would (a new Python process)."""
        proc = subprocess.run(
            # -P: like the `gocachemgr` script, keep the Go project dir off sys.path
            [sys.executable, "-P", "-m", "gocachemgr", *args],
            cwd=cwd,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check and proc.returncode != 0:
            raise AssertionError(
                f"gocachemgr {' '.join(args)} exited {proc.returncode}\n"
                f"stdout:\n{proc.stdout[-3000:]}\nstderr:\n{proc.stderr[-3000:]}"
            )
        return proc

    def go(
        self, *args: str, cwd: Path | None = None, **kw: object
    ) -> subprocess.CompletedProcess[str]:
        return self.run("go", *args, cwd=cwd, **kw)  # type: ignore[arg-type]

    def stats(self) -> dict[str, int]:
        return json.loads(self.run("stats", "--json").stdout)

    def zero_stats(self) -> None:
        self.run("stats", "--zero", "--json")


def warnings_in(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("gocachemgr: warning:")]


def run_with_readonly_share(node: Node, share: Path, *args: str,
                            cwd: Path) -> subprocess.CompletedProcess[str]:
    """``gocachemgr ARGS`` in a private mount namespace where ``share`` is a read-only bind.

    The tests run as root, so chmod would not stop writes; a read-only mount does.
    """
    mount = f"mount --bind -o ro {shlex.quote(str(share))} {shlex.quote(str(share))}"
    return subprocess.run(
        ["unshare", "-m", "sh", "-c", f'{mount} && exec "$@"', "sh",
         sys.executable, "-m", "gocachemgr", *args],
        cwd=cwd, env=node.env, capture_output=True, text=True, timeout=300,
    )
