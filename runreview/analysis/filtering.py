"""MLflow's run search syntax, applied to the runs frame (so it works for any source).

Grammar (keywords case-insensitive)::

    filter      := "" | condition ("AND" condition)*
    condition   := key comparator value
                 | key ["NOT"] "IN" "(" value ("," value)* ")"
    key         := prefix "." name | attribute
    prefix      := metrics | metric | params | param | parameters | parameter | tags | tag
                 | attributes | attribute | attr | run
    name        := bare name (letters, digits, _ . - / : @) | `backticked` | "double quoted"
    comparator  := = | != | <> | > | >= | < | <= | LIKE | ILIKE
    value       := 'string' | "string" | number

Metrics compare as numbers (``= != > >= < <=``). Params, tags and text attributes compare
as strings (``= != LIKE ILIKE IN NOT IN``; ``%`` matches any text and ``_`` one
character; LIKE is case-sensitive, ILIKE not). ``start_time`` / ``end_time`` compare as
times: a number is milliseconds since the epoch (as in MLflow), a quoted text an ISO
date. A run without the key never matches, whatever the comparator (as in MLflow); a key
no run has is not an error. ``OR`` and parentheses are not supported (neither are they by
MLflow). The text is only ever tokenised and parsed: it is never evaluated.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from runreview.contract import METRIC_PREFIX, PARAM_PREFIX, TAG_PREFIX

Kind = Literal["number", "text", "time"]

_PREFIXES = {
    "metrics": (METRIC_PREFIX, "number"),
    "metric": (METRIC_PREFIX, "number"),
    "params": (PARAM_PREFIX, "text"),
    "param": (PARAM_PREFIX, "text"),
    "parameters": (PARAM_PREFIX, "text"),
    "parameter": (PARAM_PREFIX, "text"),
    "tags": (TAG_PREFIX, "text"),
    "tag": (TAG_PREFIX, "text"),
}
_ATTRIBUTE_PREFIXES = {"attributes", "attribute", "attr", "run"}
#: Attribute name -> (runs-frame column, kind).
ATTRIBUTES: dict[str, tuple[str, Kind]] = {
    "run_id": ("run_id", "text"),
    "run_uuid": ("run_id", "text"),
    "run_name": ("run_name", "text"),
    "status": ("status", "text"),
    "experiment": ("experiment", "text"),
    "source": ("source", "text"),
    "source_uri": ("source_uri", "text"),
    "artifact_uri": ("artifact_uri", "text"),
    "user_id": ("user_id", "text"),
    "lifecycle_stage": ("lifecycle_stage", "text"),
    "start_time": ("start_time", "time"),
    "end_time": ("end_time", "time"),
}
COMPARATORS: dict[Kind, tuple[str, ...]] = {
    "number": ("=", "!=", ">", ">=", "<", "<="),
    "time": ("=", "!=", ">", ">=", "<", "<="),
    "text": ("=", "!=", "LIKE", "ILIKE", "IN", "NOT IN"),
}
_KEYWORDS = {"AND", "OR", "NOT", "IN", "LIKE", "ILIKE"}
_OPERATORS = ("!=", "<>", ">=", "<=", "==", "=", ">", "<")
_NAME_CHARS = re.compile(r"[\w.\-/:@]+")
_WORD = re.compile(r"[A-Za-z_]\w*")
_NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")


class FilterError(ValueError):
    """A filter expression that cannot be parsed; says where and what was expected."""

    def __init__(self, expression: str, position: int, expected: str, found: str) -> None:
        self.expression = expression
        self.position = position
        self.expected = expected
        self.found = found
        super().__init__(
            f"Invalid filter at character {position + 1}: expected {expected}, found {found}."
        )

    @property
    def pointer(self) -> str:
        """The expression with a caret under the bad character (for monospace display)."""
        return f"{self.expression}\n{' ' * self.position}^"


# --- tokens -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Token:
    """One lexical unit of a filter.

    ``kind`` is ``key``, ``word``, ``keyword``, ``string``, ``number``, ``op``, ``(``,
    ``)``, ``,`` or ``end``; ``value`` is the parsed content (for a key, the pair
    (prefix, name)); ``pos`` is its offset in the text and ``text`` the text it covers.
    """

    kind: str
    value: Any
    pos: int
    text: str


def _describe(token: Token) -> str:
    """How a token is named in error messages."""
    return "the end of the filter" if token.kind == "end" else repr(token.text)


def tokenize(expression: str) -> list[Token]:
    """The tokens of ``expression``, ending with an ``end`` token."""
    return list(iter_tokens(expression))


def iter_tokens(expression: str) -> Iterator[Token]:
    """Tokens one at a time, so a parser reports the first problem in reading order."""
    pos = 0
    while True:
        while pos < len(expression) and expression[pos].isspace():
            pos += 1
        if pos >= len(expression):
            yield Token("end", None, pos, "")
            return
        token = _next_token(expression, pos)
        yield token
        pos += len(token.text)


def _next_token(text: str, pos: int) -> Token:
    """The token starting at ``pos`` (which is not whitespace)."""
    char = text[pos]
    if char in "'\"":
        return _quoted(text, pos, "string")
    if _NUMBER.match(text, pos) and (char.isdigit() or char in "+-."):
        return _number(text, pos)
    if _WORD.match(text, pos):
        return _word(text, pos)
    for op in _OPERATORS:
        if text.startswith(op, pos):
            return Token("op", {"==": "=", "<>": "!="}.get(op, op), pos, op)
    if char in "(),":
        return Token(char, char, pos, char)
    expected = "a key, a comparator, a quoted string, a number, '(', ')' or ','"
    raise FilterError(text, pos, expected, repr(char))


def _quoted(text: str, pos: int, kind: str) -> Token:
    """A quoted string or name; a doubled quote inside stands for one quote."""
    quote, end, parts = text[pos], pos + 1, []
    while True:
        close = text.find(quote, end)
        if close < 0:
            raise FilterError(text, pos, f"a closing quote ({quote})", "the end of the filter")
        parts.append(text[end:close])
        if not text.startswith(quote * 2, close):
            return Token(kind, quote.join(parts), pos, text[pos : close + 1])
        end = close + 2


def _number(text: str, pos: int) -> Token:
    """A number; it must not run into letters (``5abc``)."""
    match = _NUMBER.match(text, pos)
    assert match is not None  # checked by the caller
    end = match.end()
    if end < len(text) and (text[end].isalnum() or text[end] == "_"):
        raise FilterError(text, end, "a space, a comparator or AND after a number", repr(text[end]))
    return Token("number", float(match.group()), pos, match.group())


def _word(text: str, pos: int) -> Token:
    """A keyword, a bare attribute, or a ``prefix.name`` key."""
    word = _WORD.match(text, pos).group()  # type: ignore[union-attr]
    end = pos + len(word)
    if end < len(text) and text[end] == ".":
        name, stop = _key_name(text, end + 1, word)
        return Token("key", (word, name), pos, text[pos:stop])
    if word.upper() in _KEYWORDS:
        return Token("keyword", word.upper(), pos, word)
    return Token("word", word, pos, word)


def _key_name(text: str, pos: int, prefix: str) -> tuple[str, int]:
    """The name after ``prefix.``: backticked, double-quoted or bare; and where it ends."""
    if pos < len(text) and text[pos] in '`"':
        token = _quoted(text, pos, "name")
        return token.value, pos + len(token.text)
    match = _NAME_CHARS.match(text, pos)
    if not match:
        found = repr(text[pos]) if pos < len(text) else "the end of the filter"
        raise FilterError(
            text, pos, f"a name after '{prefix}.' (use `backticks` for spaces)", found
        )
    return match.group(), match.end()


# --- parsing ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Condition:
    """One parsed comparison: the runs-frame column, how it compares, and the value(s)."""

    column: str
    kind: Kind
    comparator: str
    value: Any
    pos: int


class _Parser:
    """A recursive-descent parser over the token list."""

    def __init__(self, expression: str) -> None:
        self.text = expression
        self.stream = iter_tokens(expression)
        self.current = next(self.stream)

    def peek(self) -> Token:
        """The next token, not consumed."""
        return self.current

    def take(self) -> Token:
        """The next token, consumed (the end token is never consumed)."""
        token = self.current
        if token.kind != "end":
            self.current = next(self.stream)
        return token

    def fail(self, expected: str, token: Token | None = None) -> FilterError:
        """An error at ``token`` (default: the next one)."""
        token = token or self.peek()
        return FilterError(self.text, token.pos, expected, _describe(token))

    def is_keyword(self, word: str) -> bool:
        """True when the next token is the keyword ``word``."""
        token = self.peek()
        return token.kind == "keyword" and token.value == word

    def parse(self) -> list[Condition]:
        """``condition (AND condition)*``, or nothing."""
        if self.peek().kind == "end":
            return []
        conditions = [self.condition()]
        while self.is_keyword("AND"):
            self.take()
            conditions.append(self.condition())
        if self.is_keyword("OR"):
            raise self.fail("AND or the end of the filter (OR is not supported, as in MLflow)")
        if self.peek().kind != "end":
            raise self.fail("AND or the end of the filter")
        return conditions

    def condition(self) -> Condition:
        """``key comparator value``."""
        start = self.peek()
        column, kind = self.key()
        comparator = self.comparator(kind, column)
        if comparator in ("IN", "NOT IN"):
            value: Any = self.value_list(kind)
        else:
            value = self.value(kind)
        return Condition(column, kind, comparator, value, start.pos)

    def key(self) -> tuple[str, Kind]:
        """The column and kind a key refers to."""
        token = self.take()
        expected = "a key such as metrics.accuracy, params.model, tags.team or run_name"
        if token.kind == "key":
            return _resolve_prefixed(token, self.text)
        if token.kind == "word":
            return _resolve_attribute(token.value, token, self.text)
        raise self.fail(expected, token)

    def comparator(self, kind: Kind, column: str) -> str:
        """A comparator allowed for ``kind``."""
        token = self.take()
        if token.kind == "op" or (
            token.kind == "keyword" and token.value in ("LIKE", "ILIKE", "IN")
        ):
            name = token.value
        elif token.kind == "keyword" and token.value == "NOT" and self.is_keyword("IN"):
            self.take()
            name = "NOT IN"
        else:
            raise self.fail(f"a comparator ({', '.join(COMPARATORS[kind])})", token)
        if name not in COMPARATORS[kind]:
            allowed = ", ".join(COMPARATORS[kind])
            raise self.fail(f"a comparator for {_kind_name(kind, column)} ({allowed})", token)
        return name

    def value(self, kind: Kind) -> Any:
        """One value of the type ``kind`` compares with."""
        token = self.take()
        return _convert(kind, token, self.text)

    def value_list(self, kind: Kind) -> tuple[Any, ...]:
        """``( value (, value)* )``."""
        if self.peek().kind != "(":
            raise self.fail("'(' to start the list of values")
        self.take()
        values = [self.value(kind)]
        while self.peek().kind == ",":
            self.take()
            values.append(self.value(kind))
        if self.peek().kind != ")":
            raise self.fail("',' or ')' in the list of values")
        self.take()
        return tuple(values)


def _kind_name(kind: Kind, column: str) -> str:
    """How a key's type is named in messages."""
    if kind == "number":
        return f"{column} (a number)"
    if kind == "time":
        return f"{column} (a time)"
    return f"{column} (compared as text)"


def _resolve_prefixed(token: Token, text: str) -> tuple[str, Kind]:
    """``metrics.x`` -> (``metrics.x``, number) etc.; attributes through ``ATTRIBUTES``."""
    prefix, name = token.value
    if prefix.lower() in _ATTRIBUTE_PREFIXES:
        return _resolve_attribute(name, token, text)
    if prefix.lower() not in _PREFIXES:
        known = "metrics, params, tags or attributes"
        raise FilterError(text, token.pos, f"a key prefix ({known})", repr(prefix))
    column_prefix, kind = _PREFIXES[prefix.lower()]
    return column_prefix + name, kind


def _resolve_attribute(name: str, token: Token, text: str) -> tuple[str, Kind]:
    """A run attribute by name."""
    if name not in ATTRIBUTES:
        expected = (
            f"an attribute ({', '.join(sorted(ATTRIBUTES))}) "
            "or a key with a prefix (metrics., params., tags.)"
        )
        raise FilterError(text, token.pos, expected, repr(name))
    return ATTRIBUTES[name]


def _convert(kind: Kind, token: Token, text: str) -> Any:
    """A token as the value ``kind`` compares with; raises when it cannot be one."""
    if kind == "number":
        if token.kind != "number":
            raise FilterError(
                text, token.pos, "a number (metrics compare as numbers)", _describe(token)
            )
        return token.value
    if kind == "time":
        return _time_value(token, text)
    if token.kind == "string":
        return token.value
    if token.kind == "number":
        return token.text  # a bare number compared with a string: as written
    raise FilterError(text, token.pos, "a quoted string such as 'value'", _describe(token))


def _time_value(token: Token, text: str) -> pd.Timestamp:
    """Milliseconds since the epoch, or a quoted ISO date (UTC when no offset is given)."""
    expected = "a time: milliseconds since the epoch or a quoted ISO date"
    try:
        if token.kind == "number":
            return pd.Timestamp(token.value, unit="ms", tz="UTC")
        if token.kind == "string":
            stamp = pd.Timestamp(token.value)
            return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    except (ValueError, OverflowError) as error:
        raise FilterError(text, token.pos, expected, _describe(token)) from error
    raise FilterError(text, token.pos, expected, _describe(token))


def parse_filter(expression: str) -> list[Condition]:
    """The conditions of a filter expression; raises ``FilterError`` when it is invalid."""
    return _Parser(expression).parse()


# --- evaluation -------------------------------------------------------------------------

_COMPARE: dict[str, Callable[[Any, Any], Any]] = {
    "=": operator.eq,
    "!=": operator.ne,
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
}


def filter_runs(runs: pd.DataFrame, expression: str) -> pd.DataFrame:
    """The runs matching an MLflow-style filter (all runs for an empty filter).

    Raises ``FilterError`` (a ValueError) for an invalid expression. The frame keeps its
    index, so rows can be traced back to the input.
    """
    mask = np.ones(len(runs), dtype=bool)
    for condition in parse_filter(expression):
        mask &= matches(runs, condition)
    return runs[mask].copy()


def matches(runs: pd.DataFrame, condition: Condition) -> np.ndarray:
    """Boolean mask of the runs meeting one condition (False where the value is missing)."""
    if condition.column not in runs.columns:
        return np.zeros(len(runs), dtype=bool)
    column = runs[condition.column]
    if condition.kind == "number":
        values = pd.to_numeric(column, errors="coerce").to_numpy(dtype="float64")
        with np.errstate(invalid="ignore"):
            result = _COMPARE[condition.comparator](values, condition.value)
        return np.asarray(result, dtype=bool) & ~np.isnan(values)
    if condition.kind == "time":
        stamps = pd.to_datetime(column, utc=True, errors="coerce")
        result = _COMPARE[condition.comparator](stamps, condition.value)
        return result.to_numpy(dtype=bool) & stamps.notna().to_numpy()
    test = _text_test(condition.comparator, condition.value)
    return np.array([not _missing(v) and test(str(v)) for v in column], dtype=bool)


def _missing(value: Any) -> bool:
    """None, NaN or NA."""
    return value is None or (not isinstance(value, str) and bool(pd.isna(value)))


def _text_test(comparator: str, value: Any) -> Callable[[str], bool]:
    """A predicate on a string for a text comparator."""
    if comparator in ("LIKE", "ILIKE"):
        pattern = like_pattern(value, case_sensitive=comparator == "LIKE")
        return lambda text: pattern.fullmatch(text) is not None
    if comparator == "IN":
        return lambda text: text in value
    if comparator == "NOT IN":
        return lambda text: text not in value
    compare = _COMPARE[comparator]
    return lambda text: bool(compare(text, value))


def like_pattern(pattern: str, case_sensitive: bool = True) -> re.Pattern[str]:
    """A regular expression for a SQL LIKE pattern (``%`` any text, ``_`` one character)."""
    parts = [".*" if c == "%" else "." if c == "_" else re.escape(c) for c in pattern]
    flags = re.DOTALL | (0 if case_sensitive else re.IGNORECASE)
    return re.compile("".join(parts), flags)
