"""SQL as tokens, by SQLite's lexical rules: where statements end, which names
a statement spells, and SQL compared without its cosmetics.

The schema engine and access control use it to answer questions SQLite has no
API for; neither parses SQL: SQLite decides what a statement means. Identifier
case is folded for ASCII only, as SQLite does ("K", the Kelvin sign, is not "k").
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

import apsw

_TOKEN = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<comment>--[^\n]*|/\*.*?(?:\*/|\Z))
  | (?P<blob>[xX]'[0-9a-fA-F]*')
  | (?P<string>'(?:[^']|'')*(?:'|\Z))
  | (?P<quoted>"(?:[^"]|"")*(?:"|\Z)|`(?:[^`]|``)*(?:`|\Z)|\[[^\]]*(?:\]|\Z))
  | (?P<number>0[xX][0-9a-fA-F_]+|(?:\d[\d_]*(?:\.[\d_]*)?|\.\d[\d_]*)(?:[eE][+-]?\d+)?)
  | (?P<word>[^\W\d]\w*|[$_\x80-\U0010ffff][\w$\x80-\U0010ffff]*)
  | (?P<variable>[?][0-9]*|[:@$][\w$]+)
  | (?P<op>\|\||<<|>>|<=|>=|==|!=|<>|->>|->|.)
    """,
    re.VERBOSE | re.DOTALL,
)
# Splitting needs only where a `;` cannot end a statement (inside strings, quoted names and
# comments, matched whole), not every token: the regex engine skips the rest without building tokens.
_HIDDEN_OR_END = re.compile(
    r"""'(?:[^']|'')*(?:'|\Z)|"(?:[^"]|"")*(?:"|\Z)|`(?:[^`]|``)*(?:`|\Z)|\[[^\]]*(?:\]|\Z)"""
    r"|--[^\n]*|/\*.*?(?:\*/|\Z)|(?P<end>;)",
    re.DOTALL,
)
# Atomic, as the lexer reads: a comment runs to its first end, never shortened or stretched to make a match.
_BLANK = re.compile(r"(?>\s+|--[^\n]*|/\*.*?(?:\*/|\Z)|;)*", re.DOTALL)
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def fold(name: str) -> str:
    """An identifier as SQLite compares it: ASCII case folded, nothing else."""
    return name.translate(_ASCII_LOWER)


def quote_name(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


@dataclass(frozen=True)
class Token:
    kind: str
    text: str
    start: int
    end: int

    @property
    def norm(self) -> str:
        """The token as SQLite reads it: identifiers unquoted and case-folded."""
        if self.kind == "quoted":
            body = self.text[1:-1]
            body = body.replace(self.text[0] * 2, self.text[0]) if self.text[0] != "[" else body
            return fold(body)
        if self.kind in ("word", "number", "blob"):
            return fold(self.text)
        return self.text

    @property
    def name(self) -> str | None:
        """The identifier this token spells, folded; None if it spells none.

        Single-quoted strings count: SQLite accepts them where a name is expected.
        """
        if self.kind in ("word", "quoted"):
            return self.norm
        if self.kind == "string":
            return fold(self.text[1:-1].replace("''", "'"))
        return None

    def is_word(self, *words: str) -> bool:
        """Whether this is one of `words` (given in lower case), as a bare word."""
        return self.kind == "word" and fold(self.text) in words


def iter_tokens(sql: str) -> Iterator[Token]:
    """The significant tokens of `sql` (no whitespace, no comments)."""
    for match in _TOKEN.finditer(sql):
        kind = match.lastgroup or "op"
        if kind not in ("space", "comment"):
            yield Token(kind, match.group(), match.start(), match.end())


def tokens(sql: str) -> list[Token]:
    return list(iter_tokens(sql))


def split_statements(script: str) -> list[str]:
    """The statements of a script as written, split where SQLite itself would end them
    (a trigger's inner `;` does not); empty statements are dropped."""
    statements, start = [], 0
    for match in _HIDDEN_OR_END.finditer(script):
        if match.lastgroup == "end" and apsw.complete(script[start:match.end()]):
            statements.append(script[start:match.end()])
            start = match.end()
    if script[start:].strip():
        statements.append(script[start:])
    return [statement for statement in statements if not is_blank(statement)]


def is_blank(sql: str) -> bool:
    """Whether `sql` holds no statement: only whitespace, comments and `;`."""
    return _BLANK.fullmatch(sql) is not None
