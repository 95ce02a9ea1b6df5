"""A small SQL tokenizer: just enough to find names in SQL text, never to parse it.

It mirrors SQLite's lexical rules for what matters here: comments, string and
blob literals, the four identifier quotings, and that any non-ASCII character
may be part of an identifier.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import apsw

_TOKEN = re.compile(
    r"""
    (?P<space>[ \t\n\f\r]+)
  | (?P<comment>--[^\n]*|/\*(?:.|\n)*?(?:\*/|\Z))
  | (?P<string>[xX]?'(?:[^']|'')*(?:'|\Z))
  | (?P<quoted>"(?:[^"]|"")*(?:"|\Z)|`(?:[^`]|``)*(?:`|\Z)|\[[^\]]*(?:\]|\Z))
  | (?P<word>[A-Za-z_\x80-\U0010ffff][A-Za-z0-9_$\x80-\U0010ffff]*)
  | (?P<number>0[xX][0-9A-Fa-f_]+|(?:\d[\d_]*(?:\.[\d_]*)?|\.\d[\d_]*)(?:[eE][+-]?\d+)?)
  | (?P<param>[?][0-9]*|[:@$][A-Za-z0-9_$\x80-\U0010ffff]+)
  | (?P<op>.)
    """,
    re.VERBOSE | re.DOTALL,
)


@dataclass(frozen=True)
class Token:
    kind: str
    text: str
    start: int
    end: int

    @property
    def name(self) -> str | None:
        """The identifier this token spells (lower case), or None if it spells none.

        Single-quoted strings count: SQLite accepts them where a name is expected.
        """
        if self.kind == "word":
            return self.text.lower()
        if self.kind == "quoted" and self.text[0] == "[":
            return self.text[1:-1].lower()
        if self.kind == "quoted":
            quote = self.text[0]
            return self.text[1:-1].replace(quote * 2, quote).lower()
        if self.kind == "string" and self.text.startswith("'"):
            return self.text[1:-1].replace("''", "'").lower()
        return None

    def is_keyword(self, *words: str) -> bool:
        return self.kind == "word" and self.text.upper() in words


def tokens(sql: str) -> list[Token]:
    """The significant tokens of `sql` (no whitespace, no comments)."""
    found = []
    for match in _TOKEN.finditer(sql):
        kind = match.lastgroup or "op"
        if kind not in ("space", "comment"):
            found.append(Token(kind, match.group(), match.start(), match.end()))
    return found


def split_statements(script: str) -> list[str]:
    """The statements of a script, split where SQLite itself would end them."""
    statements, start = [], 0
    for token in tokens(script):
        if token.text == ";" and apsw.complete(script[start:token.end]):
            statements.append(script[start:token.end])
            start = token.end
    if script[start:].strip():
        statements.append(script[start:])
    return [statement for statement in statements if _says_something(statement)]


def _says_something(statement: str) -> bool:
    return any(token.text != ";" for token in tokens(statement))


def quote_name(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'
