"""The click commands: parse, call the core, print. Nothing else lives here."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import click

from gocachemgr.config import Config
from gocachemgr.errors import UserError, describe_os_error
from gocachemgr.units import format_size


@dataclass
class App:
    """What every command needs: the flag overrides and the config they resolve to."""

    overrides: dict[str, object] = field(default_factory=dict)
    _config: Config | None = None

    @property
    def config(self) -> Config:
        if self._config is None:
            self._config = Config.load(overrides=self.overrides)
        return self._config


pass_app = click.make_pass_decorator(App)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--local-dir",
    type=click.Path(file_okay=False),
    help="Local cache root (env GOCACHEMGR_LOCAL_DIR).",
)
@click.option(
    "--shared-dir",
    type=click.Path(file_okay=False),
    help="Shared (NFS) cache root (env GOCACHEMGR_SHARED_DIR).",
)
@click.version_option(package_name="gocachemgr")
@click.pass_context
def cli(ctx: click.Context, local_dir: str | None, shared_dir: str | None) -> None:
    """A two-tier Go build cache: fast local disk in front of a shared NFS directory.

    \b
    Typical use:
      gocachemgr --shared-dir /mnt/nfs/gocache go build ./...
      gocachemgr stats
    Settings come from defaults < config file < GOCACHEMGR_* env < flags;
    see docs/operations.md.
    """
    overrides = {"local_dir": local_dir, "shared_dir": shared_dir}
    ctx.obj = App({k: os.path.abspath(v) for k, v in overrides.items() if v})


@cli.command(
    "go",
    context_settings={"ignore_unknown_options": True, "help_option_names": []},
)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
@pass_app
def go_command(app: App, args: tuple[str, ...]) -> None:
    """Run the real go with the two-tier cache, e.g. `gocachemgr go build ./...`.

    GOCACHE and GOCACHEPROG are set from the config; go's output, signals and
    exit code pass through unchanged.
    """
    from gocachemgr.runner import run_go

    sys.exit(run_go(app.config, args))


@cli.command()
@pass_app
def cacheprog(app: App) -> None:
    """Serve go's build cache over GOCACHEPROG on stdin/stdout.

    Set GOCACHEPROG="gocachemgr cacheprog" to use it without `gocachemgr go`.
    Configure it with GOCACHEMGR_* variables or the config file.
    """
    from gocachemgr.cacheprog.main import main as cacheprog_main
    from gocachemgr.config import SETTINGS

    # The server reads its config from the environment; flags given here win.
    for setting in SETTINGS:
        if setting.name in app.overrides:
            os.environ[setting.env_var] = str(app.overrides[setting.name])
    cacheprog_main()


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print a JSON object instead of text.")
@pass_app
def sync(app: App, as_json: bool) -> None:
    """Upload every entry still pending for the shared tier (left by earlier runs)."""
    from gocachemgr.sync import sync_pending

    result = sync_pending(app.config, progress=None if as_json else _progress)
    if as_json:
        click.echo(json.dumps(result.as_dict()))
    else:
        click.echo(
            f"uploaded {result.done}, failed {result.failed}, still pending {result.pending}"
        )
    if result.pending:
        sys.exit(1)


def _progress(done: int, total: int) -> None:
    click.echo(f"\rsyncing {done}/{total}", nl=done == total, err=True)


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print a JSON object instead of a table.")
@click.option("--zero", is_flag=True, help="Reset the counters after printing them.")
@pass_app
def stats(app: App, as_json: bool, zero: bool) -> None:
    """Cache counters for this node: hits per tier, misses, uploads, damage found."""
    from gocachemgr.index import Index
    from gocachemgr.stats import COUNTERS, read_stats

    index = Index(app.config.index_dir)
    values = read_stats(index)
    if zero:
        index.zero_counters()
    if as_json:
        click.echo(json.dumps(values, indent=2))
        return
    descriptions = {
        **COUNTERS,
        "uploads_pending": "entries waiting for upload (see `gocachemgr sync`)",
    }
    width = max(map(len, values))
    for name, value in values.items():
        click.echo(f"{name:<{width}}  {value:>12,}  {descriptions[name]}")


@cli.command()
@click.option(
    "--dir",
    "work_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where to put the demo's nodes and share (default: a new temp dir).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
def demo(work_dir: Path | None, as_json: bool) -> None:
    """Build the bundled sample module on two "nodes" sharing one directory.

    Node A builds cold and fills the shared tier; node B starts with an empty
    local cache and gets everything from the share. Prints where each build's
    cache entries came from.
    """
    from gocachemgr.demo import run_demo

    report = run_demo(work_dir, echo=None if as_json else click.echo)
    if as_json:
        click.echo(json.dumps(report, indent=2))
    if not report["ok"]:
        sys.exit(1)


@cli.command(
    context_settings={"ignore_unknown_options": True, "help_option_names": ["--help"]},
)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
@pass_app
def build(app: App, args: tuple[str, ...]) -> None:
    """`go build` that skips go when nothing changed: `gocachemgr build -o app ./cmd/app`.

    \b
    The content key covers the toolchain, every env var and flag that can change
    the output, the VCS stamp and every source in the package closure. On a hit
    (this node or the shared dir) the binaries are written, verified, where go
    build would put them, and go never starts. Flags the key cannot describe
    (-toolexec, -overlay, -n, -x, ...) fall through to plain go build; -v says why.
    """
    from gocachemgr.build import Builder

    builder = Builder(app.config, os.environ, os.getcwd(), note=_note)
    try:
        outcome = builder.build(list(args))
    finally:
        builder.close()
    sys.exit(outcome.code)


def _note(message: str) -> None:
    click.echo(message, err=True)


@cli.command(
    context_settings={"ignore_unknown_options": True, "help_option_names": ["--help"]},
)
@click.option("--explain", is_flag=True, help="List every input of the key and its digest.")
@click.option(
    "--diff", "against", metavar="KEY", help="Say which inputs differ from an explained KEY."
)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON object.")
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
@pass_app
def key(app: App, explain: bool, against: str | None, as_json: bool, args: tuple[str, ...]) -> None:
    """Print the content key `gocachemgr build` would use for these go build arguments."""
    from gocachemgr.build import Builder
    from gocachemgr.keys.explain import ExplainLog, diff_fields
    from gocachemgr.keys.flags import parse_build_args
    from gocachemgr.keys.graph import GoListFailed

    build_args = parse_build_args(list(args))
    if build_args.unsupported:
        raise UserError(f"no content key: {build_args.unsupported}")
    builder = Builder(app.config, os.environ, os.getcwd(), note=_note)
    try:
        try:
            result = builder.key(build_args, explain=True)
        except GoListFailed as exc:
            raise UserError(f"go list failed: {str(exc).splitlines()[0]}") from None
        log = ExplainLog(builder.index)
        log.save(result.key, result.fields)
        differences = None
        if against:
            old = log.load(against)
            if old is None:
                raise UserError(
                    f"key {against} was never explained on this node; "
                    f"run `gocachemgr key --explain` for it first"
                )
            differences = diff_fields(old, result.fields)
    finally:
        builder.close()
    if as_json:
        click.echo(
            json.dumps(
                {
                    "key": result.key,
                    "ran_go_list": result.ran_go_list,
                    "files_hashed": result.files_hashed,
                    "files_statted": result.files_statted,
                    "fields": result.fields if explain else None,
                    "diff": differences,
                },
                indent=2,
            )
        )
        return
    click.echo(result.key)
    if explain:
        for name, digest in result.fields:
            click.echo(f"  {digest}  {name}")
    if differences is not None:
        click.echo("\n".join(differences) if differences else "no inputs differ")


@cli.command()
@click.argument("roots", nargs=-1, required=True, type=click.Path(path_type=Path))
@pass_app
def watch(app: App, roots: tuple[Path, ...]) -> None:
    """Watch source trees so builds re-check only the files that changed.

    Runs until Ctrl-C or SIGTERM. Builds stay correct without it, only slower:
    without a live watcher (or after lost events) every file is stat-checked.
    """
    from gocachemgr.index import Index
    from gocachemgr.watch import resolve_roots, watch_until_signalled

    resolved = resolve_roots(roots)
    index = Index(app.config.index_dir)
    try:
        watch_until_signalled(
            resolved,
            index,
            on_ready=lambda: click.echo(f"watching {', '.join(resolved)} (pid {os.getpid()})"),
        )
    finally:
        index.close()


@cli.group()
def mod() -> None:
    """Share Go module downloads between nodes through the shared dir.

    \b
    With a shared dir set, `gocachemgr go` keeps GOMODCACHE on local disk, puts
    GOPROXY=file://<shared>/modules|<your GOPROXY> so nodes read the shared store
    first, and publishes new downloads after every go command. These commands do
    the same by hand and check the store.
    """


@mod.command("push")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON object instead of text.")
@pass_app
def mod_push(app: App, as_json: bool) -> None:
    """Publish every complete module version in this node's module cache.

    Re-checks each version against the store (also ones published before), so
    it repairs files that `mod verify` quarantined. Exits 1 if any version
    could not be published.
    """
    from gocachemgr.modules.publish import publish_modules

    progress = None if as_json else _counting("pushing: module", "modules")
    report = publish_modules(app.config, recheck=True, progress=progress)
    if as_json:
        click.echo(json.dumps(report.as_dict(), indent=2))
    else:
        click.echo(
            f"published {report.versions_published} new version(s), "
            f"{report.files_written} file(s), {format_size(report.bytes_written)} "
            f"from {report.modules_scanned} module(s)"
        )
        for line in report.failed:
            click.echo(f"failed: {line}", err=True)
    if report.failed:
        sys.exit(1)


@mod.command("pull")
@click.argument(
    "directory",
    required=False,
    default=".",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON object instead of text.")
@pass_app
def mod_pull(app: App, directory: Path, as_json: bool) -> None:
    """Download the modules DIRECTORY's go.mod needs (default: .), shared store first.

    go verifies every module against go.sum as usual. Modules that had to
    come from upstream are published to the shared store afterwards.
    """
    from gocachemgr.modules.publish import publish_modules
    from gocachemgr.modules.pull import pull_modules

    if app.config.shared_dir is None:
        raise UserError("no shared dir configured: set GOCACHEMGR_SHARED_DIR or --shared-dir")
    progress = None if as_json else _pull_progress
    report = pull_modules(app.config, directory.resolve(), os.environ, progress=progress)
    published = publish_modules(app.config) if report.from_upstream else None
    if as_json:
        result = report.as_dict()
        result["published"] = published.versions_published if published else 0
        click.echo(json.dumps(result, indent=2))
    else:
        click.echo(
            f"{report.modules} module(s): {report.from_shared} from the shared store, "
            f"{report.from_upstream} from upstream, {report.already_local} already local"
            + (f"; published {published.versions_published}" if published else "")
        )
        for line in report.errors:
            click.echo(f"error: {line}", err=True)
    if report.errors:
        sys.exit(1)


def _pull_progress(arrived: int) -> None:
    click.echo(f"pulling: {arrived} module(s) downloaded so far", err=True)


@mod.command("verify")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON object instead of text.")
@pass_app
def mod_verify(app: App, as_json: bool) -> None:
    """Re-hash every zip in the shared module store against its recorded h1: hash.

    Bad zips (and the .ziphash that vouched for them) are moved to the share's
    quarantine/ and listed; the next publish from a node that has a good copy
    puts them back. Version lists are checked too. Exits 1 if anything was bad.
    """
    from gocachemgr.modules.store import ModuleStore
    from gocachemgr.store.shared import SharedStore, SharedUnavailable

    config = app.config
    if config.shared_dir is None:
        raise UserError("no shared dir configured: set GOCACHEMGR_SHARED_DIR or --shared-dir")
    shared = SharedStore(config.shared_dir)
    try:
        shared.open()
    except SharedUnavailable as exc:
        raise UserError(f"cannot verify: {exc}") from None
    store = ModuleStore(shared, lease_stale=config.lease_stale, lease_timeout=config.shared_timeout)
    progress = None if as_json else _counting("verifying: zip", "zips")
    report = store.verify(progress=progress)
    if as_json:
        click.echo(json.dumps(asdict(report), indent=2))
    else:
        click.echo(
            f"checked {report.checked} zip(s), {format_size(report.bytes_checked)}: "
            f"{len(report.bad)} bad, {len(report.lists_fixed)} version list(s) fixed"
        )
        for line in report.bad:
            click.echo(f"quarantined: {line}", err=True)
    if report.bad:
        sys.exit(1)


def _counting(label: str, unit: str) -> Callable[[int, int], None]:
    """A progress line on stderr: "label N/TOTAL", ended when done."""

    def show(done: int, total: int) -> None:
        click.echo(f"\r{label} {done}/{total} {unit}", nl=done == total, err=True)

    return show


def run(argv: Sequence[str]) -> int:
    """Run the CLI; every error a user can cause ends as one line and a non-zero status."""
    try:
        result = cli.main(args=list(argv), prog_name="gocachemgr", standalone_mode=False)
    except click.UsageError as exc:
        command = exc.ctx.command_path if exc.ctx else "gocachemgr"
        hint = f"; see '{command} --help'"
        click.echo(f"gocachemgr: error: {exc.format_message().rstrip('.')}{hint}", err=True)
        return 2
    except click.ClickException as exc:
        click.echo(f"gocachemgr: error: {exc.format_message()}", err=True)
        return exc.exit_code
    except click.exceptions.Abort:
        return 130
    except UserError as exc:
        click.echo(f"gocachemgr: error: {exc}", err=True)
        return exc.exit_code
    except OSError as exc:
        click.echo(f"gocachemgr: error: {describe_os_error(exc)}", err=True)
        return 1
    except KeyboardInterrupt:
        return 130
    return result if isinstance(result, int) else 0
