"""`config show` and `config init` through the real CLI; the written file loads back."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

from gocachemgr.config import SETTINGS, Config
from tests.helpers import Node

SETTING_LINE = re.compile(r"^# ([a-z_]+) = ", re.MULTILINE)


def config_path(node: Node) -> Path:
    return Path(node.env["XDG_CONFIG_HOME"]) / "gocachemgr" / "config.toml"


def test_show_names_every_source(
    make_node: Callable[..., Node], shared_dir: Path, tmp_path: Path
) -> None:
    node = make_node("a", shared_dir)
    path = config_path(node)
    path.parent.mkdir(parents=True)
    path.write_text("upload_workers = 8\nread_only = true\n")

    shown = json.loads(node.run("--read-only", "config", "show", "--json").stdout)
    table = node.run("config", "show").stdout

    assert shown["config_file"] == str(path) and shown["config_file_exists"] is True
    settings = shown["settings"]
    assert list(settings) == [s.name for s in SETTINGS]
    assert settings["upload_workers"]["value"] == 8
    assert settings["upload_workers"]["origin"] == f"file {path}"
    assert settings["read_only"] == {
        "name": "read_only",
        "value": True,
        "origin": "flag --read-only",
        "env_var": "GOCACHEMGR_READ_ONLY",
        "help": next(s.help for s in SETTINGS if s.name == "read_only"),
    }
    assert settings["shared_dir"]["value"] == str(shared_dir)
    assert settings["shared_dir"]["origin"] == "env GOCACHEMGR_SHARED_DIR"
    assert settings["flush_timeout"]["origin"] == "default"
    assert table.splitlines()[0] == f"config file: {path} (read)"
    assert re.search(rf"^read_only +true +file {re.escape(str(path))}$", table, re.MULTILINE)
    assert re.search(r"^go +\(unset\) +default$", table, re.MULTILINE)


def test_init_writes_a_commented_file_that_loads_as_the_defaults(
    make_node: Callable[..., Node],
) -> None:
    node = make_node("a", None)
    path = config_path(node)

    written = node.run("config", "init")

    assert written.stdout.startswith(f"wrote {path}:")
    text = path.read_text()
    assert SETTING_LINE.findall(text) == [s.name for s in SETTINGS]
    for setting in SETTINGS:
        assert setting.env_var in text
    env = {**node.base_env, "GOCACHEMGR_CONFIG": str(path)}
    defaults = Config.load(env=node.base_env)
    as_written = Config.load(env=env)
    assert as_written == defaults
    assert set(as_written.origins.values()) == {"default"}

    path.write_text(SETTING_LINE.sub(r"\1 = ", text))  # uncomment every setting
    uncommented = Config.load(env=env)
    assert uncommented == defaults
    assert set(uncommented.origins.values()) == {f"file {path}"}


def test_init_refuses_to_overwrite_without_force(
    make_node: Callable[..., Node], tmp_path: Path
) -> None:
    node = make_node("a", None)
    path = tmp_path / "elsewhere" / "gocachemgr.toml"
    path.parent.mkdir()
    path.write_text("shared_timeout = 3\n")

    refused = node.run("config", "init", "--path", str(path), check=False)
    assert refused.returncode == 2
    assert refused.stderr == (
        f"gocachemgr: error: {path} already exists; use --force to overwrite it\n"
    )
    assert path.read_text() == "shared_timeout = 3\n"

    forced = node.run("config", "init", "--path", str(path), "--force")
    assert f"GOCACHEMGR_CONFIG={path}" in forced.stdout
    assert SETTING_LINE.findall(path.read_text()) == [s.name for s in SETTINGS]
    assert not list(path.parent.glob(".tmp-*"))


def test_show_reports_a_bad_value_in_one_line(make_node: Callable[..., Node]) -> None:
    node = make_node("a", None)
    path = config_path(node)
    path.parent.mkdir(parents=True)
    path.write_text('toolchain_pin = "sometimes"\n')

    shown = node.run("config", "show", check=False)

    assert shown.returncode == 2
    assert shown.stderr.startswith("gocachemgr: error: bad config value for 'toolchain_pin'")
    assert shown.stderr.count("\n") == 1
