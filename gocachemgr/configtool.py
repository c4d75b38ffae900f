"""`config show` and `config init`: what each setting is, where its value came from,
and a commented config file to start from.

The template is generated from ``config.SETTINGS``, so it can never list a
setting that does not exist or miss a new one.
"""

from __future__ import annotations

import json
import os
import textwrap
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gocachemgr.config import SETTINGS, Config, config_file_path
from gocachemgr.errors import UserError
from gocachemgr.store.atomic import AtomicFile


@dataclass(frozen=True)
class ShownSetting:
    name: str
    value: Any  # JSON-ready: paths as strings, unset as None
    origin: str  # "default", "file <path>", "env GOCACHEMGR_X" or "flag --x"
    env_var: str
    help: str


def show_settings(config: Config) -> list[ShownSetting]:
    """Every setting's effective value and its source, in SETTINGS order."""
    return [
        ShownSetting(
            s.name,
            _jsonable(getattr(config, s.name)),
            config.origins.get(s.name, "default"),
            s.env_var,
            s.help,
        )
        for s in SETTINGS
    ]


def _jsonable(value: Any) -> Any:
    return str(value) if isinstance(value, Path) else value


def _toml_value(value: Any) -> str:
    """A default as TOML; unset (None) is the empty string, which every parser reads as unset."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    # JSON string escapes are valid in TOML basic strings.
    return json.dumps("" if value is None else str(value))


def render_template(env: Mapping[str, str]) -> str:
    """The commented file: each setting's help, its env var and its default, commented out."""
    lines = [
        "# gocachemgr configuration (TOML), written by `gocachemgr config init`.",
        "# Precedence: defaults < this file < GOCACHEMGR_* environment < command-line flags.",
        "# Every setting below is commented out at its default: uncomment a line to change it.",
        "# `gocachemgr config show` prints the value in effect and where it came from.",
    ]
    for setting in SETTINGS:
        lines.append("")
        lines += textwrap.wrap(setting.help, width=88, initial_indent="# ", subsequent_indent="# ")
        lines.append(f"# (environment: {setting.env_var})")
        lines.append(f"# {setting.name} = {_toml_value(setting.default(env))}")
    return "\n".join(lines) + "\n"


def init_config(path: Path | None, env: Mapping[str, str], *, force: bool = False) -> Path:
    """Write the template to ``path`` (default: the file Config reads), atomically."""
    target = path if path is not None else config_file_path(env)
    if os.path.lexists(target) and not force:
        raise UserError(f"{target} already exists; use --force to overwrite it")
    if target.is_dir():
        raise UserError(f"{target} is a directory; give a file path with --path")
    target.parent.mkdir(parents=True, exist_ok=True)
    with AtomicFile(target.parent, mode=0o644) as f:
        f.write(render_template(env).encode())
        f.commit(target)
    return target
