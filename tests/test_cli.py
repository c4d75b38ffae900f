"""The CLI as users meet it: config precedence, one-line errors, go pass-through."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from gocachemgr.config import Config
from gocachemgr.errors import ConfigError
from tests.helpers import Node, compile_actions


def gocachemgr(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gocachemgr", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=300,
    )


def assert_one_line_error(proc: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


def test_config_precedence_defaults_file_env_flags(tmp_path: Path) -> None:
    config_file = tmp_path / "c.toml"
    config_file.write_text(f'local_dir = "{tmp_path / "from-file"}"\nflush_timeout = 3\n')
    env = {"HOME": str(tmp_path), "GOCACHEMGR_CONFIG": str(config_file)}

    from_file = Config.load(env=env)
    assert from_file.local_dir == tmp_path / "from-file"
    assert from_file.flush_timeout == 3.0
    assert from_file.shared_dir is None
    assert from_file.origins["local_dir"] == f"file {config_file}"
    assert from_file.origins["upload_workers"] == "default"

    env["GOCACHEMGR_LOCAL_DIR"] = str(tmp_path / "from-env")
    assert Config.load(env=env).local_dir == tmp_path / "from-env"

    flagged = Config.load(env=env, overrides={"local_dir": str(tmp_path / "from-flag")})
    assert flagged.local_dir == tmp_path / "from-flag"
    assert flagged.origins["local_dir"] == "flag --local-dir"


def test_default_local_dir_follows_xdg_cache_home(tmp_path: Path) -> None:
    config = Config.load(env={"HOME": str(tmp_path), "XDG_CACHE_HOME": str(tmp_path / "xdg")})
    assert config.local_dir == tmp_path / "xdg" / "gocachemgr"


@pytest.mark.parametrize(
    ("env", "needles"),
    [
        ({"GOCACHEMGR_FLUSH_TIMEOUT": "soon"}, ["flush_timeout", "GOCACHEMGR_FLUSH_TIMEOUT"]),
        ({"GOCACHEMGR_UPLOAD_WORKERS": "0"}, ["upload_workers", "between 1 and 64"]),
        ({"GOCACHEMGR_SHARED_DIR": "relative/dir"}, ["shared_dir", "absolute"]),
        (
            {"GOCACHEMGR_CONFIG": "/nonexistent/gocachemgr.toml"},
            ["does not exist", "GOCACHEMGR_CONFIG"],
        ),
    ],
)
def test_bad_config_is_one_line_error(env: dict[str, str], needles: list[str]) -> None:
    with pytest.raises(ConfigError):
        Config.load(env={"HOME": "/tmp", **env})
    proc = gocachemgr("stats", env={**os.environ, **env})
    assert proc.returncode == 2
    assert_one_line_error(proc, *needles)


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        ("local_dir = \n", "not valid TOML"),
        ("colour = 'blue'\n", "unknown key 'colour'"),
        ("flush_timeout = -1\n", "flush_timeout"),
    ],
)
def test_bad_config_file_is_one_line_error(tmp_path: Path, content: str, needle: str) -> None:
    config_file = tmp_path / "bad.toml"
    config_file.write_text(content)
    proc = gocachemgr("go", "version", env={**os.environ, "GOCACHEMGR_CONFIG": str(config_file)})
    assert proc.returncode == 2
    assert_one_line_error(proc, needle, str(config_file))


def test_bad_config_in_hand_set_cacheprog_is_one_line(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "gocachemgr.cacheprog"],
        input="",
        capture_output=True,
        text=True,
        env={**os.environ, "GOCACHEMGR_SHARED_TIMEOUT": "forever"},
    )
    assert proc.returncode == 2
    assert proc.stdout == ""  # no hello: go reports the helper's own message
    assert_one_line_error(proc, "shared_timeout")


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["no-such-command"], "No such command"),
        (["stats", "--jsn"], "No such option"),
        (["--local-dir"], "requires an argument"),
        (["sync", "extra"], "unexpected extra argument"),
    ],
)
def test_bad_cli_input_is_one_line_error(args: list[str], needle: str) -> None:
    proc = gocachemgr(*args)
    assert proc.returncode == 2
    assert_one_line_error(proc, needle, "--help")


def test_sync_without_shared_dir_explains_the_fix() -> None:
    proc = gocachemgr("sync")
    assert proc.returncode == 2
    assert_one_line_error(proc, "no shared dir configured", "GOCACHEMGR_SHARED_DIR")


def test_help_teaches() -> None:
    top = gocachemgr("--help")
    assert top.returncode == 0
    for command in ("go", "cacheprog", "sync", "stats", "demo"):
        assert command in top.stdout
    assert "GOCACHEPROG" in gocachemgr("cacheprog", "--help").stdout


def test_go_exit_code_and_output_pass_through(make_node: Callable[..., Node], sample: Path) -> None:
    node = make_node("a", None)
    version = node.go("version")
    assert version.stdout.startswith("go version go1.")
    broken = node.go("build", "./does-not-exist", cwd=sample, check=False)
    assert broken.returncode == 1
    assert "does-not-exist" in broken.stderr  # go's own message, unchanged


def test_sigterm_is_forwarded_to_go(make_node: Callable[..., Node], sample: Path) -> None:
    (sample / "greet" / "sleep_test.go").write_text(
        'package greet\n\nimport (\n\t"testing"\n\t"time"\n)\n\n'
        "func TestSleep(t *testing.T) { time.Sleep(20 * time.Second) }\n"
    )
    node = make_node("a", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "gocachemgr", "go", "test", "-run", "TestSleep", "./greet"],
        cwd=sample,
        env=node.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(8)  # long enough for the test binary to be compiled and running
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=15)
    assert time.monotonic() - started < 10
    assert proc.returncode == 128 + signal.SIGTERM


def test_hand_set_gocacheprog_works(tmp_path: Path, sample: Path, base_env: dict[str, str]) -> None:
    """GOCACHEPROG="gocachemgr cacheprog" with the plain go command, no runner."""
    from gocachemgr.config import Config as Cfg
    from gocachemgr.toolchain import find_go

    assert shutil.which("gocachemgr"), "the console script must be installed"
    go = find_go(Cfg.load())
    env = {
        **base_env,
        "GOCACHEPROG": "gocachemgr cacheprog",
        "GOCACHE": str(tmp_path / "gc"),
        "GOCACHEMGR_LOCAL_DIR": str(tmp_path / "local"),
    }
    first = subprocess.run(
        [go, "build", "-x", "-o", str(tmp_path / "bin"), "."],
        cwd=sample,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert first.returncode == 0, first.stderr[-2000:]
    again = subprocess.run(
        [go, "build", "-x", "-o", str(tmp_path / "bin2"), "."],
        cwd=sample,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert again.returncode == 0
    assert compile_actions(again.stderr) == []
    objects = list((tmp_path / "gc").glob("??/*-d"))
    assert objects, "bodies live inside go's GOCACHE"
    stats = json.loads(
        gocachemgr(
            "stats", "--json", env={**base_env, "GOCACHEMGR_LOCAL_DIR": str(tmp_path / "local")}
        ).stdout
    )
    assert stats["hits_local"] > 0
