"""Module path and version rules, as golang.org/x/mod/module and semver define them.

Names under GOMODCACHE/cache/download and in the shared store come from disk
(other nodes, other tools), so they are checked with go's own rules before
they are joined to a directory or trusted as a version.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import cmp_to_key
from typing import Literal, NamedTuple

_ASCII_ALNUM = frozenset("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
_MODULE_CHARS = _ASCII_ALNUM | frozenset("-._~")  # module.modPathOK
# module.fileNameOK, for versions: its non-ASCII letters are refused by escaping anyway.
_FILE_CHARS = _ASCII_ALNUM | frozenset("!#$%&()+,-.=@[]^_{}~ ")
_FIRST_ELEM_CHARS = frozenset("-.0123456789abcdefghijklmnopqrstuvwxyz")  # module.firstPathOK
_BAD_WINDOWS_NAMES = frozenset(
    ["CON", "PRN", "AUX", "NUL"]
    + [f"COM{i}" for i in range(1, 10)]
    + [f"LPT{i}" for i in range(1, 10)]
)
_PSEUDO_VERSION = re.compile(
    r"v[0-9]+\.(0\.0-|[0-9]+\.[0-9]+-([^+]*\.)?0\.)[0-9]{14}-[A-Za-z0-9]+"
    r"(\+[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?"
)


class InvalidModulePath(ValueError):
    """A module path (escaped or not) that go would refuse."""


class InvalidModuleVersion(InvalidModulePath):
    """A version string go would refuse as a file name; one ``except`` catches both."""


def _elem_problem(elem: str, kind: Literal["module", "file"]) -> str | None:
    """Why go's module.checkElem refuses ``elem``, or None."""
    if elem == "":
        return "empty path element"
    if elem.count(".") == len(elem):
        return f"invalid path element {elem!r}"
    if elem[0] == "." and kind == "module":
        return "leading dot in path element"
    if elem[-1] == ".":
        return "trailing dot in path element"
    allowed = _MODULE_CHARS if kind == "module" else _FILE_CHARS
    for ch in elem:
        if ch not in allowed:
            return f"invalid char {ch!r}"
    short = elem.partition(".")[0]
    if short.upper() in _BAD_WINDOWS_NAMES:
        return f"{short!r} disallowed as path element component on Windows"
    tilde = short.rfind("~")
    if kind == "module" and 0 <= tilde < len(short) - 1 and short[tilde + 1 :].isdigit():
        return "trailing tilde and digits in path element"
    return None


def _split_path_version_ok(path: str) -> bool:
    """module.SplitPathVersion's ok: a /vN (or gopkg.in .vN) suffix, if any, is well formed."""
    if path.startswith("gopkg.in/"):
        m = re.fullmatch(r".+(\.v[0-9]*(?:-unstable)?)", path)  # -unstable stays in pathMajor
        return m is not None and len(m[1]) > 2 and (m[1][2] != "0" or m[1] == ".v0")
    m = re.search(r"/v([0-9.]+)\Z", path)
    if m is None:
        return True
    return "." not in m[1] and m[1][0] != "0" and m[1] != "1"


def _module_path_problem(path: str) -> str | None:
    """Why go's module.CheckPath refuses ``path``, or None."""
    if path == "":
        return "empty string"
    if path[0] == "/":
        return "leading slash"
    if path[0] == "-":
        return "leading dash"
    if path[-1] == "/":
        return "trailing slash"
    elems = path.split("/")
    for elem in elems:
        problem = _elem_problem(elem, "module")
        if problem:
            return problem
    if "." not in elems[0]:
        return "missing dot in first path element"
    for ch in elems[0]:
        if ch not in _FIRST_ELEM_CHARS:
            return f"invalid char {ch!r} in first path element"
    if not _split_path_version_ok(path):
        return "invalid version"
    return None


def _escape(s: str) -> str:
    return "".join(f"!{ch.lower()}" if "A" <= ch <= "Z" else ch for ch in s)


def _unescape(escaped: str) -> str:
    """module.unescapeString; ValueError says what is wrong with ``escaped``."""
    out: list[str] = []
    bang = False
    for ch in escaped:
        if not ch.isascii():
            raise ValueError(f"non-ASCII character {ch!r}")
        if bang:
            if not "a" <= ch <= "z":
                raise ValueError("'!' not followed by a lower-case letter")
            out.append(ch.upper())
            bang = False
        elif ch == "!":
            bang = True
        elif "A" <= ch <= "Z":
            raise ValueError(f"upper-case letter {ch!r} (escaped form is '!{ch.lower()}')")
        else:
            out.append(ch)
    if bang:
        raise ValueError("'!' not followed by a lower-case letter")
    return "".join(out)


def escape_path(path: str) -> str:
    """The case-encoded form go uses on disk and in proxy URLs (``Foo`` -> ``!foo``)."""
    problem = _module_path_problem(path)
    if problem:
        raise InvalidModulePath(f"malformed module path {path!r}: {problem}")
    return _escape(path)


def unescape_path(escaped: str) -> str:
    """The module path an escaped name stands for; refuses what go's UnescapePath refuses."""
    try:
        path = _unescape(escaped)
    except ValueError as e:
        raise InvalidModulePath(f"invalid escaped module path {escaped!r}: {e}") from None
    problem = _module_path_problem(path)
    if problem:
        raise InvalidModulePath(f"invalid escaped module path {escaped!r}: {problem}")
    return path


def check_escaped_path(escaped: str) -> None:
    """Refuse an escaped module path read from disk before it is ever joined to a directory.

    A valid one has no empty, '.', '..' or dot-led element, no leading or
    trailing '/', and only characters go writes, so joining it cannot leave
    the directory it is joined to.
    """
    unescape_path(escaped)


def escape_version(version: str) -> str:
    """The case-encoded form of a version, as go names ``<v>.zip`` and friends."""
    problem = "contains '!'" if "!" in version else _elem_problem(version, "file")
    if problem:
        raise InvalidModuleVersion(f"disallowed version string {version!r}: {problem}")
    return _escape(version)


def unescape_version(escaped: str) -> str:
    """The version an escaped file-name stem stands for; refuses what go's UnescapeVersion does."""
    try:
        version = _unescape(escaped)
    except ValueError as e:
        raise InvalidModuleVersion(f"invalid escaped version {escaped!r}: {e}") from None
    problem = _elem_problem(version, "file")
    if problem:
        raise InvalidModuleVersion(f"invalid escaped version {escaped!r}: {problem}")
    return version


class _Semver(NamedTuple):
    major: str
    minor: str
    patch: str
    short: str  # what Canonical appends: ".0.0", ".0" or ""
    prerelease: str
    build: str


_SEMVER = re.compile(
    r"v(?P<major>0|[1-9][0-9]*)"
    r"(?:\.(?P<minor>0|[1-9][0-9]*)"
    r"(?:\.(?P<patch>0|[1-9][0-9]*)"
    r"(?P<pre>-(?:0|[1-9][0-9]*|[0-9]*[A-Za-z-][0-9A-Za-z-]*)"
    r"(?:\.(?:0|[1-9][0-9]*|[0-9]*[A-Za-z-][0-9A-Za-z-]*))*)?"
    r"(?P<build>\+[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?"
    r")?)?"
)


def _parse(v: str) -> _Semver | None:
    """semver.parse: vMAJOR[.MINOR[.PATCH[-pre][+build]]], no leading zeros in numbers."""
    m = _SEMVER.fullmatch(v)
    if m is None:
        return None
    if m["minor"] is None:
        return _Semver(m["major"], "0", "0", ".0.0", "", "")
    if m["patch"] is None:
        return _Semver(m["major"], m["minor"], "0", ".0", "", "")
    return _Semver(m["major"], m["minor"], m["patch"], "", m["pre"] or "", m["build"] or "")


def _canonical(v: str) -> str:
    """module.CanonicalVersion: semver.Canonical, keeping a ``+incompatible`` build suffix."""
    p = _parse(v)
    if p is None:
        return ""
    cv = v[: len(v) - len(p.build)] + p.short
    return cv + "+incompatible" if p.build == "+incompatible" else cv


def is_canonical_version(v: str) -> bool:
    """Whether go would use ``v`` as is (rewriteVersionList drops others from ``list``)."""
    return v != "" and _canonical(v) == v


def is_pseudo_version(v: str) -> bool:
    """module.IsPseudoVersion: a version go made up from a commit, never listed by a proxy."""
    return v.count("-") >= 2 and _parse(v) is not None and _PSEUDO_VERSION.fullmatch(v) is not None


def _compare_int(x: str, y: str) -> int:
    return (len(x) > len(y)) - (len(x) < len(y)) or (x > y) - (x < y)


def _compare_prerelease(x: str, y: str) -> int:
    if x == y:
        return 0
    if x == "":
        return 1
    if y == "":
        return -1
    xs, ys = x[1:].split("."), y[1:].split(".")
    for dx, dy in zip(xs, ys, strict=False):
        if dx == dy:
            continue
        nx, ny = dx.isdigit(), dy.isdigit()
        if nx != ny:
            return -1 if nx else 1
        if nx:
            return _compare_int(dx, dy)
        return -1 if dx < dy else 1
    return -1 if len(xs) < len(ys) else 1


def compare_versions(a: str, b: str) -> int:
    """semver.Compare: -1, 0 or +1; an invalid version is less than every valid one."""
    pa, pb = _parse(a), _parse(b)
    if pa is None or pb is None:
        return (pa is not None) - (pb is not None)
    return (
        _compare_int(pa.major, pb.major)
        or _compare_int(pa.minor, pb.minor)
        or _compare_int(pa.patch, pb.patch)
        or _compare_prerelease(pa.prerelease, pb.prerelease)
    )


def _compare_then_string(a: str, b: str) -> int:
    return compare_versions(a, b) or (a > b) - (a < b)


def semver_sort(versions: Iterable[str]) -> list[str]:
    """semver.Sort: by precedence, equal precedence ("v1" and "v1.0.0") in string order."""
    return sorted(versions, key=cmp_to_key(_compare_then_string))
