"""The header hash of a Go file: the parts of it that can change the package graph.

``go list`` decides a package's files and imports from each file's *header*
only: build constraints and ``//go:`` directives before the package clause,
the package clause, the import declarations (plus the doc comment of
``import "C"``, whose ``#cgo`` lines become cgo flags), and ``//go:embed``
comments anywhere. A body-only edit keeps this digest, so the cached graph is
reused; any change that can alter ``go list`` output changes it.

Soundness rules (from go/build/read.go, go/parser and
cmd/go/internal/imports/build.go, which this mirrors):

* The header is lexed the way Go's scanner does (comments, strings, raw
  strings, automatic semicolons) and parsed with Go's grammar for the package
  clause and imports. Whatever Go would reject, or whatever this parser is not
  sure to read exactly as Go does, makes the file *unparseable*: then
  ``fallback`` holds the whole content, so every edit changes the digest (a
  broken header stays "changed" until it is fixed, and the fix is noticed).
* Lines are included generously where inclusion only costs a spurious
  ``go list``: every ``//go:`` line comment and every line comment mentioning
  ``+build`` before the package clause (Go honours ``//go:build`` even in the
  package doc comment, and reads ``//go:debug`` there for DefaultGODEBUG),
  and every ``//go:embed`` comment whether or not the file imports "embed".

Remaining approximations, each erring toward a changed digest (a spurious
``go list``), never toward a missed change:

* Texts are kept nearly raw: inner CRs and exact spacing of directive lines
  and embed arguments count although Go normalises some of them away.
* Whole-file fallback also where Go would cope: a NUL anywhere; an
  unterminated literal or comment in the body of a file with a ``//go:embed``
  after the imports; a non-ASCII import alias; a ``//line`` directive in the
  header; an odd character right after the imports.
* Identifier letters are judged by Python's unicodedata, whose Unicode
  version may differ from Go's; the package name is digested and aliases must
  be ASCII, so a disagreement cannot hide an edit.
"""

from __future__ import annotations

import re
import struct
import unicodedata
from dataclasses import dataclass, field
from typing import NamedTuple

import xxhash

HEADER_VERSION = b"gocachemgr-goheader-1"
_LEN = struct.Struct(">Q")
_BOM = b"\xef\xbb\xbf"
_EMBED = b"//go:embed"
_ASCII_SPACE = " \t\r\n\v\f"

_KEYWORDS = frozenset(
    b"break case chan const continue default defer else fallthrough for func go goto if "
    b"import interface map package range return select struct switch type var".split()
)
# Keywords after which Go's scanner inserts a semicolon at a newline, like after a name.
_SEMI_KEYWORDS = frozenset({b"break", b"continue", b"fallthrough", b"return"})

# One lexeme of the header. Ordered so that a comment or literal is taken whole
# before any of its characters could start something else; `bad` catches
# unterminated comments/strings (and rune literals, never valid at top level).
_HEADER_LEXEME = re.compile(
    rb"""
      (?P<ws>[ \t\r]+)
    | (?P<nl>\n)
    | (?P<line>//[^\n]*)
    | (?P<block>/\*(?s:.*?)\*/)
    | (?P<ident>[A-Za-z_\x80-\xff][A-Za-z0-9_\x80-\xff]*)
    | (?P<str>"(?:[^"\\\n]|\\[^\n])*")
    | (?P<raw>`[^`]*`)
    | (?P<punct>[();.])
    | (?P<bad>/\*|["`'])
    | (?P<other>[-+*/%&|^<>=!{}\[\],:~0-9])
    """,
    re.VERBOSE,
)

# The body only needs comments told apart from strings: skip literals and
# block comments whole, report line comments, flag anything unterminated.
_BODY_LEXEME = re.compile(
    rb"""
      (?P<line>//[^\n]*)
    | /\*(?s:.*?)\*/
    | "(?:[^"\\\n]|\\[^\n])*"
    | '(?:[^'\\\n]|\\[^\n])*'
    | `[^`]*`
    | (?P<bad>/\*|["'`])
    """,
    re.VERBOSE,
)

_ESCAPE = re.compile(
    rb'\\(?:([abfnrtv\\"])|([0-7]{3})|x([0-9a-fA-F]{2})|u([0-9a-fA-F]{4})|U([0-9a-fA-F]{8}))'
)
_SIMPLE_ESCAPES = {
    b"a": b"\a",
    b"b": b"\b",
    b"f": b"\f",
    b"n": b"\n",
    b"r": b"\r",
    b"t": b"\t",
    b"v": b"\v",
    b"\\": b"\\",
    b'"': b'"',
}

# Token kinds.
_IDENT, _STRING, _LPAREN, _RPAREN, _SEMI, _PERIOD, _OTHER, _EOF = range(8)


@dataclass(frozen=True)
class GoHeader:
    """What a Go file contributes to ``go list`` output; equal headers, equal graphs."""

    package: str
    # Before the package clause: //go:build, // +build (and every other //go:
    # directive, e.g. //go:debug) line comments, verbatim minus trailing blanks.
    constraints: tuple[str, ...]
    imports: tuple[str, ...]  # unquoted import paths in source order (aliases dropped)
    # Each //go:embed line comment's text after the "//go:embed" prefix, leading
    # blank kept (so "//go:embedx" and "//go:embed x" differ), trailing blanks dropped.
    embeds: tuple[str, ...]
    # Raw source of the doc comment(s) of import "C" (joined by NUL), else None.
    cgo_preamble: str | None
    fallback: bytes | None = field(default=None, repr=False)

    def digest(self) -> bytes:
        """16-byte xxh3-128 over a versioned, length-prefixed encoding of every field."""
        h = xxhash.xxh3_128()

        def put(data: bytes) -> None:
            h.update(_LEN.pack(len(data)))
            h.update(data)

        put(HEADER_VERSION)
        if self.fallback is not None:
            put(b"fallback")
            put(self.fallback)
            return h.digest()
        put(b"package")
        put(_encode(self.package))
        for name, items in (
            (b"constraints", self.constraints),
            (b"imports", self.imports),
            (b"embeds", self.embeds),
        ):
            put(name)
            h.update(_LEN.pack(len(items)))
            for item in items:
                put(_encode(item))
        put(b"cgo")
        if self.cgo_preamble is None:
            h.update(b"\x00")
        else:
            h.update(b"\x01")
            put(_encode(self.cgo_preamble))
        return h.digest()


def parse_header(source: bytes) -> GoHeader:
    """The header of a Go file; never raises (unreadable input → ``fallback``)."""
    source = bytes(source)
    try:
        return _parse(source)
    except Exception:  # _Unparseable, or any surprise: digesting everything is always sound
        return GoHeader("", (), (), (), None, fallback=source)


def _encode(text: str) -> bytes:
    # surrogateescape: embed text from a non-UTF-8 body keeps its exact bytes.
    return text.encode("utf-8", "surrogateescape")


class _Unparseable(Exception):
    """Go would reject the header, or might read it differently than we do."""


class _Tok(NamedTuple):
    kind: int
    start: int
    end: int
    line: int  # line of the first byte (1-based, raw: //line directives do not count)


class _Comment(NamedTuple):
    start: int
    end: int
    line: int
    end_line: int


class _Lexer:
    """Go's scanner, restricted to what a file header can contain.

    ``next()`` returns the next non-comment token, with the comments that came
    before it (since the previous token) in ``comments``; semicolons are
    inserted exactly where Go inserts them, in the same order relative to
    comments, because the parser's doc-comment rule depends on it.
    """

    def __init__(self, src: bytes, pos: int) -> None:
        self.src = src
        self.pos = pos
        self.line = 1
        self.semi = False  # Go's insertSemi: a newline here ends a statement
        self.comments: list[_Comment] = []
        self.all_comments: list[_Comment] = []

    def next(self) -> _Tok:
        src = self.src
        self.comments = []
        while True:
            if self.pos >= len(src):
                if self.semi:
                    self.semi = False
                    return _Tok(_SEMI, self.pos, self.pos, self.line)
                return _Tok(_EOF, self.pos, self.pos, self.line)
            m = _HEADER_LEXEME.match(src, self.pos)
            if m is None:
                raise _Unparseable("illegal character")
            kind = m.lastgroup
            start, end = m.span()
            self.pos = end
            if kind == "ws":
                continue
            if kind == "nl":
                line = self.line
                self.line += 1
                if self.semi:
                    self.semi = False
                    return _Tok(_SEMI, start, end, line)
                continue
            if kind == "line":
                if src[end - 1] == 0x0D:  # like Go, a CRLF line's comment ends before the CR
                    end -= 1
                comment = _Comment(start, end, self.line, self.line)
                self.comments.append(comment)
                self.all_comments.append(comment)
                continue  # a newline (or EOF) follows: the semicolon comes then
            if kind == "block":
                newlines = src.count(b"\n", start, end)
                comment = _Comment(start, end, self.line, self.line + newlines)
                self.comments.append(comment)
                self.all_comments.append(comment)
                line = self.line
                self.line += newlines
                if newlines and self.semi:
                    # Go returns the comment, then a ';' at its first newline.
                    self.semi = False
                    at = src.index(b"\n", start)
                    return _Tok(_SEMI, at, at + 1, line)
                continue
            if kind == "bad":
                raise _Unparseable("unterminated comment or literal")
            line = self.line
            if kind == "ident":
                word = m.group()
                self.semi = word not in _KEYWORDS or word in _SEMI_KEYWORDS
                return _Tok(_IDENT, start, end, line)
            if kind == "str" or kind == "raw":
                self.line += src.count(b"\n", start, end)
                self.semi = True
                return _Tok(_STRING, start, end, line)
            self.semi = False
            if kind == "punct":
                char = src[start]
                if char == 0x28:  # (
                    return _Tok(_LPAREN, start, end, line)
                if char == 0x29:  # )
                    self.semi = True
                    return _Tok(_RPAREN, start, end, line)
                if char == 0x3B:  # ;
                    return _Tok(_SEMI, start, end, line)
                return _Tok(_PERIOD, start, end, line)
            return _Tok(_OTHER, start, end, line)


def _parse(src: bytes) -> GoHeader:
    if b"\x00" in src:
        raise _Unparseable("NUL byte")  # go/build refuses such a file outright
    start = len(_BOM) if src.startswith(_BOM) else 0
    lx = _Lexer(src, start)

    tok = lx.next()
    if tok.kind != _IDENT or src[tok.start : tok.end] != b"package":
        raise _Unparseable("no package clause")
    before_package = lx.all_comments[:]
    name = lx.next()
    if name.kind != _IDENT or src[name.start : name.end] in _KEYWORDS:
        raise _Unparseable("bad package name")
    package = _identifier(src[name.start : name.end])
    prev = lx.next()
    if prev.kind != _SEMI:
        raise _Unparseable("package clause not ended")

    imports: list[str] = []
    preambles: list[str] = []
    tok = lx.next()
    while tok.kind == _IDENT and src[tok.start : tok.end] == b"import":
        decl_doc = _lead_comment(src, prev.line, lx.comments, tok.line)
        tok = lx.next()
        specs: list[tuple[str, str | None]] = []
        if tok.kind == _LPAREN:
            prev = tok
            tok = lx.next()
            while tok.kind != _RPAREN:
                doc = _lead_comment(src, prev.line, lx.comments, tok.line)
                path, tok = _import_spec(lx, tok)
                specs.append((path, doc))
                if tok.kind == _SEMI:
                    prev = tok
                    tok = lx.next()
                elif tok.kind != _RPAREN:
                    raise _Unparseable("import spec not ended")
            tok = lx.next()
        else:
            path, tok = _import_spec(lx, tok)
            specs.append((path, None))
        if tok.kind != _SEMI:
            raise _Unparseable("import declaration not ended")
        prev = tok
        for path, doc in specs:
            imports.append(path)
            if path == "C":  # go/build and cgo: the spec's doc, or the decl's if it is alone
                if doc is None and len(specs) == 1:
                    doc = decl_doc
                if doc is not None:
                    preambles.append(doc)
        tok = lx.next()

    # tok is the first token after the imports (a stray ';' included): go/parser
    # stops there too, having decoded that token and one character past it, so
    # those must be clean as well (else Go reports a syntax error).
    if tok.kind == _IDENT:
        _identifier(src[tok.start : tok.end])
    header_end = tok.start
    checked_end = tok.end
    if checked_end < len(src):
        lead = src[checked_end]
        checked_end += 1 if lead < 0x80 else 2 if lead < 0xE0 else 3 if lead < 0xF0 else 4
    try:
        text = src[start:checked_end].decode("utf-8")
    except UnicodeDecodeError:
        raise _Unparseable("invalid UTF-8 in header") from None
    if "\ufeff" in text:
        raise _Unparseable("byte order mark inside the header")
    if any(src.startswith((b"//line ", b"/*line "), c.start) for c in lx.all_comments):
        # Older go/parsers group comments by //line-adjusted lines: which comment
        # is the cgo preamble could then depend on the directive's text.
        raise _Unparseable("line directive in the header")

    constraints = tuple(
        src[c.start : c.end].decode("utf-8").rstrip(_ASCII_SPACE)
        for c in before_package
        if src.startswith(b"//go:", c.start)
        or (src.startswith(b"//", c.start) and src.find(b"+build", c.start, c.end) >= 0)
    )
    embeds = [
        src[c.start + len(_EMBED) : c.end].decode("utf-8").rstrip(_ASCII_SPACE)
        for c in lx.all_comments
        if src.startswith(_EMBED, c.start)
    ]
    embeds.extend(_body_embeds(src, header_end))
    return GoHeader(
        package=package,
        constraints=constraints,
        imports=tuple(imports),
        embeds=tuple(embeds),
        cgo_preamble="\x00".join(preambles) if preambles else None,
    )


def _import_spec(lx: _Lexer, tok: _Tok) -> tuple[str, _Tok]:
    """``[name | "." ] path``: the unquoted path, and the token after it."""
    src = lx.src
    if tok.kind == _IDENT:
        alias = src[tok.start : tok.end]
        # Aliases are not digested, so one Go would reject must not pass here:
        # ASCII only (no doubt about which Unicode letters Go accepts).
        if alias in _KEYWORDS or not alias.isascii():
            raise _Unparseable("bad import name")
        tok = lx.next()
    elif tok.kind == _PERIOD:
        tok = lx.next()
    if tok.kind != _STRING:
        raise _Unparseable("missing import path")
    return _unquote(src[tok.start : tok.end]), lx.next()


def _identifier(word: bytes) -> str:
    """A Go identifier (letters, digits, '_'; not starting with a digit) or unparseable."""
    if word.isascii():
        return word.decode()
    try:
        text = word.decode("utf-8")
    except UnicodeDecodeError:
        raise _Unparseable("invalid UTF-8 in identifier") from None
    for i, char in enumerate(text):
        if char.isascii():
            continue  # the lexeme pattern only lets [A-Za-z0-9_] through, digits not first
        category = unicodedata.category(char)
        if category[0] == "L" or (i > 0 and category == "Nd"):
            continue
        raise _Unparseable("not an identifier")
    return text


def _unquote(literal: bytes) -> str:
    """The value of a Go string literal, as Go's strconv.Unquote gives it."""
    if literal.startswith(b"`"):
        value = literal[1:-1].replace(b"\r", b"")  # Go drops CRs from raw strings
    else:
        body = literal[1:-1]
        parts: list[bytes] = []
        pos = 0
        while (slash := body.find(b"\\", pos)) >= 0:
            m = _ESCAPE.match(body, slash)
            if m is None:
                raise _Unparseable("bad escape in import path")
            parts.append(body[pos:slash])
            simple, octal, hex2, hex4, hex8 = m.groups()
            if simple is not None:
                parts.append(_SIMPLE_ESCAPES[simple])
            elif octal is not None or hex2 is not None:
                byte = int(octal, 8) if octal is not None else int(hex2, 16)
                if byte > 255:
                    raise _Unparseable("octal escape out of range")
                parts.append(bytes((byte,)))
            else:
                code = int(hex4 or hex8, 16)
                if code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
                    raise _Unparseable("bad code point in escape")
                parts.append(chr(code).encode())
            pos = m.end()
        parts.append(body[pos:])
        value = b"".join(parts)
    return value.decode("utf-8", "surrogateescape")


def _lead_comment(src: bytes, prev_line: int, comments: list[_Comment], line: int) -> str | None:
    """The doc comment go/parser attaches to a token on ``line`` (its ``leadComment``).

    Mirrors parser.next(): comments starting on the previous token's line
    form its line comment (n=0 grouping); the rest are grouped across at most
    one line break; the last group is the doc if it ends on the line right
    before the token.
    """
    i = 0
    n = len(comments)
    if n and comments[0].line == prev_line:
        endline = comments[0].line
        while i < n and comments[i].line <= endline:
            endline = comments[i].end_line
            i += 1
    group: tuple[int, int] | None = None
    endline = -1
    while i < n:
        first = i
        endline = comments[i].line
        while i < n and comments[i].line <= endline + 1:
            endline = comments[i].end_line
            i += 1
        group = (first, i)
    if group is None or endline + 1 != line:
        return None
    return src[comments[group[0]].start : comments[group[1] - 1].end].decode("utf-8")


def _body_embeds(src: bytes, pos: int) -> list[str]:
    """//go:embed line comments after the header, read the way Go's scanner does.

    Skipped whole when the text does not occur at all (nearly every file).
    Strings, raw strings, rune literals and block comments are skipped whole,
    so look-alikes inside them are not taken; anything unterminated makes the
    file unparseable rather than risk missing a directive behind it.
    """
    if src.find(_EMBED, pos) < 0:
        return []
    found: list[str] = []
    for m in _BODY_LEXEME.finditer(src, pos):
        kind = m.lastgroup
        if kind == "line":
            if src.startswith(_EMBED, m.start()):
                rest = src[m.start() + len(_EMBED) : m.end()]
                found.append(rest.decode("utf-8", "surrogateescape").rstrip(_ASCII_SPACE))
        elif kind == "bad":
            raise _Unparseable("unterminated comment or literal after the imports")
    return found
