"""What the suite builds: real trees (std, cmd/go, the bundled sample) and generated ones.

The generated modules show how the cost grows with the number of packages and
files and with the shape of the import graph: a wide fan-out (one package
importing N independent ones: go compiles them in parallel) and a deep chain
(package i imports package i-1: go compiles them one after another). They import
nothing from std, so their cold builds measure their own packages, not runtime.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

SAMPLE = Path(__file__).resolve().parent.parent / "gocachemgr" / "sample"
SYNTH_MODULE = "example.com/synthbench"


@dataclass(frozen=True)
class Workload:
    """One tree to build; ``packages`` are go build's arguments for the build-cache scenarios.

    Several packages (or std) make go compile and discard: no link, so the
    build-cache scenarios time the cache, not the linker. ``binary`` is the main
    package `gocachemgr build -o` makes for the no-op scenario (None: no binary).
    """

    name: str
    description: str
    packages: tuple[str, ...]
    binary: str | None
    kind: str  # "std" (outside a module), "goroot-cmd", "sample", "wide" or "chain"
    size: tuple[int, int] = (0, 0)  # packages x files per package, generated kinds only

    def prepare(self, parent: Path, go: str, env: Mapping[str, str]) -> Path:
        """Create the tree (if any) under ``parent``; returns the directory go runs in."""
        if self.kind == "goroot-cmd":  # cmd's own module: go builds it from its vendor dir
            goroot = subprocess.run(
                [go, "env", "GOROOT"], env=dict(env), capture_output=True, text=True, check=True
            ).stdout.strip()
            return Path(goroot) / "src" / "cmd"
        cwd = parent / self.name
        if self.kind == "sample":
            shutil.copytree(SAMPLE, cwd)  # go must not write next to the package's sources
        else:
            cwd.mkdir(parents=True)
            if self.kind in ("wide", "chain"):
                write_synthetic(cwd, *self.size, chain=self.kind == "chain")
        return cwd


def synth_file(pkg: int, index: int, dep: str | None) -> str:
    """One generated Go file: a few functions, a type and a method (real work for the compiler)."""
    name = f"p{pkg:03d}"
    imports = f'import dep "{SYNTH_MODULE}/pkg/{dep}"\n\n' if dep else ""
    call = f" + dep.F{dep[1:]}_0(x)" if dep else ""
    return (
        f"package {name}\n\n{imports}"
        f"// F{pkg:03d}_{index} mixes x into a checksum.\n"
        f"func F{pkg:03d}_{index}(x int) int {{\n"
        f"\ts := x\n"
        f"\tfor i := 0; i < {index + 3}; i++ {{\n"
        f"\t\ts = s*31 + i ^ {pkg}\n"
        f"\t\tif s > 1<<40 {{\n\t\t\ts %= 1000003\n\t\t}}\n"
        f"\t}}\n"
        f"\treturn s{call}\n"
        f"}}\n\n"
        f"type T{index} struct {{\n\tA, B int\n\tC    string\n\tD    []float64\n}}\n\n"
        f"func (t T{index}) Sum() float64 {{\n"
        f"\ttotal := float64(t.A + t.B + len(t.C))\n"
        f"\tfor _, d := range t.D {{\n\t\ttotal += d\n\t}}\n"
        f"\treturn total\n"
        f"}}\n"
    )


def write_synthetic(root: Path, packages: int, files: int, *, chain: bool) -> None:
    """``packages`` x ``files`` under pkg/, plus pkg/top and cmd/synth (the binary).

    Wide: top imports every package. Chain: package i imports i-1 (in its first
    file) and top imports the last one.
    """
    root.mkdir(parents=True, exist_ok=True)
    (root / "go.mod").write_text(f"module {SYNTH_MODULE}\n\ngo 1.21\n")
    names = [f"p{i:03d}" for i in range(packages)]
    for i, name in enumerate(names):
        directory = root / "pkg" / name
        directory.mkdir(parents=True)
        dep = names[i - 1] if chain and i else None
        for j in range(files):
            (directory / f"f{j:02d}.go").write_text(synth_file(i, j, dep if j == 0 else None))
    used = names[-1:] if chain else names
    imports = "".join(f'\t"{SYNTH_MODULE}/pkg/{n}"\n' for n in used)
    calls = " + ".join(f"{n}.F{n[1:]}_0(x)" for n in used)
    top = root / "pkg" / "top"
    top.mkdir(parents=True)
    (top / "top.go").write_text(
        f"package top\n\nimport (\n{imports})\n\n// All calls into every package.\n"
        f"func All(x int) int {{ return {calls} }}\n"
    )
    cmd = root / "cmd" / "synth"
    cmd.mkdir(parents=True)
    (cmd / "main.go").write_text(
        f'package main\n\nimport (\n\t"os"\n\n\t"{SYNTH_MODULE}/pkg/top"\n)\n\n'
        f"func main() {{ os.Exit(top.All(len(os.Args)) & 1) }}\n"
    )


def synthetic(kind: str, packages: int, files: int) -> Workload:
    shape = "wide fan-out" if kind == "wide" else "deep chain"
    return Workload(
        name=f"synth-{kind}-{packages}x{files}",
        description=f"generated, {shape}: {packages} packages x {files} files",
        packages=("./pkg/...",),
        binary="./cmd/synth",
        kind=kind,
        size=(packages, files),
    )


STD = Workload("std", "`go build std`", ("std",), None, "std")
CMD_GO = Workload(
    "cmd-go", "`go build cmd/go/...` (no-op: `-o X cmd/go`)", ("cmd/go/...",), "cmd/go",
    "goroot-cmd",
)
SAMPLE_WORKLOAD = Workload(
    "sample", "bundled sample module, `go build ./...`", ("./...",), ".", "sample"
)
WORKLOADS = {
    w.name: w
    for w in (
        STD,
        CMD_GO,
        SAMPLE_WORKLOAD,
        synthetic("wide", 20, 10),
        synthetic("wide", 100, 20),
        synthetic("chain", 50, 5),
    )
}
