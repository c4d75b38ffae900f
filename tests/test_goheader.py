"""The Go header hash: unit cases, property tests, and a cross-check against Go itself.

The header digest decides when the cached package graph may be reused, so the
tests aim at soundness: any edit that can change ``go list`` output must change
the digest (checked against Go's own parser, scanner and build-constraint
reader), while body-only edits must keep it (or the cache is useless).
"""

from __future__ import annotations

import base64
import json
import os
import random
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from gocachemgr.keys.goheader import GoHeader, parse_header

# ---------------------------------------------------------------------------
# Unit cases, one construct each.


def header(text: str | bytes) -> GoHeader:
    return parse_header(text.encode() if isinstance(text, str) else text)


def digest(text: str | bytes) -> bytes:
    return header(text).digest()


def test_minimal_file() -> None:
    h = header("package main\n")
    assert h == GoHeader("main", (), (), (), None)
    assert len(h.digest()) == 16
    assert header("package main") == h  # no final newline


def test_package_clause_with_comments_everywhere() -> None:
    h = header("/* a */ package /* b */ main // c\n\nfunc main() {}\n")
    assert (h.package, h.fallback) == ("main", None)
    assert header("package\nmain\n").package == "main"  # no semicolon after the keyword
    assert header("package π\n").package == "π"


def test_bom_and_crlf() -> None:
    src = '//go:build linux\n\npackage p\n\nimport (\n\t"a"\n\t"b"\n)\n\n//go:embed x\nvar v T\n'
    plain = header(src)
    assert plain == GoHeader("p", ("//go:build linux",), ("a", "b"), (" x",), None)
    assert header(b"\xef\xbb\xbf" + src.encode()) == plain
    assert header(src.replace("\n", "\r\n")) == plain
    # A BOM is only allowed first; Go rejects one inside the header.
    assert header(src.replace("package", "\ufeffpackage")).fallback is not None


def test_single_and_aliased_imports() -> None:
    h = header('package p\nimport "fmt"\nimport f2 "fmt/v2"\nimport _ "embed"\nimport . "os"\n')
    assert h.imports == ("fmt", "fmt/v2", "embed", "os")
    assert header('package p; import "a"; import "b"; func f() {}').imports == ("a", "b")


def test_grouped_imports_with_comments_between_specs() -> None:
    src = """package p

import (
\t"a" // trailing
\t// before b
\tb "b"

\t/* block */ _ "c"; . "d"
\t`raw/e`
\t"\\x66\\u00e9\\U0001F600\\101\\t"
)
import ()
import ("g"; "h")
"""
    assert header(src).imports == ("a", "b", "c", "d", "raw/e", "fé😀A\t", "g", "h")


def test_aliases_do_not_matter_but_paths_do() -> None:
    base = digest('package p\nimport x "a/b"\n')
    assert digest('package p\nimport y "a/b"\n') == base
    assert digest('package p\nimport _ "a/b"\n') == base
    assert digest('package p\nimport "a/b"\n') == base
    assert digest('package p\nimport x "a/c"\n') != base
    assert digest('package p\nimport (x "a/b")\n') == base  # grouping is no graph fact


def test_imports_stop_at_first_other_declaration() -> None:
    src = 'package p\nimport "a"\nvar x = 1\nimport "b"\nfunc f() { import_ := 1 }\n'
    assert header(src).imports == ("a",)
    assert header('package p\nimport "a"\nimportant := 1\n').imports == ("a",)
    # go/parser stops at a stray ';' as well (the compiler then rejects the file).
    assert header('package p\nimport "a"; ;\nimport "b"\n').imports == ("a",)


def test_constraints_before_package_only() -> None:
    src = """// Copyright 2024 someone.

//go:build linux && (amd64 || arm64)
// +build linux
//+build amd64
//go:debug panicnil=1

/* //go:build ignore  (inside a block comment: not a constraint) */

// Package p is documented here.
package p

//go:build windows
import "a"
"""
    assert header(src).constraints == (
        "//go:build linux && (amd64 || arm64)",
        "// +build linux",
        "//+build amd64",
        "//go:debug panicnil=1",
    )


def test_go_build_in_package_doc_comment_counts() -> None:
    # cmd/go honours //go:build anywhere in the leading comments, even with no
    # blank line before the package clause; a +build line there is ignored by
    # Go but kept by us (it only costs a spurious `go list`).
    h = header("// Package p.\n//go:build ignore\n// +build ignore\npackage p\n")
    assert h.constraints == ("//go:build ignore", "// +build ignore")


def test_embed_directives_anywhere_outside_literals() -> None:
    src = """package p

import "embed"

//go:embed a.txt b/*.txt
var fs embed.FS

//go:embed "quoted name.txt"
var s string

const x = "//go:embed not-in-string"
var y = `
//go:embed not-in-raw-string
`
var r1, r2 = '"', '`'

/*
//go:embed not-in-block-comment
*/

func f() {
\t_ = 1 //go:embed trailing.txt
\t// go:embed not-a-directive (space)
}
//go:embed
"""
    assert header(src).embeds == (" a.txt b/*.txt", ' "quoted name.txt"', " trailing.txt", "")


def test_embed_look_alikes_differ() -> None:
    assert digest("package p\n//go:embed x\n") != digest("package p\n//go:embedx\n")
    assert digest("package p\n//go:embed x\n") != digest("package p\n//go:embed  x\n")
    assert header("package p\n//go:embed x\r\n").embeds == (" x",)


def test_cgo_preamble_rules() -> None:
    direct = header('package p\n\n// #cgo LDFLAGS: -lm\n// #include <math.h>\nimport "C"\n')
    assert direct.cgo_preamble == "// #cgo LDFLAGS: -lm\n// #include <math.h>"
    assert "C" in direct.imports
    # A blank line detaches the comment; the package clause's line comment is not it.
    assert header('package p\n\n// #include <x.h>\n\nimport "C"\n').cgo_preamble is None
    assert header('package p // #include <x.h>\nimport "C"\n').cgo_preamble is None
    assert header('package p // c\n// #include <x.h>\nimport "C"\n').cgo_preamble == (
        "// #include <x.h>"
    )
    # Block comment preamble.
    assert header('package p\n/*\n#include <x.h>\n*/\nimport "C"\n').cgo_preamble == (
        "/*\n#include <x.h>\n*/"
    )
    # In a group: the spec's own doc; the decl's doc only if "C" is alone.
    grouped = 'package p\n// decl doc\nimport (\n\t"fmt"\n\t// spec doc\n\t"C"\n)\n'
    assert header(grouped).cgo_preamble == "// spec doc"
    alone = 'package p\n// decl doc\nimport (\n\t"C"\n)\n'
    assert header(alone).cgo_preamble == "// decl doc"
    shared = 'package p\n// decl doc\nimport (\n\t"fmt"\n\t"C"\n)\n'
    assert header(shared).cgo_preamble is None
    # No import "C": comments before imports are not a preamble.
    assert header('package p\n// x\nimport "fmt"\n').cgo_preamble is None


def test_cgo_preamble_edits_change_digest() -> None:
    base = 'package p\n\n// #cgo CFLAGS: -DX=1\nimport "C"\n'
    assert digest(base) != digest(base.replace("X=1", "X=2"))
    assert digest(base) != digest(base.replace('import "C"', 'import "fmt"'))


def test_body_edits_keep_digest() -> None:
    base = """//go:build linux

package p

import (
\t"fmt"
\t_ "embed"
)

//go:embed data.txt
var data string

// F prints.
func F() { fmt.Println("hello", data) }
"""
    edited = base.replace('"hello"', '"bye // /* `"').replace(
        "// F prints.", "/* F prints\n * many things. //go:embed nope */"
    ) + "\nfunc G() int { return 'x' }\n"
    assert digest(edited) == digest(base)


def test_header_edits_change_digest() -> None:
    base = '//go:build linux\n\npackage p\n\nimport "fmt"\n\n//go:embed a\nvar v T\n'
    variants = [
        base.replace("package p", "package q"),
        base.replace("linux", "darwin"),
        base.replace("//go:build linux\n", ""),
        base.replace('"fmt"', '"os"'),
        base.replace('import "fmt"', 'import "fmt"\nimport "os"'),
        base.replace('import "fmt"\n', ""),
        base.replace("//go:embed a", "//go:embed b"),
        base.replace("//go:embed a\n", ""),
    ]
    digests = {digest(v) for v in variants}
    assert len(digests) == len(variants) and digest(base) not in digests


@pytest.mark.parametrize(
    "src",
    [
        pytest.param("", id="empty"),
        pytest.param("// just a comment\n", id="no-package"),
        pytest.param("func main() {}\n", id="no-package-clause"),
        pytest.param("package\n", id="no-package-name"),
        pytest.param("package func\n", id="keyword-name"),
        pytest.param("package p p\n", id="junk-after-name"),
        pytest.param("/* unterminated\npackage p\n", id="unterminated-comment-before"),
        pytest.param('package p\nimport "a\n', id="unterminated-string"),
        pytest.param("package p\nimport `a\n", id="unterminated-raw-string"),
        pytest.param('package p\nimport "a" /* open\n', id="unterminated-comment-in-imports"),
        pytest.param('package p\nimport "a"\n/* open\nfunc f() {}\n', id="unterminated-after"),
        pytest.param('package p\nimport "a" "b"\n', id="two-paths"),
        pytest.param('package p\nimport ("a" "b")\n', id="two-paths-in-group"),
        pytest.param('package p\nimport func "a"\n', id="keyword-alias"),
        pytest.param('package p\nimport "\\q"\n', id="bad-escape"),
        pytest.param('package p\nimport "\\400"\n', id="octal-out-of-range"),
        pytest.param("package p\nimport\n", id="missing-path"),
        pytest.param('package p\nimport (\n"a"\n', id="unclosed-group"),
        pytest.param('package p\nimport "a",\n', id="comma"),
        pytest.param(b'package p\n// caf\xe9\nimport "a"\n', id="invalid-utf8-comment"),
        pytest.param(b"package p\x00\n", id="nul"),
        pytest.param(b"package p\nfunc f() { s := \"\x00\" }\n", id="nul-in-body"),
        pytest.param(b"package p\n\x0cimport \"a\"\n", id="form-feed"),
        pytest.param("package p\n@\n", id="illegal-char-after-imports"),
        pytest.param('package p\n//line x.go:1\n// #include <x.h>\nimport "C"\n', id="line-dir"),
        pytest.param("package p\n\u00a0import \"a\"\n", id="nbsp"),
        pytest.param("package p\nimport a\u00b7b \"a\"\n", id="bad-alias-char"),
    ],
)
def test_unparseable_input_falls_back_to_whole_file(src: str | bytes) -> None:
    raw = src.encode() if isinstance(src, str) else src
    h = parse_header(raw)
    assert h.fallback == raw
    assert parse_header(raw + b"\n// any edit\n").digest() != h.digest()


def test_unterminated_literal_in_body_only_matters_with_embeds() -> None:
    assert header('package p\nfunc f() { s := "open\n}\n').fallback is None
    assert header('package p\nfunc f() { s := "open\n}\n//go:embed x\n').fallback is not None


def test_comments_right_after_imports_belong_to_the_header() -> None:
    # go/build hands go/parser everything up to the first declaration, so a
    # broken comment there is a Go syntax error, even though its text is not
    # digested: such a file falls back.
    assert header('package p\nimport "a"\n// ok\nfunc f() {}\n').fallback is None
    assert header('package p\nimport "a"\n// \ufeff\nfunc f() {}\n').fallback is not None
    assert header(b'package p\nimport "a"\n// \xff\nfunc f() {}\n').fallback is not None
    assert header(b'package p\nimport "a"\nfunc f() {}\n// \xff\n').fallback is None


def test_invalid_utf8_in_body_is_fine() -> None:
    h = header(b'package p\nimport "a"\nvar s = "\xff"\n//go:embed \xfe\n')
    assert h.fallback is None and h.imports == ("a",)
    assert h.embeds == (" \udcfe",)  # exact bytes kept (surrogateescape)
    assert len(h.digest()) == 16


def test_fallback_digest_differs_from_parsed_digest() -> None:
    parsed = GoHeader("p", (), (), (), None)
    assert parsed.digest() != GoHeader("", (), (), (), None, fallback=b"package p\n").digest()
    assert GoHeader("", (), (), (), None, fallback=b"").digest() != GoHeader(
        "", (), (), (), None
    ).digest()


def test_digest_encoding_is_unambiguous() -> None:
    a = GoHeader("p", (), ("ab", "c"), (), None)
    b = GoHeader("p", (), ("a", "bc"), (), None)
    c = GoHeader("p", ("ab",), ("c",), (), None)
    d = GoHeader("p", (), ("ab", "c"), (), "")
    assert len({x.digest() for x in (a, b, c, d)}) == 4


@given(st.binary(max_size=300))
@settings(max_examples=300, deadline=None)
def test_never_raises_on_arbitrary_bytes(data: bytes) -> None:
    h = parse_header(data)
    assert len(h.digest()) == 16
    h2 = parse_header(b"package p\nimport (\n" + data)
    assert len(h2.digest()) == 16


# ---------------------------------------------------------------------------
# Property tests: files generated from parts.

# Small alphabets keep generation cheap; no Go keyword can be spelt from these letters.
idents = st.builds(
    str.__add__, st.sampled_from("abcdxyz_"), st.text("abcdxyz0129_", max_size=5)
)
tags = st.builds(str.__add__, st.sampled_from("abcxyz"), st.text("abcxyz019_.", max_size=5))
import_paths = st.lists(
    st.text("abcxyz019._-~", min_size=1, max_size=5), min_size=1, max_size=3
).map("/".join)
constraint_lines = st.one_of(
    st.lists(tags, min_size=1, max_size=3).map(lambda t: "//go:build " + " && ".join(t)),
    st.lists(tags, min_size=1, max_size=3).map(lambda t: "// +build " + ",".join(t)),
    st.tuples(idents, st.integers(0, 9)).map(lambda kv: f"//go:debug {kv[0]}={kv[1]}"),
)
embed_args = st.lists(st.text("abcXYZ09_.*/-", min_size=1, max_size=8), min_size=1, max_size=3).map(
    " ".join
)
# Text for comments and literals, full of look-alikes, that cannot close them early.
free_text = (
    st.lists(
        st.sampled_from(
            ["a", " ", "\t", "/", "*", '"', "'", "\\", "é", "π", "//go:embed x", "/*", "//",
             "+build y", "//go:build z", "package q", 'import "z"', "(", ")", ";"]
        ),
        max_size=8,
    )
    .map("".join)
    .map(lambda s: s.replace("*/", "* /"))
)
cgo_lines = st.builds(
    "// #cgo CFLAGS: -D{}={}".format, st.sampled_from("ABXY"), st.integers(0, 99)
) | st.builds("// #include <{}.h>".format, idents)


@dataclass(frozen=True)
class Spec:
    alias: str | None  # None, an identifier, "_" or "."
    path: str
    quote: str  # '"' or '`'


@dataclass(frozen=True)
class Parts:
    package: str
    constraints: tuple[str, ...]
    decls: tuple[tuple[bool, tuple[Spec, ...]], ...]  # (grouped, specs)
    embeds: tuple[str, ...]
    preamble: tuple[str, ...]  # lines of a // comment right before a lone `import "C"`

    def header(self) -> GoHeader:
        imports = tuple(spec.path for _, specs in self.decls for spec in specs)
        if self.preamble:
            imports += ("C",)
        return GoHeader(
            self.package,
            self.constraints,
            imports,
            tuple(" " + e for e in self.embeds),
            "\n".join(self.preamble) if self.preamble else None,
        )


specs = st.builds(
    Spec,
    alias=st.one_of(st.none(), idents, st.just("_"), st.just(".")),
    path=import_paths,
    quote=st.sampled_from(['"', "`"]),
)
parts_strategy = st.builds(
    Parts,
    package=idents,
    constraints=st.lists(constraint_lines, max_size=3).map(tuple),
    decls=st.lists(
        st.tuples(st.booleans(), st.lists(specs, min_size=1, max_size=3).map(tuple)), max_size=3
    ).map(tuple),
    embeds=st.lists(embed_args, max_size=3).map(tuple),
    preamble=st.lists(cgo_lines, max_size=2).map(tuple),
)


@st.composite
def bodies(draw: st.DrawFn) -> list[str]:
    """Declarations after the imports: literals and comments full of look-alikes."""
    out = []
    for i in range(draw(st.integers(0, 4))):
        text = draw(free_text)
        kind = draw(st.sampled_from(["str", "raw", "line", "block", "rune", "func"]))
        if kind == "str":
            quoted = text.replace("\\", "\\\\").replace('"', '\\"')
            out.append(f'var s{i} = "{quoted} //go:embed fake /* x"')
        elif kind == "raw":
            out.append(f"var r{i} = `\n//go:embed fake\n{text} /*`")
        elif kind == "line":
            out.append(f"// {text}")
        elif kind == "block":
            out.append(f"/* {text}\n//go:embed fake\n*/")
        elif kind == "rune":
            out.append(f"var c{i} = []rune{{'\"', '`', '\\''}}")
        else:
            quoted = text.replace("\\", "\\\\").replace('"', '\\"')
            out.append(f'func f{i}() string {{\n\treturn "{quoted}" // {text}\n}}')
    return out


def render(parts: Parts, body: list[str]) -> str:
    lines = ["// Generated file; the header comes next.", ""]
    if parts.constraints:
        lines += [*parts.constraints, ""]
    lines += ["// Package doc.", f"package {parts.package}", ""]
    for grouped, group in parts.decls:
        rendered = []
        for spec in group:
            alias = f"{spec.alias} " if spec.alias else ""
            rendered.append(f"{alias}{spec.quote}{spec.path}{spec.quote}")
        if grouped:
            lines += ["import (", *(f"\t{r} // why" for r in rendered), ")"]
        else:
            lines += [f"import {r}" for r in rendered]
    if parts.preamble:
        lines += ["", *parts.preamble, 'import "C"']
    lines.append("")
    for i, pattern in enumerate(parts.embeds):
        lines += [f"//go:embed {pattern}", f"var e{i} embed.FS", ""]
    lines += body
    return "\n".join(lines) + "\n"


@given(parts_strategy, bodies(), st.booleans())
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_parse_recovers_generated_parts(parts: Parts, body: list[str], crlf: bool) -> None:
    text = render(parts, body)
    expected = parts.header()
    if crlf:
        text = text.replace("\n", "\r\n")
        if expected.cgo_preamble is not None:  # the preamble is raw source: CRs stay
            expected = replace(expected, cgo_preamble=expected.cgo_preamble.replace("\n", "\r\n"))
    assert parse_header(text.encode()) == expected


@given(parts_strategy, bodies(), bodies())
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_body_only_mutation_keeps_digest(parts: Parts, body1: list[str], body2: list[str]) -> None:
    assert digest(render(parts, body1)) == digest(render(parts, body2))


@st.composite
def header_mutations(draw: st.DrawFn) -> tuple[Parts, Parts]:
    """A file's parts and the same parts with exactly one header fact changed."""
    parts = draw(parts_strategy)
    field_name = draw(st.sampled_from(["package", "constraints", "imports", "embeds", "preamble"]))
    if field_name == "package":
        new = draw(idents.filter(lambda s: s != parts.package))
        return parts, replace(parts, package=new)
    if field_name == "imports":
        flat = [(d, s) for d, (_, group) in enumerate(parts.decls) for s in range(len(group))]
        op = draw(st.sampled_from(["add", "remove", "change"] if flat else ["add"]))
        decls = [list(group) for _, group in parts.decls]
        if op == "add":
            decls.append([draw(specs)])
        else:
            d, s = draw(st.sampled_from(flat))
            if op == "remove":
                del decls[d][s]
            else:
                old = decls[d][s]
                decls[d][s] = replace(old, path=draw(import_paths.filter(lambda p: p != old.path)))
        grouped = [g for g, _ in parts.decls] + [False]
        new_decls = tuple((grouped[i], tuple(g)) for i, g in enumerate(decls) if g)
        return parts, replace(parts, decls=new_decls)
    strategy = {
        "constraints": constraint_lines,
        "embeds": embed_args,
        "preamble": cgo_lines,
    }[field_name]
    items = list(getattr(parts, field_name))
    op = draw(st.sampled_from(["add", "remove", "change"] if items else ["add"]))
    if op == "add":
        items.insert(draw(st.integers(0, len(items))), draw(strategy))
    else:
        i = draw(st.integers(0, len(items) - 1))
        if op == "remove":
            del items[i]
        else:
            items[i] = draw(strategy.filter(lambda v: v != items[i]))
    return parts, replace(parts, **{field_name: tuple(items)})


@given(header_mutations(), bodies())
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_header_mutation_changes_digest(pair: tuple[Parts, Parts], body: list[str]) -> None:
    before, after = pair
    assume(before.header() != after.header())  # e.g. removing one of two equal lines
    assert digest(render(before, body)) != digest(render(after, body))


# ---------------------------------------------------------------------------
# Cross-check against the real Go toolchain.

# Reports, per file, what Go itself reads from it: go/parser (ImportsOnly, as
# go/build's readGoInfo) for the package name, imports, import "C" doc comments
# and //go: directives; go/scanner over the whole file for //go:embed comments
# (as readGoInfo does); and cmd/go's own build-constraint header reader
# (parseFileHeader and the +build loop of ShouldBuild, adapted from
# cmd/go/internal/imports/build.go, BSD licence) for //go:build and +build lines.
GO_HELPER = r"""
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"go/ast"
	"go/build/constraint"
	"go/parser"
	"go/scanner"
	"go/token"
	"os"
	"strconv"
	"strings"
)

type result struct {
	Err        *string  `json:"err"`
	Name       string   `json:"name"`
	Imports    []string `json:"imports"`
	Cgo        [][2]int `json:"cgo"`
	Directives []string `json:"directives"`
	Embeds     [][]byte `json:"embeds"` // as base64: exact bytes
	GoBuild    []string `json:"go_build"`
	PlusBuild  []string `json:"plus_build"`
}

func main() {
	in := bufio.NewScanner(os.Stdin)
	out := json.NewEncoder(os.Stdout)
	for in.Scan() {
		src, err := os.ReadFile(in.Text())
		if err != nil {
			panic(err)
		}
		out.Encode(analyze(in.Text(), src))
	}
}

func analyze(path string, src []byte) result {
	r := result{Imports: []string{}, Cgo: [][2]int{}, Directives: []string{}, Embeds: [][]byte{},
		GoBuild: []string{}, PlusBuild: []string{}}
	fail := func(msg string) {
		if r.Err == nil {
			r.Err = &msg
		}
	}
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, path, src, parser.ImportsOnly|parser.ParseComments)
	if err != nil {
		fail(err.Error())
	}
	if f != nil && f.Name != nil {
		r.Name = f.Name.Name
		offset := func(p token.Pos) int { return fset.Position(p).Offset }
		for _, decl := range f.Decls {
			d, ok := decl.(*ast.GenDecl)
			if !ok {
				continue
			}
			for _, spec := range d.Specs {
				s := spec.(*ast.ImportSpec)
				p, err := strconv.Unquote(s.Path.Value)
				if err != nil {
					fail("unquote: " + s.Path.Value)
				}
				r.Imports = append(r.Imports, p)
				if p == "C" {
					doc := s.Doc
					if doc == nil && len(d.Specs) == 1 {
						doc = d.Doc
					}
					if doc != nil {
						last := doc.List[len(doc.List)-1]
						r.Cgo = append(r.Cgo, [2]int{offset(doc.Pos()), offset(last.Slash)})
					}
				}
			}
		}
		for _, g := range f.Comments {
			if g.Pos() >= f.Package {
				break
			}
			for _, c := range g.List {
				if strings.HasPrefix(c.Text, "//go:") {
					r.Directives = append(r.Directives, c.Text)
				}
			}
		}
	}

	var sc scanner.Scanner
	sc.Init(token.NewFileSet().AddFile(path, -1, len(src)), src, nil, scanner.ScanComments)
	for {
		_, tok, lit := sc.Scan()
		if tok == token.EOF {
			break
		}
		if tok == token.COMMENT && strings.HasPrefix(lit, "//go:embed") {
			r.Embeds = append(r.Embeds, []byte(lit[len("//go:embed"):]))
		}
	}

	trimmed, goBuild := parseFileHeader(src)
	r.GoBuild = goBuild
	for _, line := range bytes.Split(trimmed, []byte("\n")) {
		line = bytes.TrimSpace(line)
		if bytes.HasPrefix(line, []byte("//")) && bytes.Contains(line, []byte("+build")) &&
			constraint.IsPlusBuild(string(line)) {
			r.PlusBuild = append(r.PlusBuild, string(line))
		}
	}
	return r
}

func isGoBuildComment(line []byte) bool {
	if !bytes.HasPrefix(line, []byte("//go:build")) {
		return false
	}
	line = bytes.TrimSpace(line)
	rest := line[len("//go:build"):]
	return len(rest) == 0 || len(bytes.TrimSpace(rest)) < len(rest)
}

// parseFileHeader as in cmd/go, except that it collects every //go:build line
// instead of failing on the second one.
func parseFileHeader(content []byte) (trimmed []byte, goBuild []string) {
	goBuild = []string{}
	end := 0
	p := content
	ended := false
	inSlashStar := false
Lines:
	for len(p) > 0 {
		line := p
		if i := bytes.IndexByte(line, '\n'); i >= 0 {
			line, p = line[:i], p[i+1:]
		} else {
			p = p[len(p):]
		}
		line = bytes.TrimSpace(line)
		if len(line) == 0 && !ended {
			end = len(content) - len(p)
			continue Lines
		}
		if !bytes.HasPrefix(line, []byte("//")) {
			ended = true
		}
		if !inSlashStar && isGoBuildComment(line) {
			goBuild = append(goBuild, string(line))
		}
	Comments:
		for len(line) > 0 {
			if inSlashStar {
				if i := bytes.Index(line, []byte("*/")); i >= 0 {
					inSlashStar = false
					line = bytes.TrimSpace(line[i+len("*/"):])
					continue Comments
				}
				continue Lines
			}
			if bytes.HasPrefix(line, []byte("//")) {
				continue Lines
			}
			if bytes.HasPrefix(line, []byte("/*")) {
				inSlashStar = true
				line = bytes.TrimSpace(line[len("/*"):])
				continue Comments
			}
			break Lines
		}
	}
	return content[:end], goBuild
}
"""


@pytest.fixture(scope="session")
def go_env(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, dict[str, str]]:
    """The real go binary and a hermetic environment for it (temp caches, no network)."""
    from gocachemgr.config import Config
    from gocachemgr.toolchain import find_go

    try:
        go = find_go(Config.load())
    except Exception as exc:
        pytest.skip(f"no go toolchain: {exc}")
    home = tmp_path_factory.mktemp("gohome")
    env = {
        "PATH": os.environ.get("PATH", os.defpath),
        "HOME": str(home),
        "GOCACHE": str(home / "cache"),
        "GOPATH": str(home / "gopath"),
        "GOENV": "off",
        "GOFLAGS": "-mod=mod",
        "GOPROXY": "off",
        "GOTOOLCHAIN": "local",
        "GO111MODULE": "on",
        "CGO_ENABLED": "0",
    }
    return go, env


@pytest.fixture(scope="session")
def go_reader(
    go_env: tuple[str, dict[str, str]], tmp_path_factory: pytest.TempPathFactory
) -> Callable[[list[Path]], list[dict[str, Any]]]:
    """Builds GO_HELPER once; returns a function mapping files to Go's view of them."""
    go, env = go_env
    src = tmp_path_factory.mktemp("gohelper")
    (src / "go.mod").write_text("module goheadercheck\n\ngo 1.21\n")
    (src / "main.go").write_text(GO_HELPER)
    # -N -l: an unoptimised build compiles a quarter faster; speed of the helper is moot.
    subprocess.run([go, "build", "-gcflags=all=-N -l", "-ldflags=-s -w", "-o", "helper", "."],
                   cwd=src, env=env, check=True, capture_output=True, timeout=300)

    def read(paths: list[Path]) -> list[dict[str, Any]]:
        proc = subprocess.run([str(src / "helper")], input="".join(f"{p}\n" for p in paths),
                              capture_output=True, text=True, check=True, timeout=300)
        results = [json.loads(line) for line in proc.stdout.splitlines()]
        assert len(results) == len(paths)
        return results

    return read


def mismatches(path: Path, ours: GoHeader, go: dict[str, Any]) -> Iterator[str]:
    """Every way our header disagrees with Go's reading of the same file."""
    src = path.read_bytes()
    if go["err"] is not None:
        if ours.fallback is None:
            yield f"{path}: Go cannot parse it ({go['err']}) but we did not fall back"
        return
    if ours.fallback is not None:
        yield f"{path}: we fell back but Go parses it"
        return
    if ours.package != go["name"]:
        yield f"{path}: package {ours.package!r} != {go['name']!r}"
    if list(ours.imports) != go["imports"]:
        yield f"{path}: imports {ours.imports} != {go['imports']}"
    preambles = []
    for first, last in go["cgo"]:
        end = src.index(b"*/", last) + 2 if src.startswith(b"/*", last) else src.find(b"\n", last)
        end = len(src) if end < 0 else end
        preambles.append(src[first:end].decode().removesuffix("\r"))
    want_preamble = "\x00".join(preambles) if preambles else None
    if ours.cgo_preamble != want_preamble:
        yield f"{path}: cgo preamble {ours.cgo_preamble!r} != {want_preamble!r}"
    # Go drops every CR from a comment's text; we keep inner ones (more, never less).
    our_embeds = [e.encode("utf-8", "surrogateescape").replace(b"\r", b"") for e in ours.embeds]
    go_embeds = [base64.b64decode(e).rstrip(b" \t\v\f") for e in go["embeds"]]
    if our_embeds != go_embeds:
        yield f"{path}: embeds {our_embeds} != {go_embeds}"
    constraints = {c.replace("\r", "").rstrip() for c in ours.constraints}
    for line in go["directives"] + go["go_build"] + go["plus_build"]:
        if line.replace("\r", "").rstrip() not in constraints:
            yield f"{path}: Go reads {line!r} before the package clause; we missed it"


def test_matches_go_on_goroot_net_and_os(
    go_env: tuple[str, dict[str, str]], go_reader: Callable[[list[Path]], list[dict[str, Any]]]
) -> None:
    go, env = go_env
    goroot = Path(subprocess.run([go, "env", "GOROOT"], env=env, capture_output=True,
                                 text=True, check=True).stdout.strip())
    paths = sorted(p for d in ("net", "os") for p in (goroot / "src" / d).rglob("*.go"))
    assert len(paths) > 300
    problems = []
    for path, go_view in zip(paths, go_reader(paths), strict=True):
        problems += mismatches(path, parse_header(path.read_bytes()), go_view)
    assert not problems, "\n".join(problems[:20])
    # The corpus does exercise the interesting parts.
    headers = [parse_header(p.read_bytes()) for p in paths]
    assert sum(h.cgo_preamble is not None for h in headers) >= 5
    assert sum(bool(h.constraints) for h in headers) >= 50


PRE_PACKAGE = [
    "\n", "// Copyright 2024.\n", "//go:build zzoff\n", "//go:build linux || zzoff\n",
    "// +build zzoff\n", "//+build zzoff,linux\n", "\t// +build zzoff\n", "//go:debug panicnil=1\n",
    "/* block //go:build zzoff */\n", "/*\n//go:build zzoff\n*/\n", "/* a */ //go:build zzoff\n",
    "  //go:build zzoff\n", "//go:buildzz\n", "// Package p does things.\n", "/* x */\n",
    "//go:generate echo\n", "//go:embed early.txt\n",
]
IMPORT_PATHS = ['"fmt"', "`os`", '"a/b"', '"x.com/y/v2"', '"\\x41\\u00e9"', '"C"', '"C"', '"embed"']
GAPS = [
    " ", " ", " ", "\n", "\n", "\n\n", "\t/* c */ ", " // c\n", "\n// c\n",
    "\n// #cgo LDFLAGS: -lm\n", "/* #include <x.h>\n*/", "\n/* c */\n", "; ", ";\n",
]
BODY = [
    "func f() {}\n", 'var s = "//go:embed no /*"\n', "var r = `\n//go:embed no\n`\n",
    "/*\n//go:embed no\n*/\n", "//go:embed yes.txt\nvar e embed.FS\n",
    "var x = 1 //go:embed tail\n",
    "var c = '\"'\n", "// go:embed no\n", "//go:embedno\n", "type T struct{}\n",
    'const k = `a` + "b" // c\n',
]
CORRUPTIONS = [
    b'"', b"`", b"/*", b"@", b"\x0c", b"\xff", b";", b"\n", b" ", b"import ", b"'", b"*/", b"//",
    b"\xef\xbb\xbf", b"\x00", b"(", b")", b"_", b"func",
]


def random_go_file(rng: random.Random) -> tuple[bytes, bool]:
    """A Go file with a randomly laid out (sometimes corrupted) header; and whether corrupted."""

    def gap() -> str:
        return rng.choice(GAPS)

    text = "".join(rng.choice(PRE_PACKAGE) for _ in range(rng.randint(0, 5)))
    text += rng.choice(["package p\n", "package p // c\n", "package /* x */ p;\n", "package\np\n",
                        "package main; "])
    for _ in range(rng.randint(0, 4)):
        def spec() -> str:
            alias = rng.choice(["", "", "al ", "_ ", ". "])
            return alias + gap().replace("\n", " ") * rng.randint(0, 1) + rng.choice(IMPORT_PATHS)

        if rng.random() < 0.5:
            text += gap() + "import " + spec()
        else:
            specs = [spec() for _ in range(rng.randint(0, 3))]
            text += gap() + "import" + gap() + "(" + gap()
            ends = ["\n", ";", "; ", " // c\n", "\n\n"]
            text += "".join(s + rng.choice(ends) + gap() for s in specs)
            text += ")"
        text += rng.choice(["\n", "\n", ";\n", " // c\n", "\n\n", "\r\n", ";"])
    text += "\n" + "".join(rng.choice(BODY) for _ in range(rng.randint(0, 4)))
    if rng.random() < 0.15:
        text = text.replace("\n", "\r\n")
    data = text.encode()
    if rng.random() < 0.1:
        data = b"\xef\xbb\xbf" + data
    corrupted = rng.random() < 0.3
    if corrupted:
        at = rng.randrange(len(data))
        if rng.random() < 0.3:
            data = data[:at] + data[at + 1 :]
        else:
            data = data[:at] + rng.choice(CORRUPTIONS) + data[at:]
    return data, corrupted


def test_matches_go_on_random_headers(
    tmp_path: Path, go_reader: Callable[[list[Path]], list[dict[str, Any]]]
) -> None:
    """Random layouts of comments, blank lines, semicolons, CRLF, BOM and corruptions.

    Whenever Go cannot parse a header we must fall back; whenever we do not
    fall back we must read exactly what Go reads. Falling back on a file Go
    accepts is allowed (it only costs a `go list`) but must stay rare.
    """
    rng = random.Random(20240611)
    paths, corrupted = [], []
    for i in range(1500):
        data, bad = random_go_file(rng)
        path = tmp_path / f"f{i:04}.go"
        path.write_bytes(data)
        paths.append(path)
        corrupted.append(bad)
    problems, spurious, go_errors = [], [], 0
    for path, bad, go_view in zip(paths, corrupted, go_reader(paths), strict=True):
        go_errors += go_view["err"] is not None
        for problem in mismatches(path, parse_header(path.read_bytes()), go_view):
            (spurious if problem.endswith("we fell back but Go parses it") else problems).append(
                (problem, bad)
            )
    assert not problems, "\n".join(p for p, _ in problems[:20])
    assert not [p for p, bad in spurious if not bad], spurious[:10]
    assert len(spurious) < 0.05 * len(paths), spurious[:10]
    assert 0.2 * len(paths) < go_errors < 0.8 * len(paths)  # both sides are exercised


def test_go_list_reads_what_we_digest(tmp_path: Path, go_env: tuple[str, dict[str, str]]) -> None:
    """The real go command honours the lines we keep beyond the brief's letter.

    //go:build in the package doc comment (no blank line) excludes a file, and
    //go:debug before the package clause changes `go list` output
    (DefaultGODEBUG); both are in our constraints. A +build line there is
    ignored by Go; we keep it anyway (harmless: a spurious `go list`).
    """
    go, env = go_env
    files = {
        "go.mod": "module example.com/m\n\ngo 1.21\n",
        "main.go": "//go:debug panicnil=1\n\npackage main\n\nfunc main() {}\n",
        "a.go": "// Package main.\n//go:build zzoff\npackage main\n",
        "c.go": "// Package main.\n// +build zzoff\npackage main\n",
    }
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    out = subprocess.run(
        [go, "list", "-f", "{{.GoFiles}} {{.IgnoredGoFiles}} {{.DefaultGODEBUG}}", "."],
        cwd=tmp_path, env=env, capture_output=True, text=True, check=True, timeout=120,
    ).stdout.split()
    assert out[:3] == ["[c.go", "main.go]", "[a.go]"]
    assert "panicnil=1" in out[3]
    assert parse_header(files["a.go"].encode()).constraints == ("//go:build zzoff",)
    assert parse_header(files["c.go"].encode()).constraints == ("// +build zzoff",)
    assert parse_header(files["main.go"].encode()).constraints == ("//go:debug panicnil=1",)
