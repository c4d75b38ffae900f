"""Go modules made on the spot, served by a ``file://`` GOPROXY.

No public proxy is reachable from the demo, the tests or the benchmarks, so
they get their "upstream" from here: go's own proxy layout, module zips real
go accepts, and a consumer whose go.sum the real go wrote.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
import zipfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from gocachemgr.config import Config
from gocachemgr.modules.paths import (
    escape_path,
    escape_version,
    is_canonical_version,
    is_pseudo_version,
    semver_sort,
)
from gocachemgr.sandbox import isolated_env
from gocachemgr.toolchain import find_go

ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # the earliest a zip can say: same bytes on every run
GO_LINE = "go 1.21"  # graph pruning on (go >= 1.17), no toolchain line needed


@dataclass(frozen=True)
class ModuleVersion:
    """One published version: its files by name relative to the module root."""

    path: str
    version: str
    files: Mapping[str, str]
    time: str = "2024-01-01T00:00:00Z"

    def __post_init__(self) -> None:
        if "go.mod" not in self.files:
            raise ValueError(f"{self.path}@{self.version} has no go.mod")
        if not is_canonical_version(self.version):
            raise ValueError(f"{self.path}@{self.version}: version is not canonical")


@dataclass
class Upstream:
    """A file:// proxy and a main module that builds from it with go.sum verification."""

    proxy_dir: Path
    consumer_dir: Path
    versions: list[ModuleVersion]
    expected_output: str  # what the consumer program prints

    @property
    def goproxy(self) -> str:
        return self.proxy_dir.as_uri()


def _write_zip(dest: Path, mv: ModuleVersion) -> None:
    """A module zip as go's zip.Create makes one: ``<path>@<version>/<file>`` entries, no dirs."""
    prefix = f"{mv.path}@{mv.version}/"
    with zipfile.ZipFile(dest, "w") as zf:
        for name in sorted(mv.files):
            info = zipfile.ZipInfo(prefix + name, date_time=ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, mv.files[name])


def write_proxy(root: Path, versions: Iterable[ModuleVersion]) -> None:
    """Publish ``versions`` under ``root`` in go's proxy layout.

    ``<escaped path>/@v/`` gets ``<v>.info``, ``<v>.mod``, ``<v>.zip``, and
    ``list`` is merged with what is already there: pseudo-versions are never
    listed (a proxy lists tags; go finds pseudo-versions by asking for them).
    """
    listed: dict[Path, set[str]] = {}
    for mv in versions:
        vdir = root / escape_path(mv.path) / "@v"
        vdir.mkdir(parents=True, exist_ok=True)
        stem = escape_version(mv.version)
        info = {"Version": mv.version, "Time": mv.time}
        (vdir / f"{stem}.info").write_text(json.dumps(info) + "\n", encoding="utf-8")
        (vdir / f"{stem}.mod").write_text(mv.files["go.mod"], encoding="utf-8")
        _write_zip(vdir / f"{stem}.zip", mv)
        new = listed.setdefault(vdir, set())
        if not is_pseudo_version(mv.version):
            new.add(mv.version)
    for vdir, new in listed.items():
        list_file = vdir / "list"
        old = list_file.read_text().split() if list_file.exists() else []
        lines = semver_sort(set(old) | new)
        list_file.write_text("".join(f"{v}\n" for v in lines), encoding="utf-8")


def _go_mod(path: str, requires: Iterable[tuple[str, str]] = (), go_line: str = GO_LINE) -> str:
    lines = [f"module {path}\n", "\n", f"{go_line}\n"]
    reqs = sorted(requires)
    if reqs:
        lines += ["\n", "require (\n", *(f"\t{p} {v}\n" for p, v in reqs), ")\n"]
    return "".join(lines)


def _go_file(package: str, imports: Iterable[str], body: str) -> str:
    imps = sorted(imports)
    block = "import (\n" + "".join(f"\t{i}\n" for i in imps) + ")\n\n" if imps else ""
    return f"package {package}\n\n{block}{body}"


def _tidy(go: str, consumer_dir: Path, proxy_dir: Path) -> None:
    """Let the real go write the consumer's go.mod and complete go.sum, leaving nothing behind.

    Its module cache lives in a throwaway dir (-modcacherw so it can be removed).
    """
    with tempfile.TemporaryDirectory(prefix="gocachemgr-tidy-") as scratch:
        env = isolated_env(Path(scratch))
        env.update(GOPROXY=proxy_dir.as_uri(), GOFLAGS="-mod=mod -modcacherw", GOWORK="off")
        proc = subprocess.run(
            [go, "mod", "tidy"], cwd=consumer_dir, env=env, capture_output=True, text=True
        )
        if proc.returncode != 0:
            raise RuntimeError(f"go mod tidy in {consumer_dir} failed:\n{proc.stderr}")


def _publish(
    root: Path, versions: list[ModuleVersion], consumer: Mapping[str, str], output: str
) -> Upstream:
    """Write the proxy and the consumer under ``root``, then have go complete go.sum."""
    proxy_dir, consumer_dir = root / "proxy", root / "consumer"
    write_proxy(proxy_dir, versions)
    for name, text in consumer.items():
        (consumer_dir / name).parent.mkdir(parents=True, exist_ok=True)
        (consumer_dir / name).write_text(text, encoding="utf-8")
    _tidy(find_go(Config.load()), consumer_dir, proxy_dir)
    return Upstream(proxy_dir, consumer_dir, versions, output)


LIB = "example.com/lib"
LIB_VERSIONS = ("v1.0.0", "v1.1.0", "v1.2.0")
PSEUDO_VERSION = "v0.0.0-20240102030405-abcdefabcdef"
PSEUDO_TIME = "2024-01-02T03:04:05Z"  # the pseudo-version's timestamp, as go expects


def _fixture_versions() -> list[ModuleVersion]:
    greet = 'func Greet(who string) string {{ return "lib {v} greets " + who }}\n'
    libs = [
        ModuleVersion(
            LIB,
            v,
            {
                "go.mod": _go_mod(LIB),
                "lib.go": _go_file("lib", [], f'const Version = "{v}"\n\n' + greet.format(v=v)),
            },
        )
        for v in LIB_VERSIONS
    ]
    describe = 'func Describe() string {{ return "{name} sees lib " + lib.Version }}\n'
    return [
        *libs,
        # A go 1.21 module: the consumer reaches lib v1.1.0 through it (pruned graph).
        ModuleVersion(
            "example.com/mid",
            "v1.0.0",
            {
                "go.mod": _go_mod("example.com/mid", [(LIB, "v1.1.0")]),
                "mid.go": _go_file("mid", [f'"{LIB}"'], describe.format(name="mid")),
            },
        ),
        # A go 1.16 module: its graph is not pruned, so whenever go loads the
        # module graph it needs lib v1.0.0's go.mod, never its zip (v1.2.0 wins).
        ModuleVersion(
            "example.com/old",
            "v1.0.0",
            {
                "go.mod": _go_mod("example.com/old", [(LIB, "v1.0.0")], go_line="go 1.16"),
                "old.go": _go_file("old", [f'"{LIB}"'], describe.format(name="old")),
            },
        ),
        # Upper-case letters: escaped as example.com/!upper/!case on disk.
        ModuleVersion(
            "example.com/Upper/Case",
            "v1.0.0",
            {
                "go.mod": _go_mod("example.com/Upper/Case"),
                "upper.go": _go_file(
                    "upper",
                    ['"strings"'],
                    "func Shout(s string) string { return strings.ToUpper(s) }\n",
                ),
            },
        ),
        ModuleVersion(
            "example.com/pseudo",
            PSEUDO_VERSION,
            {
                "go.mod": _go_mod("example.com/pseudo"),
                "pseudo.go": _go_file("pseudo", [], 'const Commit = "abcdefabcdef"\n'),
            },
            time=PSEUDO_TIME,
        ),
        ModuleVersion(
            "example.com/nested",
            "v1.0.0",
            {
                "go.mod": _go_mod("example.com/nested"),
                "nested.go": _go_file("nested", [], "const Top = true\n"),
                "inner/deep/deep.go": _go_file("deep", [], "func Depth() int { return 3 }\n"),
            },
        ),
    ]


FIXTURE_MAIN = _go_file(
    "main",
    [
        '"fmt"',
        'upper "example.com/Upper/Case"',
        f'"{LIB}"',
        '"example.com/mid"',
        '"example.com/nested/inner/deep"',
        '"example.com/old"',
        '"example.com/pseudo"',
    ],
    """func main() {
\tfmt.Println(lib.Greet("consumer"))
\tfmt.Println(mid.Describe())
\tfmt.Println(old.Describe())
\tfmt.Println(upper.Shout("case"))
\tfmt.Println("pseudo", pseudo.Commit)
\tfmt.Println("deep", deep.Depth())
}
""",
)
FIXTURE_OUTPUT = (
    "lib v1.2.0 greets consumer\n"
    "mid sees lib v1.2.0\n"
    "old sees lib v1.2.0\n"
    "CASE\n"
    "pseudo abcdefabcdef\n"
    "deep 3\n"
)


def upstream_fixture(root: Path) -> Upstream:
    """The acceptance fixture: every kind of module version a module store must carry.

    Several versions of one module (the consumer selects lib v1.2.0; v1.1.0
    and v1.0.0 come in through mid and old), an upper-case path, a version
    go needs only the .mod of (lib v1.0.0, through go 1.16 old), a
    pseudo-version and a nested package.

    go fetches lib v1.0.0's .mod only when it loads the module graph (go mod
    download, go list -m all, tidy): a plain build of this go 1.21 consumer
    loads it lazily and never asks. Nothing ever asks for v1.1.0's .mod: mid
    is pruned.
    """
    versions = _fixture_versions()
    requires = [(LIB, "v1.2.0")] + [(mv.path, mv.version) for mv in versions if mv.path != LIB]
    consumer = {
        "go.mod": _go_mod("example.com/consumer", requires),
        "main.go": FIXTURE_MAIN,
    }
    return _publish(root, versions, consumer, FIXTURE_OUTPUT)


SYNTH_MODULUS = 1_000_003  # keeps every Value() small, in Go's int and in Python


def _synth_deps(i: int) -> list[int]:
    """A few earlier modules: a DAG about log(count) deep, with shared dependencies."""
    return sorted({i // 2, i // 3, 2 * i // 3} - {i}) if i else []


def synthetic_graph(root: Path, count: int) -> Upstream:
    """``count`` modules example.com/synth/mNNN depending on each other, and a consumer of all."""
    names = [f"m{i:03d}" for i in range(count)]
    paths = [f"example.com/synth/{name}" for name in names]
    values: list[int] = []
    versions = []
    for i, name in enumerate(names):
        deps = _synth_deps(i)
        values.append((i + sum(values[d] for d in deps)) % SYNTH_MODULUS)
        terms = "".join(f" + {names[d]}.Value()" for d in deps)
        body = f"func Value() int {{ return ({i}{terms}) % {SYNTH_MODULUS} }}\n"
        files = {
            "go.mod": _go_mod(paths[i], [(paths[d], "v1.0.0") for d in deps]),
            f"{name}.go": _go_file(name, [f'"{paths[d]}"' for d in deps], body),
        }
        versions.append(ModuleVersion(paths[i], "v1.0.0", files))
    total = sum(values) % SYNTH_MODULUS
    terms = " + ".join([f"{name}.Value()" for name in names] or ["0"])
    body = f'func main() {{ fmt.Println("synth", {count}, ({terms}) % {SYNTH_MODULUS}) }}\n'
    consumer = {
        "go.mod": _go_mod("example.com/consumer", [(p, "v1.0.0") for p in paths]),
        "main.go": _go_file("main", ['"fmt"', *(f'"{p}"' for p in paths)], body),
    }
    return _publish(root, versions, consumer, f"synth {count} {total}\n")
