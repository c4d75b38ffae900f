"""Fixtures: every test gets its own homes and caches; nothing touches the real ones."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from gocachemgr.sandbox import isolated_env
from tests.helpers import Node, copy_sample


@pytest.fixture(autouse=True)
def _isolate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Point HOME, XDG dirs, GOCACHEMGR_* and Go's env at the test's temp dir."""
    env = isolated_env(tmp_path / "env")
    for key in list(os.environ):
        if key not in env:
            monkeypatch.delenv(key)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return env


@pytest.fixture
def base_env(_isolate: dict[str, str]) -> dict[str, str]:
    return dict(_isolate)


@pytest.fixture
def shared_dir(tmp_path: Path) -> Path:
    path = tmp_path / "share"
    path.mkdir()
    return path


@pytest.fixture
def make_node(tmp_path: Path, base_env: dict[str, str]) -> Callable[..., Node]:
    def make(name: str, shared: Path | None) -> Node:
        return Node(tmp_path / "nodes" / name, shared, base_env)

    return make


@pytest.fixture
def sample(tmp_path: Path) -> Path:
    return copy_sample(tmp_path / "sample")
