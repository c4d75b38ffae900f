"""Run the real go with gocachemgr's environment, passing signals and exit codes through."""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator, Mapping, Sequence
from typing import IO

from gocachemgr.config import SETTINGS, Config
from gocachemgr.errors import UserError, describe_os_error
from gocachemgr.modules.goproxy import module_environment, upstream_goproxy
from gocachemgr.reporter import WARN_MARKER_ENV, Reporter
from gocachemgr.toolchain import find_go, pin_problem

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
    """The environment for go: local GOCACHE, our GOCACHEPROG, the module settings
    (``modules.goproxy``) and the resolved config.

    The config is handed down explicitly so the helper go starts sees exactly
    what this process resolved, flags included.
    """
    result = dict(env)
    result["GOCACHE"] = str(config.gocache_dir)
    result["GOCACHEPROG"] = cacheprog_command()
    result.update(module_environment(config, env))
    for setting in SETTINGS:
        value = getattr(config, setting.name)
        result[setting.env_var] = "" if value is None else str(value)
    return result


def _probe_share(config: Config) -> str | None:
    """Why the shared dir cannot be used for this run, or None; bounded by shared_timeout.

    Checked once, before go starts: go reads the module store itself, and a
    hung mount would hang go's first module fetch where we cannot time it out.
    """
    from gocachemgr.store.shared import SharedStore

    problems: list[str] = []
    shared = SharedStore(config.shared_dir, read_only=config.read_only)  # type: ignore[arg-type]
    done = shared.open_in_background(problems.append)
    try:
        done.result(timeout=config.shared_timeout)
    except TimeoutError:
        return (
            f"shared dir {config.shared_dir} did not answer within "
            f"{config.shared_timeout:g} s (hung mount?)"
        )
    return problems[0] if problems else None


def _publish_modules(config: Config, reporter: Reporter) -> None:
    """Publish this run's new module downloads; trouble is one warning, never a failure."""
    from gocachemgr.modules.publish import publish_modules

    outcome: list[str] = []

    def work() -> None:
        try:
            report = publish_modules(config, reporter=reporter)
        except UserError as exc:
            outcome.append(str(exc))
            return
        if report.failed:
            outcome.append(
                f"{len(report.failed)} module version(s) not published "
                f"(first: {report.failed[0]}); `gocachemgr mod push` retries"
            )
        outcome.append("")

    # A daemon thread: a share that hangs mid-publish must not hold the build up.
    worker = threading.Thread(target=work, daemon=True, name="publish-modules")
    worker.start()
    worker.join(config.flush_timeout)
    if worker.is_alive():
        reporter.warn_once(
            f"publishing modules to {config.shared_dir} took over {config.flush_timeout:g} s; "
            f"the rest goes up with a later go command or `gocachemgr mod push`"
        )
    elif outcome and outcome[0]:
        reporter.warn_once(outcome[0])


def _check_pin(config: Config, go: str, reporter: Reporter) -> None:
    """This node's go against the share's pin, per ``toolchain_pin`` (warn, refuse, off)."""
    problem = pin_problem(config, go)
    if problem is None:
        return
    if config.toolchain_pin == "refuse":
        raise UserError(f"not running go (toolchain_pin = refuse): {problem}")
    reporter.warn_once(problem)


def run_go(
    config: Config,
    args: Sequence[str],
    env: Mapping[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
    stdout: IO[bytes] | None = None,
    publish: bool = True,
) -> int:
    """Run ``go args...``; returns go's exit code (128+N when go died of signal N).

    Ctrl-C reaches go directly (same process group), so this process ignores
    SIGINT and waits; SIGTERM/SIGHUP/SIGQUIT sent to us are forwarded. With a
    usable shared dir, new module downloads are published afterwards unless
    ``publish`` is False or the node is read-only. Over ``local_max_size``, a local
    gc follows.
    """
    env = os.environ if env is None else env
    go = find_go(config, env)
    config.gocache_dir.mkdir(parents=True, exist_ok=True)
    go_env = go_environment(config, env)
    with _warn_marker(config, go_env) as reporter:
        share_ok = config.shared_dir is not None
        if share_ok:
            problem = _probe_share(config)
            if problem is not None:
                share_ok = False
                # The helper go starts finds the same problem and keeps its puts
                # pending for `gocachemgr sync`; the shared marker keeps it quiet.
                reporter.warn_once(
                    f"{problem}; continuing with the local cache only (modules from upstream)"
                )
                go_env["GOPROXY"] = upstream_goproxy(config, env)
            else:
                _check_pin(config, go, reporter)
        code = _wait_for_go(subprocess.Popen([go, *args], env=go_env, cwd=cwd, stdout=stdout))
        if share_ok and publish and not config.read_only:
            _publish_modules(config, reporter)
        if config.local_max_size is not None:
            from gocachemgr.gc import auto_gc

            auto_gc(config, reporter)
    return code


def _wait_for_go(proc: subprocess.Popen[bytes]) -> int:
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


@contextlib.contextmanager
def _warn_marker(config: Config, go_env: dict[str, str]) -> Iterator[Reporter]:
    """A Reporter whose one warning is shared with every process of this go command.

    A run nested in another (go generate calling the shim) keeps the outer marker.
    """
    if go_env.get(WARN_MARKER_ENV):
        yield Reporter(env=go_env)
        return
    tmp = config.local_dir / "tmp"
    tmp.mkdir(parents=True, exist_ok=True)
    marker = tmp / f"warned-{os.getpid()}-{secrets.token_hex(4)}"
    go_env[WARN_MARKER_ENV] = str(marker)
    try:
        yield Reporter(env=go_env)
    finally:
        with contextlib.suppress(FileNotFoundError):
            marker.unlink()


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
