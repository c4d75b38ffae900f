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


class _ModulePublisher:
    """Publishes new module downloads while go runs, and once more after it exits.

    go downloads modules early and compiles afterwards, so most of the
    publishing overlaps the build instead of adding to it. A daemon thread: a
    share that hangs mid-publish must not hold the build up (``finish`` waits
    at most ``flush_timeout``). Trouble is one warning, never a failure.
    """

    FIRST_PASS_S = 0.1  # short go commands (go env, go version) never pay for a pass
    INTERVAL_S = 0.2

    def __init__(self, config: Config, reporter: Reporter) -> None:
        self._config = config
        self._reporter = reporter
        self._go_done = threading.Event()
        self._problem: str | None = None  # the share cannot take modules
        self._failures: str | None = None  # versions the last pass could not publish
        self._thread = threading.Thread(target=self._run, daemon=True, name="publish-modules")
        self._thread.start()

    def _run(self) -> None:
        if not self._go_done.wait(self.FIRST_PASS_S):
            while self._publish() and not self._go_done.wait(self.INTERVAL_S):
                pass
        if self._problem is None:
            self._publish()

    def _publish(self) -> bool:
        """One pass; False when the share cannot take modules (no point in polling on)."""
        from gocachemgr.modules.publish import publish_modules

        try:
            report = publish_modules(self._config, reporter=self._reporter)
        except UserError as exc:
            self._problem = str(exc)
            return False
        self._problem = None
        if report.failed:
            self._failures = (
                f"{len(report.failed)} module version(s) not published "
                f"(first: {report.failed[0]}); `gocachemgr mod push` retries"
            )
        else:
            self._failures = None
        return True

    def finish(self) -> None:
        """After go exits: the last pass, bounded by flush_timeout."""
        self._go_done.set()
        self._thread.join(self._config.flush_timeout)
        if self._thread.is_alive():
            self._reporter.warn_once(
                f"publishing modules to {self._config.shared_dir} took over "
                f"{self._config.flush_timeout:g} s; the rest goes up with a later go command "
                f"or `gocachemgr mod push`"
            )
        elif self._problem or self._failures:
            self._reporter.warn_once(self._problem or self._failures or "")


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
        proc = subprocess.Popen([go, *args], env=go_env, cwd=cwd, stdout=stdout)
        publisher = None
        if share_ok and publish and not config.read_only:
            publisher = _ModulePublisher(config, reporter)
        code = _wait_for_go(proc)
        if publisher is not None:
            publisher.finish()
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
