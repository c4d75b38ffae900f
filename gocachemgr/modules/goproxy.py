"""The module settings go gets when a shared dir is configured.

Nodes read the shared store first and fall back upstream:
``GOPROXY=file://<shared>/modules|<upstream>``. The ``|`` (not ``,``) makes go
try upstream after *any* error of the file proxy, not only "not found": a share
that answers EACCES or EIO must not fail a build that upstream can serve.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from gocachemgr.config import Config

GO_DEFAULT_PROXY = "https://proxy.golang.org,direct"


def shared_proxy_url(shared_dir: Path) -> str:
    """The file:// URL of the shared module store (percent-encoded, so ',' and '|' are safe)."""
    return (shared_dir / "modules").as_uri()


def _go_env_file_value(env: Mapping[str, str], key: str) -> str | None:
    """A value from the user's `go env -w` file, which go reads when the variable is unset."""
    goenv = env.get("GOENV")
    if goenv == "off":
        return None
    if not goenv:
        config_home = env.get("XDG_CONFIG_HOME") or os.path.join(env.get("HOME", ""), ".config")
        goenv = os.path.join(config_home, "go", "env")
    try:
        with open(goenv, encoding="utf-8", errors="replace") as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    for line in lines:
        name, sep, value = line.partition("=")
        if sep and name.strip() == key:
            return value.strip()
    return None


def upstream_goproxy(config: Config, env: Mapping[str, str]) -> str:
    """Where go goes after the shared store: the configured upstream, else the user's GOPROXY.

    Our own file proxy is stripped from the front, so a ``gocachemgr go`` run
    inside another one (go generate, a shim) does not list the share twice.
    """
    value = (
        config.upstream_proxy
        or env.get("GOPROXY")
        or _go_env_file_value(env, "GOPROXY")
        or GO_DEFAULT_PROXY
    )
    if config.shared_dir is not None:
        ours = shared_proxy_url(config.shared_dir)
        while value.startswith(ours) and value[len(ours) : len(ours) + 1] in ("|", ","):
            value = value[len(ours) + 1 :]
        if value == ours:
            value = "off"
    return value


def module_environment(config: Config, env: Mapping[str, str]) -> dict[str, str]:
    """GOMODCACHE, GOPROXY and GONOPROXY for go; empty when there is no shared dir.

    GONOPROXY is always set: left unset, it defaults to GOPRIVATE and go would
    skip the shared store for exactly the modules no public proxy has.
    GOSUMDB, GONOSUMDB and GOPRIVATE stay the user's.
    """
    if config.shared_dir is None:
        return {}
    return {
        "GOMODCACHE": str(config.gomodcache_dir),
        "GOPROXY": f"{shared_proxy_url(config.shared_dir)}|{upstream_goproxy(config, env)}",
        "GONOPROXY": config.gonoproxy or "none",
    }
