"""Module path escaping and semver rules, checked against golang.org/x/mod's."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gocachemgr.modules.paths import (
    InvalidModulePath,
    InvalidModuleVersion,
    check_escaped_path,
    compare_versions,
    escape_path,
    escape_version,
    is_canonical_version,
    is_pseudo_version,
    semver_sort,
    unescape_path,
    unescape_version,
)

LOWER = "abcdefghijklmnopqrstuvwxyz"
UPPER = LOWER.upper()

# A module path go accepts: a lower-case dotted host, then elements that
# neither start nor end with a dot (no /vN suffix: those have rules of their own).
_host = st.from_regex(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]+)+", fullmatch=True)
_elem = st.from_regex(r"[A-Za-z0-9_~-]([A-Za-z0-9._~-]*[A-Za-z_-])?", fullmatch=True)
module_paths = st.builds(
    lambda host, elems: "/".join([host, *elems]), _host, st.lists(_elem, max_size=4)
).filter(lambda p: _valid(p))
versions = st.from_regex(r"v[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]*[0-9A-Za-z-])?", fullmatch=True)


def _valid(path: str) -> bool:
    try:
        escape_path(path)
    except InvalidModulePath:
        return False
    return True


@pytest.mark.parametrize(
    ("path", "escaped"),
    [
        ("example.com/lib", "example.com/lib"),
        ("example.com/Upper/Case", "example.com/!upper/!case"),
        ("github.com/BurntSushi/toml", "github.com/!burnt!sushi/toml"),
        ("example.com/x_y~z/v2", "example.com/x_y~z/v2"),
        ("gopkg.in/yaml.v3", "gopkg.in/yaml.v3"),
    ],
)
def test_escape_path_examples(path: str, escaped: str) -> None:
    assert escape_path(path) == escaped
    assert unescape_path(escaped) == path
    check_escaped_path(escaped)


@given(module_paths)
def test_path_round_trip(path: str) -> None:
    escaped = escape_path(path)
    assert not any(c in UPPER for c in escaped)
    assert unescape_path(escaped) == path


@given(st.text(alphabet=LOWER + UPPER + "0123456789-._~!+/@ ", max_size=30))
def test_unescape_then_escape_is_identity(escaped: str) -> None:
    try:
        path = unescape_path(escaped)
    except InvalidModulePath:
        return
    assert escape_path(path) == escaped


@given(versions)
def test_version_round_trip(version: str) -> None:
    escaped = escape_version(version)
    assert not any(c in UPPER for c in escaped)
    assert unescape_version(escaped) == version


def test_version_escaping_examples() -> None:
    assert escape_version("v1.0.0-RC1") == "v1.0.0-!r!c1"
    assert unescape_version("v1.0.0-!r!c1") == "v1.0.0-RC1"
    for bad in ("", ".", "..", "v1!", "v1/2", "v1.0.0.", "v1\n"):
        with pytest.raises(InvalidModuleVersion):
            escape_version(bad)
    for bad in ("v1.0.0-RC1", "v1.0.0-!", "v1.0.0-!1", "..", "a/b"):
        with pytest.raises(InvalidModuleVersion):
            unescape_version(bad)


@pytest.mark.parametrize(
    ("escaped", "problem"),
    [
        ("example.com/../etc", "invalid path element '..'"),
        ("..", "invalid path element '..'"),
        ("example.com/.hidden", "leading dot"),
        ("example.com/./x", "invalid path element '.'"),
        ("example.com//x", "empty path element"),
        ("/example.com/x", "leading slash"),
        ("example.com/x/", "trailing slash"),
        ("", "empty string"),
        ("example.com/Upper", "upper-case letter 'U'"),
        ("example.com/!Upper", "'!' not followed by a lower-case letter"),
        ("example.com/x!", "'!' not followed by a lower-case letter"),
        ("example.com/!1", "'!' not followed by a lower-case letter"),
        ("example.com/a+b", "invalid char '+'"),
        ("example.com/a@v1", "invalid char '@'"),
        ("example.com/a\\b", "invalid char '\\\\'"),
        ("example.com/a b", "invalid char ' '"),
        ("example.com/é", "non-ASCII"),
        ("sumdb", "missing dot in first path element"),
        ("exa_mple.com/x", "invalid char '_' in first path element"),
        ("example.com/x/v1", "invalid version"),
        ("example.com/x/v0", "invalid version"),
        ("example.com/nul", "disallowed as path element component on Windows"),
        ("example.com/x~1", "trailing tilde and digits"),
        ("-example.com/x", "leading dash"),
        ("example.com/x.", "trailing dot"),
    ],
)
def test_check_escaped_path_refuses(escaped: str, problem: str) -> None:
    with pytest.raises(InvalidModulePath) as info:
        check_escaped_path(escaped)
    message = str(info.value)
    assert repr(escaped) in message
    assert problem in message


def test_unescaped_paths_refused_like_go() -> None:
    for bad in ("example.com/a!b", "Example.com/x", "example.com/v01x/v01", "gopkg.in/yaml"):
        with pytest.raises(InvalidModulePath, match="malformed module path"):
            escape_path(bad)


# Ordered by precedence; neighbours with the same canonical form compare equal
# (the list and the rule are those of golang.org/x/mod/semver's own tests).
SEMVER_ORDER: list[tuple[str, str]] = [
    ("bad", ""),
    ("v1-alpha.beta.gamma", ""),
    ("v1-pre", ""),
    ("v1+meta", ""),
    ("v1-pre+meta", ""),
    ("v1.2-pre", ""),
    ("v1.2-pre+meta", ""),
    ("v1.0.0-alpha", "v1.0.0-alpha"),
    ("v1.0.0-alpha.1", "v1.0.0-alpha.1"),
    ("v1.0.0-alpha.beta", "v1.0.0-alpha.beta"),
    ("v1.0.0-beta", "v1.0.0-beta"),
    ("v1.0.0-beta.2", "v1.0.0-beta.2"),
    ("v1.0.0-beta.11", "v1.0.0-beta.11"),
    ("v1.0.0-rc.1", "v1.0.0-rc.1"),
    ("v1", "v1.0.0"),
    ("v1.0", "v1.0.0"),
    ("v1.0.0", "v1.0.0"),
    ("v1.2", "v1.2.0"),
    ("v1.2.0", "v1.2.0"),
    ("v1.2.3-456", "v1.2.3-456"),
    ("v1.2.3-456.789", "v1.2.3-456.789"),
    ("v1.2.3-456-789", "v1.2.3-456-789"),
    ("v1.2.3-456a", "v1.2.3-456a"),
    ("v1.2.3-pre", "v1.2.3-pre"),
    ("v1.2.3-pre+meta", "v1.2.3-pre"),
    ("v1.2.3-pre.1", "v1.2.3-pre.1"),
    ("v1.2.3-zzz", "v1.2.3-zzz"),
    ("v1.2.3", "v1.2.3"),
    ("v1.2.3+meta", "v1.2.3"),
    ("v1.2.3+meta-pre", "v1.2.3"),
    ("v1.2.3+meta-pre.sha.256a", "v1.2.3"),
    ("v1.2.3+incompatible", "v1.2.3"),
    ("v2.0.0", "v2.0.0"),
    ("v10.0.0", "v10.0.0"),
]


def test_compare_versions_matches_semver_order() -> None:
    for i, (a, canon_a) in enumerate(SEMVER_ORDER):
        for j, (b, canon_b) in enumerate(SEMVER_ORDER):
            want = 0 if canon_a == canon_b else (-1 if i < j else 1)
            assert compare_versions(a, b) == want, (a, b)


def test_invalid_versions_sort_first() -> None:
    for bad in ("", "1.2.3", "v01.2.3", "v1.2.3-01", "v1.2.3-", "v1.2.3+", "v1.2.3-a..b", "V1.2.3"):
        assert compare_versions(bad, "v0.0.0") == -1
        assert compare_versions("v0.0.0", bad) == 1


def test_semver_sort_breaks_ties_by_string() -> None:
    assert semver_sort(["v1.0.0", "v1.0", "v1", "v0.9.0", "junk", "v1.0.0-rc.1", "v1.0.0+b"]) == [
        "junk",
        "v0.9.0",
        "v1.0.0-rc.1",
        "v1",
        "v1.0",
        "v1.0.0",
        "v1.0.0+b",
    ]


@given(st.lists(st.sampled_from([v for v, _ in SEMVER_ORDER]), max_size=12))
def test_semver_sort_is_total_and_stable(vs: list[str]) -> None:
    once = semver_sort(vs)
    assert semver_sort(reversed(vs)) == once
    assert all(compare_versions(a, b) <= 0 for a, b in itertools.pairwise(once))


@pytest.mark.parametrize(
    ("version", "canonical"),
    [
        ("v1.2.3", True),
        ("v0.0.0-20240102030405-abcdefabcdef", True),
        ("v1.2.3-pre.1", True),
        ("v2.0.0+incompatible", True),
        ("v2.0.0-rc.1+incompatible", True),
        ("v1.2.3+meta", False),
        ("v1.2", False),
        ("v1", False),
        ("v01.2.3", False),
        ("1.2.3", False),
        ("", False),
    ],
)
def test_is_canonical_version(version: str, canonical: bool) -> None:
    assert is_canonical_version(version) is canonical


@pytest.mark.parametrize(
    ("version", "pseudo"),
    [
        ("v0.0.0-20240102030405-abcdefabcdef", True),  # no earlier tag
        ("v1.2.4-0.20240102030405-abcdefabcdef", True),  # after v1.2.3
        ("v1.2.3-pre.0.20240102030405-abcdefabcdef", True),  # after v1.2.3-pre
        ("v2.0.0-20240102030405-abcdefabcdef+incompatible", True),
        ("v1.2.3", False),
        ("v1.2.3-20240102030405-abcdefabcdef", False),  # a tag-based one needs "-0."
        ("v0.0.0-2024010203040-abcdefabcdef", False),  # 13-digit time
        ("v0.0.0-20240102030405-", False),
        ("v0.0.0-20240102030405-abc\n", False),
    ],
)
def test_is_pseudo_version(version: str, pseudo: bool) -> None:
    assert is_pseudo_version(version) is pseudo
