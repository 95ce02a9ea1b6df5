"""Whether a statement's own expressions are leakproof: safe to run on rows its filters hide.

PostgreSQL's row-level security lets the planner run only leakproof operators
before a policy; SQLite has no such notion, so Loot decides per statement, on
its tokens, whether it may read through the index-friendly views (where SQLite
may evaluate the statement's terms on hidden rows, even on index entries
before it reads the filtered column) or must read through the barrier views
(install.py). Leakproof means: it cannot raise an error, whose presence or
message would depend on the row, nor do work the caller can amplify per row.
Comparisons, `IS`, `IN` (a list), `BETWEEN`, `CASE`, `CAST` and arithmetic
qualify (SQLite's integer overflow turns into a REAL, division by zero into
NULL); so do the functions named in `_FUNCTIONS`. Anything else called, `||`
(a long enough result raises "string or blob too big"), the JSON operators,
LIKE/GLOB/REGEXP/MATCH, and any subquery (a correlated one is work per row
the caller can make as large as it likes) make the statement leaky.

A function called only where SQLite evaluates it on rows that passed every
filter, the result columns of the top-level SELECT and RETURNING, does not
count: unless that clause names an alias used elsewhere (`SELECT f(x) AS y
... WHERE y`, where f would run as a WHERE term).
Unsure means leaky: the barrier is always right, only slower.
"""

from __future__ import annotations

from loot.shard.access.rewrite import KEYWORDS, verb_index
from loot.shard.sql_text import Token, fold, tokens

# Functions that cannot fail and cost no more than reading their arguments.
_FUNCTIONS = frozenset({"count", "min", "max", "coalesce", "ifnull", "nullif", "iif", "typeof", "likely", "unlikely",
                        "claim"})
_OPERATORS = frozenset({"||", "->", "->>"})
# Operators SQLite implements as functions (the authorizer reports them as such); ESCAPE can raise.
_FUNCTION_WORDS = frozenset({"like", "glob", "regexp", "match", "escape"})
# Keywords that SQLite also knows as a function when a `(` follows.
_FUNCTION_KEYWORDS = frozenset({"replace"})
_RESULT_ENDS = ("from", "where", "group", "having", "window", "order", "limit", "union", "intersect", "except")


def leakproof(sql: str) -> bool:
    found = tokens(sql)
    if _has_subquery(found):
        return False
    exempt = _evaluated_on_visible_rows(found)
    return not any(_leaks(found, index) for index in range(len(found)) if index not in exempt)


def _has_subquery(found: list[Token]) -> bool:
    """A SELECT inside parentheses: a subquery, a CTE, a compound's parenthesized part."""
    depth = 0
    for token in found:
        depth += (token.text == "(") - (token.text == ")")
        if depth > 0 and token.is_word("select"):
            return True
    return False


def _leaks(found: list[Token], index: int) -> bool:
    token = found[index]
    if token.kind == "op":
        return token.text in _OPERATORS
    if token.is_word(*_FUNCTION_WORDS):
        return True
    if index + 1 >= len(found) or found[index + 1].text != "(":
        return False
    if token.kind == "word" and fold(token.text) in KEYWORDS:
        return fold(token.text) in _FUNCTION_KEYWORDS
    if token.kind in ("word", "quoted") and (token.norm in _FUNCTIONS or _is_insert_columns(found, index)):
        return False
    return token.kind in ("word", "quoted", "string")


def _is_insert_columns(found: list[Token], index: int) -> bool:
    """`INSERT INTO t (a, b)` or `INTO main.t (a, b)`: a column list, not a call."""
    before = index - 2 if index >= 2 and found[index - 1].text == "." else index
    return before >= 1 and found[before - 1].is_word("into")


def _evaluated_on_visible_rows(found: list[Token]) -> set[int]:
    """Token positions of the top-level result columns and RETURNING, where they qualify (see above)."""
    regions = _final_clauses(found)
    exempt: set[int] = set()
    for start, end in regions:
        inside = found[start:end]
        aliases = _aliases(inside)
        if any(token.name in aliases for position, token in enumerate(found) if not start <= position < end):
            continue
        exempt.update(range(start, end))
    return exempt


def _final_clauses(found: list[Token]) -> list[tuple[int, int]]:
    """[start, end) of each top-level SELECT's result columns, and of RETURNING."""
    verb = verb_index(found)
    if verb is None:
        return []
    regions, depth, current = [], 0, None
    for position in range(verb, len(found)):
        token = found[position]
        depth += (token.text == "(") - (token.text == ")")
        if depth != 0 or token.text in ("(", ")"):
            continue
        if token.text == ";":
            break
        if token.is_word("returning"):
            current = position + 1
        elif token.is_word("select") and current is None:
            current = position + 1
        elif token.is_word(*_RESULT_ENDS) and current is not None:
            regions.append((current, position))
            current = None
    if current is not None:
        end = next((i for i in range(current, len(found)) if found[i].text == ";"), len(found))
        regions.append((current, end))
    return regions


def _aliases(inside: list[Token]) -> set[str]:
    """Names that may be result-column aliases: a name ending a column after `AS`, `)`, a name or a value."""
    aliases, depth = set(), 0
    for position, token in enumerate(inside):
        depth += (token.text == "(") - (token.text == ")")
        ends_column = position + 1 == len(inside) or inside[position + 1].text == ","
        if depth == 0 and token.name is not None and ends_column and position > 0:
            previous = inside[position - 1]
            if previous.is_word("as") or previous.text == ")" or previous.kind in ("word", "quoted", "string",
                                                                                   "number", "blob"):
                aliases.add(token.name)
    return aliases
