"""A Go environment that lives entirely under one directory.

The demo, the tests and the benchmarks run real go commands; none of them may
read or write the user's homes, caches, GOPATH or go env file, nor reach for
the network or another toolchain.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

# Offline and pinned: no module proxy, no checksum database, no toolchain switch.
OFFLINE_GO = {
    "GOFLAGS": "-mod=mod",
    "GOPROXY": "off",
    "GOSUMDB": "off",
    "GOTOOLCHAIN": "local",
    "GOTELEMETRY": "off",
}


def isolated_env(root: Path, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """``base`` (default: os.environ) without Go and gocachemgr settings, homes under ``root``."""
    base = os.environ if base is None else base
    env = {
        k: v
        for k, v in base.items()
        if not k.startswith(("GOCACHEMGR_", "GO")) and k not in {"CGO_ENABLED", "PYTHONPATH"}
    }
    home = root / "home"
    home.mkdir(parents=True, exist_ok=True)
    env.update(
        HOME=str(home),
        XDG_CACHE_HOME=str(home / ".cache"),
        XDG_CONFIG_HOME=str(home / ".config"),
        GOPATH=str(root / "gopath"),
        CGO_ENABLED="0",
        **OFFLINE_GO,
    )
    return env
