"""`go build` flags: which change the output, which we pass to `go list`, which we cannot key.

A flag the key cannot describe soundly (it runs other programs, reads files
we do not hash, or only prints) makes ``gocachemgr build`` fall through to a
plain ``go build``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# `go help build`: boolean flags (may be written -flag=true/false).
BOOL_FLAGS = frozenset(
    {
        "a",
        "n",
        "race",
        "msan",
        "asan",
        "cover",
        "v",
        "work",
        "x",
        "linkshared",
        "trimpath",
        "modcacherw",
        "json",
        "buildvcs",
    }
)
VALUE_FLAGS = frozenset(
    {
        "C",
        "o",
        "p",
        "covermode",
        "coverpkg",
        "asmflags",
        "buildmode",
        "compiler",
        "gccgoflags",
        "gcflags",
        "installsuffix",
        "ldflags",
        "mod",
        "modfile",
        "overlay",
        "pgo",
        "pkgdir",
        "tags",
        "toolexec",
    }
)
# Why each of these falls through to plain `go build`:
UNSUPPORTED = {
    "a": "forces a rebuild",
    "n": "prints commands instead of building",
    "x": "prints the commands go runs",
    "work": "keeps go's work dir",
    "json": "asks for go's own event stream",
    "toolexec": "runs an arbitrary program around every tool",
    "overlay": "replaces files with ones named in an overlay file",
    "linkshared": "links against shared libraries outside the key",
    "pkgdir": "reads packages from another directory",
    "C": "changes directory first",
    "modfile": "reads another go.mod",
    "compiler": "selects another compiler",
    "gccgoflags": "only used by gccgo",
    "pgo": "reads a named profile file (off and auto, with default.pgo hashed, are keyed)",
}
# strconv.ParseBool's spellings, as go's flag package accepts them.
_BOOLEANS = {
    "1": "true",
    "t": "true",
    "T": "true",
    "TRUE": "true",
    "True": "true",
    "0": "false",
    "f": "false",
    "F": "false",
    "FALSE": "false",
    "False": "false",
}
NOT_IN_KEY = frozenset({"o", "p", "v"})  # where the output goes, parallelism, verbosity


@dataclass
class BuildArgs:
    flags: list[tuple[str, str]] = field(default_factory=list)  # (name, value) in order
    patterns: list[str] = field(default_factory=list)
    output: str | None = None
    verbose: bool = False
    unsupported: str | None = None  # why the key cannot describe this build

    def flag(self, name: str) -> str | None:
        """The last value given for ``name`` (go's flag package: the last one wins)."""
        values = [v for n, v in self.flags if n == name]
        return values[-1] if values else None

    def key_flags(self) -> list[str]:
        """Flags that can change the output, normalised (``-tags`` sorted, never ``-o``)."""
        out = []
        for name, value in self.flags:
            if name in NOT_IN_KEY:
                continue
            if name == "tags":
                tags = sorted({t for t in value.replace(",", " ").split() if t})
                value = ",".join(tags)
            out.append(f"-{name}={value}")
        return out

    def list_flags(self) -> list[str]:
        """Flags for `go list`: everything that selects packages or files, nothing that writes."""
        return [f"-{n}={v}" for n, v in self.flags if n not in NOT_IN_KEY]


def parse_build_args(args: list[str]) -> BuildArgs:
    """Parse like go's flag package; anything odd is reported via ``unsupported``.

    go itself will then parse the same arguments and print its own error.
    """
    result = BuildArgs()
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            i += 1
            break
        if not arg.startswith("-") or arg == "-":
            break
        name, has_value, value = arg.lstrip("-").partition("=")
        if name in BOOL_FLAGS:
            if not has_value:
                value = "true"
            value = _BOOLEANS.get(value, value)
            if value not in ("true", "false") and not (name == "buildvcs" and value == "auto"):
                result.unsupported = f"-{name}={value} is not a valid boolean"
        elif name in VALUE_FLAGS:
            if not has_value:
                if i + 1 >= len(args):
                    result.unsupported = f"flag -{name} needs a value"
                    return result
                i += 1
                value = args[i]
        else:
            result.unsupported = f"unknown flag -{name}"
            return result
        result.flags.append((name, value))
        i += 1
    result.patterns = args[i:] or ["."]
    result.output = result.flag("o")
    result.verbose = result.flag("v") == "true"
    harmless = {"pgo": ("off", "auto"), "compiler": ("gc",)}
    for name, _ in result.flags:
        value = result.flag(name)
        if name in UNSUPPORTED and value != "false" and value not in harmless.get(name, ()):
            result.unsupported = result.unsupported or f"-{name} {UNSUPPORTED[name]}"
    if any(p.endswith(".go") for p in result.patterns):
        result.unsupported = result.unsupported or "builds from a list of .go files are not keyed"
    return result
