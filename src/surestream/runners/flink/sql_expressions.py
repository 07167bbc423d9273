"""``where`` and ``with_columns`` expressions, checked against an allowlist and rewritten for
Flink SQL (issue 15 item 1).

Our runner evaluates these expressions in **polars SQL** (``pl.sql_expr``, polars 2.x), Flink
in its own SQL dialect. The two agree on much, not on everything (measured on polars 2.1 and
Flink 2.3.0, docs/flink.md "Sessions and expressions on Flink"):

- ``/`` on integers: true division (``7 / 2 = 3.5``) in polars, integer division in Flink;
  by a constant, polars multiplies by its reciprocal (``7 / 3 = 2.333333333333333``, IEEE
  division says ``2.3333333333333335``); a zero divisor gives ``inf``/``NaN`` in polars but
  fails the whole Flink job (``ArithmeticException``); ``%`` by zero: null in polars, job
  failure in Flink;
- integer literals are 32-bit in both, but polars folds literal-only arithmetic in 64 bits
  (``2147483647 * 2 = 4294967294``) where Flink wraps (``-2``);
- ``1.5`` is a DECIMAL in both, with other precision/scale rules;
- ``CAST(bool AS STRING)`` is ``true`` in polars and ``TRUE`` in Flink; ``CAST(double AS
  STRING)`` prints ``1e+20`` / ``1.0E20``; ``CAST(double AS BIGINT)`` of a value beyond the
  64-bit range is an error (the record goes to errors) in polars and saturates in Flink;
  ``CAST(string AS number)`` of a bad value sends the record to errors in polars and fails
  the Flink job;
- ``UPPER``/``LOWER``: Java's case mapping depends on the JVM's locale.

So an expression is parsed here (our own small parser: anything it does not know is
refused), typed from the stage's column types, and translated only when every construct in
it is on the allowlist below, with exact rewrites where the dialects differ in form only:

- columns, integer literals, ``1.5`` only beside a DOUBLE (written ``1.5E0``), ``1.5E0``,
  ``'text'`` (no backslash), ``TRUE``/``FALSE``, ``NULL`` as a CASE result;
- ``+ - *`` (not both operands 32-bit), ``/`` by a non-zero constant (as polars computes
  it: the numerator as a DOUBLE times the constant's reciprocal), ``%`` of integers by a
  non-zero constant other than -1 (both keep the dividend's sign);
- ``= <> != < <= > >=``, ``BETWEEN``, ``IN (constants)`` between numbers, between strings
  (both compare UTF-8 bytes), ``=``/``<>`` between booleans; ``AND OR NOT``, ``IS [NOT]
  NULL`` (both three-valued);
- ``||`` of strings, ``LIKE`` with ``%`` only (no ``_``, no escapes), ``LENGTH`` /
  ``CHAR_LENGTH`` (code points in both), ``COALESCE``, ``ABS`` of BIGINT/DOUBLE;
- searched ``CASE WHEN ... THEN ... [ELSE ...] END``;
- ``CAST`` to BIGINT from integers, to DOUBLE from numbers, to STRING/VARCHAR from integers
  and strings, and from booleans as ``CASE WHEN b THEN 'true' WHEN NOT b THEN 'false' END``.

Everything else raises ``FlinkUnsupported(path, reason)`` naming the construct. Nothing on
the allowlist can fail on a value, so no record goes to errors on either runner.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from surestream.runners.flink.sql_refusals import FlinkUnsupported
from surestream.runners.flink.sql_source import quote, sql_string

#: expression types; INT is a 32-bit integer (a literal, or a CASE/COALESCE of literals)
INT, BIGINT, DOUBLE, DECIMAL, STRING, BOOLEAN, NULL = (
    "INT", "BIGINT", "DOUBLE", "DECIMAL", "STRING", "BOOLEAN", "NULL")
INTEGERS = (INT, BIGINT)
NUMBERS = (INT, BIGINT, DOUBLE)
#: the Flink type a column of each expression type gets. A 32-bit result stays INT (polars
#: keeps an Int32 column, whose arithmetic wraps at 32 bits as Flink's INT does)
OUTPUT_TYPES = {INT: "INT", BIGINT: "BIGINT", DOUBLE: "DOUBLE", STRING: "STRING",
                BOOLEAN: "BOOLEAN"}
#: a stage column's Flink type -> its expression type
COLUMN_TYPES = {flink: typ for typ, flink in OUTPUT_TYPES.items()}
_I32 = 2**31
_I64 = 2**63

_TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<number>\d+\.\d*(?:[eE][+-]?\d+)? | \.\d+(?:[eE][+-]?\d+)? | \d+[eE][+-]?\d+ | \d+)
  | (?P<string>'(?:[^']|'')*')
  | (?P<qident>"(?:[^"]|"")+")
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<op><>|!=|<=|>=|\|\||[-+*/%=<>(),])
""", re.VERBOSE)
_KEYWORDS = {"AND", "OR", "NOT", "IS", "NULL", "TRUE", "FALSE", "CASE", "WHEN", "THEN",
             "ELSE", "END", "CAST", "AS", "IN", "BETWEEN", "LIKE"}


@dataclass(frozen=True)
class Token:
    kind: str  # number | string | ident | keyword | op | end
    text: str
    pos: int


@dataclass(frozen=True)
class Typed:
    """A translated (sub)expression: Flink SQL text and its type; ``literal`` holds the
    value of a numeric constant (for the divisor rules)."""

    sql: str
    type: str
    literal: int | float | None = None


class _Refused(Exception):
    """A construct off the allowlist (turned into ``FlinkUnsupported`` with the path)."""


def tokenize(text: str) -> list[Token]:
    tokens, pos = [], 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            raise _Refused(f"{text[pos:pos + 10]!r} (at {pos}) is not on the allowlist of "
                           "constructs with the same meaning in polars SQL and Flink SQL")
        kind = m.lastgroup
        value = m.group()
        if kind == "ident" and value.upper() in _KEYWORDS:
            tokens.append(Token("keyword", value.upper(), pos))
        elif kind == "qident":
            tokens.append(Token("ident", value[1:-1].replace('""', '"'), pos))
        elif kind != "ws":
            tokens.append(Token(kind, value, pos))
        pos = m.end()
    tokens.append(Token("end", "", pos))
    return tokens


class ExpressionTranslator:
    """Parses one expression (standard SQL precedence, as polars' parser) and translates
    it while parsing. ``columns``: name -> (Flink SQL of its value, type)."""

    def __init__(self, text: str, columns: dict[str, tuple[str, str]]) -> None:
        self.text = text
        self.columns = columns
        self.tokens = tokenize(text)
        self.i = 0

    # -- token helpers --------------------------------------------------------------------
    def peek(self, offset: int = 0) -> Token:
        return self.tokens[min(self.i + offset, len(self.tokens) - 1)]

    def next(self) -> Token:
        tok = self.peek()
        self.i += 1
        return tok

    def accept(self, kind: str, text: str | None = None) -> Token | None:
        tok = self.peek()
        if tok.kind == kind and (text is None or tok.text.upper() == text):
            self.i += 1
            return tok
        return None

    def expect(self, kind: str, text: str) -> None:
        if self.accept(kind, text) is None:
            tok = self.peek()
            raise _Refused(f"expected {text} at {tok.pos}, found {tok.text or 'the end'!r}")

    # -- grammar ----------------------------------------------------------------------------
    def translate(self) -> Typed:
        result = self.parse_or()
        tok = self.peek()
        if tok.kind != "end":
            raise _Refused(f"{tok.text!r} (at {tok.pos}) is not on the allowlist")
        return result

    def parse_or(self) -> Typed:
        left = self.parse_and()
        while self.accept("keyword", "OR"):
            left = _logical("OR", left, self.parse_and())
        return left

    def parse_and(self) -> Typed:
        left = self.parse_not()
        while self.accept("keyword", "AND"):
            left = _logical("AND", left, self.parse_not())
        return left

    def parse_not(self) -> Typed:
        if self.accept("keyword", "NOT"):
            inner = self.parse_not()
            _need(inner, (BOOLEAN,), "NOT")
            return Typed(f"(NOT {inner.sql})", BOOLEAN)
        return self.parse_comparison()

    def parse_comparison(self) -> Typed:
        left = self.parse_additive()
        tok = self.peek()
        if tok.kind == "op" and tok.text in ("=", "<>", "!=", "<", "<=", ">", ">="):
            self.next()
            right = self.parse_additive()
            result = _compare(tok.text, left, right)
        elif tok.kind == "keyword" and tok.text == "IS":
            self.next()
            negated = self.accept("keyword", "NOT") is not None
            self.expect("keyword", "NULL")
            result = Typed(f"({left.sql} IS {'NOT ' if negated else ''}NULL)", BOOLEAN)
        else:
            negated = tok.kind == "keyword" and tok.text == "NOT" and \
                self.peek(1).kind == "keyword" and self.peek(1).text in ("IN", "BETWEEN", "LIKE")
            if negated:
                self.next()
            word = self.peek()
            if word.kind == "keyword" and word.text == "IN":
                self.next()
                result = self._in(left, negated)
            elif word.kind == "keyword" and word.text == "BETWEEN":
                self.next()
                low = self.parse_additive()
                self.expect("keyword", "AND")
                high = self.parse_additive()
                _compare("<=", left, low)
                _compare("<=", left, high)
                result = Typed(f"({left.sql} {'NOT ' if negated else ''}BETWEEN "
                               f"{_operand(low, left).sql} AND {_operand(high, left).sql})",
                               BOOLEAN)
            elif word.kind == "keyword" and word.text == "LIKE":
                self.next()
                result = self._like(left, negated)
            else:
                return left
        nxt = self.peek()
        if nxt.kind == "op" and nxt.text in ("=", "<>", "!=", "<", "<=", ">", ">="):
            raise _Refused(f"chained comparison at {nxt.pos} ({nxt.text!r} after a "
                           "comparison): add parentheses")
        return result

    def _in(self, left: Typed, negated: bool) -> Typed:
        self.expect("op", "(")
        items = [self.parse_additive()]
        while self.accept("op", ","):
            items.append(self.parse_additive())
        self.expect("op", ")")
        for item in items:
            if item.type != STRING and item.literal is None:
                raise _Refused("IN (...) lists constants only")
            if item.type == STRING and not item.sql.startswith("'"):
                raise _Refused("IN (...) lists constants only")
            _compare("=", left, item)
        listed = ", ".join(_operand(item, left).sql for item in items)
        return Typed(f"({left.sql} {'NOT ' if negated else ''}IN ({listed}))", BOOLEAN)

    def _like(self, left: Typed, negated: bool) -> Typed:
        pattern = self.next()
        if pattern.kind != "string":
            raise _Refused("LIKE takes a constant pattern")
        text = pattern.text[1:-1].replace("''", "'")
        if "_" in text or "\\" in text or "[" in text:
            raise _Refused(f"LIKE pattern {pattern.text}: `_`, `[` and backslashes match "
                           "differently (polars: one code point, regex classes; Flink: "
                           "one UTF-16 unit, Java escapes); use `%` only")
        _need(left, (STRING,), "LIKE")
        return Typed(f"({left.sql} {'NOT ' if negated else ''}LIKE {sql_string(text)})",
                     BOOLEAN)

    def parse_additive(self) -> Typed:
        left = self.parse_multiplicative()
        while True:
            tok = self.peek()
            if tok.kind == "op" and tok.text in ("+", "-", "||"):
                self.next()
                right = self.parse_multiplicative()
                left = _concat(left, right) if tok.text == "||" else \
                    _arith(tok.text, left, right)
            else:
                return left

    def parse_multiplicative(self) -> Typed:
        left = self.parse_unary()
        while True:
            tok = self.peek()
            if tok.kind == "op" and tok.text in ("*", "/", "%"):
                self.next()
                right = self.parse_unary()
                if tok.text == "*":
                    left = _arith("*", left, right)
                elif tok.text == "/":
                    left = _divide(left, right)
                else:
                    left = _modulo(left, right)
            else:
                return left

    def parse_unary(self) -> Typed:
        if self.accept("op", "-"):
            inner = self.parse_unary()
            if inner.literal is not None:
                return _number(-inner.literal, inner.type)
            _need(inner, (BIGINT, DOUBLE), "unary minus")
            return Typed(f"(- {inner.sql})", inner.type)
        if self.accept("op", "+"):
            inner = self.parse_unary()
            _need(inner, NUMBERS + (DECIMAL,), "unary plus")
            return inner
        return self.parse_primary()

    def parse_primary(self) -> Typed:
        tok = self.next()
        if tok.kind == "number":
            return _literal(tok.text)
        if tok.kind == "string":
            if "\\" in tok.text:
                raise _Refused(f"string literal {tok.text}: backslashes are escapes in one "
                               "dialect and plain characters in the other")
            return Typed(tok.text, STRING)
        if tok.kind == "op" and tok.text == "(":
            inner = self.parse_or()
            self.expect("op", ")")
            return inner
        if tok.kind == "keyword":
            if tok.text in ("TRUE", "FALSE"):
                return Typed(tok.text, BOOLEAN)
            if tok.text == "NULL":
                return Typed("NULL", NULL)
            if tok.text == "CASE":
                return self._case()
            if tok.text == "CAST":
                return self._cast()
            raise _Refused(f"{tok.text} at {tok.pos} is not on the allowlist")
        if tok.kind == "ident":
            if self.peek().kind == "op" and self.peek().text == "(":
                return self._function(tok)
            if tok.text.upper() in ("CURRENT_DATE", "CURRENT_TIMESTAMP", "CURRENT_TIME"):
                raise _Refused(f"{tok.text}: processing time, which our runner takes once "
                               "per checkpoint interval (stored with the checkpoint) and "
                               "Flink per record")
            if tok.text not in self.columns:
                raise _Refused(f"unknown column {tok.text!r} (the stage has "
                               f"{', '.join(self.columns)})")
            sql, typ = self.columns[tok.text]
            return Typed(sql, typ)
        raise _Refused(f"{tok.text or 'the end'!r} at {tok.pos} is not on the allowlist")

    def _case(self) -> Typed:
        if self.peek().kind == "keyword" and self.peek().text == "WHEN":
            pass
        else:
            raise _Refused("simple CASE (CASE x WHEN v ...): write CASE WHEN x = v THEN ...")
        whens: list[tuple[Typed, Typed]] = []
        while self.accept("keyword", "WHEN"):
            cond = self.parse_or()
            _need(cond, (BOOLEAN,), "CASE WHEN")
            self.expect("keyword", "THEN")
            whens.append((cond, self.parse_or()))
        default = self.parse_or() if self.accept("keyword", "ELSE") else None
        self.expect("keyword", "END")
        results = [r for _, r in whens] + ([default] if default is not None else [])
        typ = _unify([r.type for r in results], "CASE")
        parts = " ".join(f"WHEN {c.sql} THEN {_as(r, typ)}" for c, r in whens)
        tail = f" ELSE {_as(default, typ)}" if default is not None else ""
        return Typed(f"(CASE {parts}{tail} END)", typ)

    def _cast(self) -> Typed:
        self.expect("op", "(")
        inner = self.parse_or()
        self.expect("keyword", "AS")
        words = []
        while self.peek().kind in ("ident", "keyword") and self.peek().text.upper() != ")":
            words.append(self.next().text.upper())
        self.expect("op", ")")
        target = " ".join(words)
        return _cast(inner, target)

    def _function(self, name_tok: Token) -> Typed:
        name = name_tok.text.upper()
        self.expect("op", "(")
        args = []
        if not self.accept("op", ")"):
            args.append(self.parse_or())
            while self.accept("op", ","):
                args.append(self.parse_or())
            self.expect("op", ")")
        if name in ("LENGTH", "CHAR_LENGTH") and len(args) == 1:
            _need(args[0], (STRING,), name)
            # a 32-bit unsigned count in polars, INT in Flink: arithmetic with a 32-bit
            # constant is refused like other INT arithmetic (polars could wrap below 0)
            return Typed(f"CHAR_LENGTH({args[0].sql})", INT)
        if name == "ABS" and len(args) == 1:
            _need(args[0], (BIGINT, DOUBLE), "ABS")
            return Typed(f"ABS({args[0].sql})", args[0].type)
        if name == "COALESCE" and len(args) >= 2:
            if any(a.type == NULL for a in args):
                raise _Refused("COALESCE with a NULL argument")
            typ = _unify([a.type for a in args], "COALESCE")
            return Typed(f"COALESCE({', '.join(_as(a, typ) for a in args)})", typ)
        reasons = {
            "UPPER": "case mapping goes through the JVM's default locale in Flink and "
                     "Unicode rules of its own in polars",
            "LOWER": "case mapping goes through the JVM's default locale in Flink and "
                     "Unicode rules of its own in polars",
            "ROUND": "rounding of halves differs (binary doubles vs decimal rounding)",
            "NOW": "processing time: our runner takes one value per checkpoint",
            "CURRENT_TIMESTAMP": "processing time: our runner takes one value per checkpoint",
            "TRY_CAST": "the text-to-number parsing rules differ",
            "MOD": "write `%` (integers, by a non-zero constant)",
        }
        raise _Refused(f"function {name}({len(args)} argument(s))"
                       + (f": {reasons[name]}" if name in reasons else
                          " is not on the allowlist"))


# -- typing rules -----------------------------------------------------------------------------
def _need(value: Typed, types: tuple[str, ...], construct: str) -> None:
    if value.type not in types:
        raise _Refused(f"{construct} of a {value.type} value (allowed: {', '.join(types)})")


def _number(value: int | float, typ: str) -> Typed:
    if typ in INTEGERS:
        return _int_literal(int(value))
    if typ == DECIMAL:
        text = repr(abs(value))
        return Typed(f"-{text}" if value < 0 else text, DECIMAL, value)
    return Typed(f"({_double_text(value)})", DOUBLE, value)


def _double_text(value: float) -> str:
    text = repr(float(value))
    if "e" in text or "E" in text:
        return text.upper()
    return f"{text}E0"


def _int_literal(value: int) -> Typed:
    if not -_I64 <= value < _I64:
        raise _Refused(f"integer literal {value} is beyond the 64-bit range")
    if -_I32 <= value < _I32:
        return Typed(str(value) if value >= 0 else f"({value})", INT, value)
    if value == -_I64:
        return Typed(f"CAST({value} AS BIGINT)", BIGINT, value)
    return Typed(f"CAST({value} AS BIGINT)", BIGINT, value)


def _literal(text: str) -> Typed:
    if re.fullmatch(r"\d+", text):
        return _int_literal(int(text))
    if "e" in text or "E" in text:
        return Typed(f"({_double_text(float(text))})", DOUBLE, float(text))
    return Typed(text, DECIMAL, float(text))


def _operand(value: Typed, other: Typed) -> Typed:
    """A DECIMAL constant beside a DOUBLE, as a DOUBLE constant (both dialects then compute
    in doubles); a DECIMAL anywhere else is refused (the dialects' decimal scales differ)."""
    if value.type == DECIMAL:
        if other.type == DOUBLE:
            return Typed(f"({_double_text(value.literal)})", DOUBLE, value.literal)
        raise _Refused(f"decimal constant {value.sql} with a {other.type} value: decimal "
                       "arithmetic keeps other scales in polars than in Flink; write it as "
                       f"a double ({_double_text(value.literal)}) or cast the other side "
                       "to DOUBLE")
    return value


def _arith(op: str, left: Typed, right: Typed) -> Typed:
    left, right = _operand(left, right), _operand(right, left)
    _need(left, NUMBERS, f"`{op}`")
    _need(right, NUMBERS, f"`{op}`")
    if left.type == INT and right.type == INT:
        raise _Refused(f"`{op}` of two 32-bit integers ({left.sql} {op} {right.sql}): polars "
                       "computes constants in 64 bits, Flink wraps at 32; cast one side to "
                       "BIGINT")
    typ = DOUBLE if DOUBLE in (left.type, right.type) else BIGINT
    return Typed(f"({left.sql} {op} {right.sql})", typ)


def _nonzero_constant(divisor: Typed, op: str) -> None:
    if divisor.literal is None:
        raise _Refused(f"`{op}` by a non-constant ({divisor.sql}): a zero divisor gives "
                       "inf/NaN (`/`) or null (`%`) on our runner and fails the Flink job; "
                       "divide by a non-zero constant, or guard it with CASE")
    if divisor.literal == 0:
        raise _Refused(f"`{op}` by zero")


def _divide(left: Typed, right: Typed) -> Typed:
    left, right = _operand(left, right), _operand(right, left)
    _need(left, NUMBERS, "`/`")
    _need(right, NUMBERS, "`/`")
    _nonzero_constant(right, "/")
    # polars divides by a constant as a multiplication by its reciprocal, in doubles (also
    # for integers: 7 / 2 = 3.5, and 7 / 3 = 7.0 * (1 / 3.0) = 2.333333333333333, where
    # IEEE division gives 2.3333333333333335): the same reciprocal, the same product
    reciprocal = 1.0 / float(right.literal)
    if not math.isfinite(reciprocal):
        raise _Refused(f"`/` by {right.literal}: its reciprocal is not a finite double")
    numerator = f"CAST({left.sql} AS DOUBLE)" if left.type in INTEGERS else left.sql
    return Typed(f"({numerator} * ({_double_text(reciprocal)}))", DOUBLE)


def _modulo(left: Typed, right: Typed) -> Typed:
    _need(left, (BIGINT,), "`%`")
    _need(right, INTEGERS, "`%`")
    _nonzero_constant(right, "%")
    if right.literal == -1:
        raise _Refused("`% -1`: the minimum BIGINT % -1 overflows differently")
    return Typed(f"MOD({left.sql}, {right.sql})", BIGINT)


def _concat(left: Typed, right: Typed) -> Typed:
    _need(left, (STRING,), "`||`")
    _need(right, (STRING,), "`||`")
    return Typed(f"({left.sql} || {right.sql})", STRING)


def _compare(op: str, left: Typed, right: Typed) -> Typed:
    if NULL in (left.type, right.type):
        raise _Refused(f"`{op} NULL` is always null: write IS NULL / IS NOT NULL")
    left, right = _operand(left, right), _operand(right, left)
    numeric = left.type in NUMBERS and right.type in NUMBERS
    same = left.type == right.type and left.type in (STRING, BOOLEAN)
    if not (numeric or same):
        raise _Refused(f"comparison `{op}` of {left.type} with {right.type}: implicit "
                       "conversions differ; cast one side")
    if left.type == BOOLEAN and op not in ("=", "<>", "!="):
        raise _Refused(f"ordering `{op}` of booleans")
    sql_op = "<>" if op == "!=" else op
    return Typed(f"({left.sql} {sql_op} {right.sql})", BOOLEAN)


def _logical(op: str, left: Typed, right: Typed) -> Typed:
    _need(left, (BOOLEAN,), op)
    _need(right, (BOOLEAN,), op)
    return Typed(f"({left.sql} {op} {right.sql})", BOOLEAN)


def _unify(types: list[str], construct: str) -> str:
    known = {t for t in types if t != NULL}
    if not known:
        raise _Refused(f"{construct} whose results are all NULL has no type")
    if DECIMAL in known:
        raise _Refused(f"{construct} with a decimal constant result (write 1.5E0)")
    if known <= {INT}:
        return INT
    if known <= {INT, BIGINT}:
        return BIGINT
    if known <= set(NUMBERS):
        return DOUBLE
    if len(known) == 1:
        return known.pop()
    raise _Refused(f"{construct} mixes {', '.join(sorted(known))} results")


def _as(value: Typed, typ: str) -> str:
    """``value`` as a result of type ``typ`` (a NULL gets the type; numbers widen)."""
    if value.type == NULL:
        return f"CAST(NULL AS {OUTPUT_TYPES.get(typ, typ) if typ != INT else 'INT'})"
    if value.type == typ:
        return value.sql
    return f"CAST({value.sql} AS {OUTPUT_TYPES[typ]})"


_CAST_TARGETS = {"BIGINT": BIGINT, "INT8": BIGINT, "DOUBLE": DOUBLE,
                 "DOUBLE PRECISION": DOUBLE, "FLOAT8": DOUBLE, "STRING": STRING,
                 "VARCHAR": STRING, "TEXT": STRING, "BOOLEAN": BOOLEAN, "BOOL": BOOLEAN}


def _cast(inner: Typed, target_text: str) -> Typed:
    target = _CAST_TARGETS.get(target_text)
    if target is None:
        raise _Refused(f"CAST(... AS {target_text}): the target types with the same meaning "
                       "in both dialects are BIGINT, DOUBLE, STRING/VARCHAR, BOOLEAN (INT "
                       "and FLOAT are 32-bit in polars)")
    source = inner.type
    if source == DECIMAL:
        if target != DOUBLE:
            raise _Refused(f"CAST of the decimal constant {inner.sql} AS {target_text}")
        return Typed(f"({_double_text(inner.literal)})", DOUBLE, inner.literal)
    if source == target or (source == INT and target == BIGINT):
        return Typed(inner.sql if source == target else f"CAST({inner.sql} AS BIGINT)",
                     target, inner.literal)
    if target == DOUBLE and source in INTEGERS:
        return Typed(f"CAST({inner.sql} AS DOUBLE)", DOUBLE)
    if target == STRING and source in INTEGERS:
        return Typed(f"CAST({inner.sql} AS STRING)", STRING)
    if target == STRING and source == BOOLEAN:
        # polars prints true/false, Flink TRUE/FALSE
        return Typed(f"(CASE WHEN {inner.sql} THEN 'true' WHEN NOT {inner.sql} THEN 'false' "
                     "END)", STRING)
    reasons = {
        (DOUBLE, BIGINT): "a value beyond the 64-bit range (or NaN) is an error on our "
                          "runner and saturates on Flink",
        (DOUBLE, STRING): "doubles print differently (1e+20 vs 1.0E20)",
        (STRING, BIGINT): "a value that is not a number sends the record to errors on our "
                          "runner and fails the Flink job; parsing rules differ too",
        (STRING, DOUBLE): "a value that is not a number sends the record to errors on our "
                          "runner and fails the Flink job; parsing rules differ too",
    }
    raise _Refused(f"CAST({source} AS {target_text})"
                   + (f": {reasons[(source, target)]}" if (source, target) in reasons
                      else " is not on the allowlist"))


# -- the steps --------------------------------------------------------------------------------
def translate_expression(text: str, columns: dict[str, tuple[str, str]], path: str) -> Typed:
    """``text`` as Flink SQL with its type, or ``FlinkUnsupported(path, reason)``."""
    try:
        return ExpressionTranslator(text, columns).translate()
    except _Refused as refused:
        raise FlinkUnsupported(path, f"{refused} (in {text!r}); expressions are translated "
                                     "only when every construct means the same in polars "
                                     "SQL (our runner) and Flink SQL") from None


def stage_columns(columns: dict[str, str]) -> dict[str, tuple[str, str]]:
    """A stage's columns (name -> Flink type) as expression inputs."""
    return {name: (quote(name), COLUMN_TYPES.get(typ, typ)) for name, typ in columns.items()}


def where_condition(condition: str, columns: dict[str, str], path: str) -> str:
    """The Flink SQL condition of a ``where`` step (a null condition drops the record on
    both runners)."""
    result = translate_expression(condition, stage_columns(columns), path)
    if result.type != BOOLEAN:
        raise FlinkUnsupported(path, f"the condition {condition!r} is a {result.type}, not a "
                                     "boolean")
    return result.sql


def with_columns_select(exprs: dict[str, str], columns: dict[str, str], path: str,
                        protected: set[str]) -> tuple[dict[str, str], dict[str, str]]:
    """The SELECT list of a ``with_columns`` step: columns in order, each new expression
    with the earlier ones of the step substituted (our runner computes them in order, so a
    later expression sees an earlier one's value). Returns (column -> SQL, column -> type)
    and updates nothing in place."""
    env = stage_columns(columns)
    types = dict(columns)
    for name, expr in exprs.items():
        where = f"{path}.{name}"
        if name in protected:
            raise FlinkUnsupported(where, "the event-time column cannot be replaced on the "
                                          "Flink runner (the watermark is computed from it)")
        result = translate_expression(expr, env, where)
        if result.type not in OUTPUT_TYPES:
            raise FlinkUnsupported(where, f"{expr!r} is a {result.type}: give it a type")
        env[name] = (result.sql, result.type)
        types[name] = OUTPUT_TYPES[result.type]
    return {name: sql for name, (sql, _) in env.items()}, types
