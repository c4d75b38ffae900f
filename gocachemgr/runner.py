"""Run the real go with gocachemgr's environment, passing signals and exit codes through."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence

from gocachemgr.config import SETTINGS, Config
from gocachemgr.errors import UserError, describe_os_error
from gocachemgr.toolchain import find_go

FORWARDED_SIGNALS = (signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)


def _go_quote(word: str) -> str:
    """Quote one word for GOCACHEPROG, which go splits with cmd/internal/quoted."""
    if not any(c in word for c in " \t\n'\""):
        return word
    if "'" not in word:
        return f"'{word}'"
    return f'"{word}"'


def cacheprog_command() -> str:
    """GOCACHEPROG value: this Python running the fast cacheprog entry (no click import).

    ``-P`` keeps go's working directory off ``sys.path``: a ``json.py`` in the
    Go project must not be imported in place of the standard library.
    """
    words = (sys.executable, "-P", "-m", "gocachemgr.cacheprog")
    return " ".join(_go_quote(w) for w in words)


def go_environment(config: Config, env: Mapping[str, str]) -> dict[str, str]:
    """The environment for go: local GOCACHE, our GOCACHEPROG, and the resolved config.

    The config is handed down explicitly so the helper go starts sees exactly
    what this process resolved, flags included.
    """
    result = dict(env)
    result["GOCACHE"] = str(config.gocache_dir)
    result["GOCACHEPROG"] = cacheprog_command()
    for setting in SETTINGS:
        value = getattr(config, setting.name)
        result[setting.env_var] = "" if value is None else str(value)
    return result


def run_go(
    config: Config,
    args: Sequence[str],
    env: Mapping[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
) -> int:
    """Run ``go args...``; returns go's exit code (128+N when go died of signal N).

    Ctrl-C reaches go directly (same process group), so this process ignores
    SIGINT and waits; SIGTERM/SIGHUP/SIGQUIT sent to us are forwarded.
    """
    env = os.environ if env is None else env
    go = find_go(config, env)
    config.gocache_dir.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen([go, *args], env=go_environment(config, env), cwd=cwd)
    previous = {
        sig: signal.signal(sig, lambda s, _f: proc.send_signal(s)) for sig in FORWARDED_SIGNALS
    }
    previous[signal.SIGINT] = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        code = proc.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 128 - code if code < 0 else code


def main(args: Sequence[str]) -> int:
    """``gocachemgr go ARGS``: config errors as one line, else go's own exit code."""
    try:
        return run_go(Config.load(), args)
    except UserError as exc:
        sys.stderr.write(f"gocachemgr: error: {exc}\n")
        return exc.exit_code
    except OSError as exc:
        sys.stderr.write(f"gocachemgr: error: {describe_os_error(exc)}\n")
        return 1
