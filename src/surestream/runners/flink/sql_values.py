"""JSON text read in SQL by our runner's typing rules: one bad value costs one record.

Flink's ``json`` format cannot keep that promise: a line (or Kafka value) that does not
parse, or a value of the wrong type, either fails the job or, with
``json.ignore-parse-errors``, becomes a row of nulls -- a record silently lost. So the
sources read each line / value as raw text (one STRING) and parse it here: ``problem_cases``
classify it as our runner does (``connectors/parsing.py``, ``connectors/value_types.py``),
``read_value`` reads a field once it fits. Shared by the file source (``sql_source``) and
the Kafka source (``sql_kafka``).

A field's type is checked on its JSON text (``JSON_QUERY(... WITH CONDITIONAL ARRAY
WRAPPER)``: the value as JSON, wrapped in ``[...]``), as our runner checks the decoded
value's kind:

- ``int``: an integer literal within int64 (not ``3.0``, ``1e3``, ``"3"``, ``true``);
- ``float``: any number (``-0.0`` keeps its sign: ``read_value``); an integer literal
  only if it has an exact float value (ours: ``float(i) == i``) -- checked exactly within
  int64, and an integer beyond int64 is sent to errors (ours keeps the rare exact ones
  such as 2**64: docs/flink.md says so);
- ``bool``: ``true`` / ``false``;
- ``string`` (a declared column is text): a string, an integer (its digits) or a boolean
  (``true`` / ``false``); a fraction or exponent is not taken (Python's float text is not
  Flink's), nor an object or array.
"""

from __future__ import annotations

_INT = r"-?(0|[1-9][0-9]*)"
_NUMBER = _INT + r"(\.[0-9]+)?([eE][+-]?[0-9]+)?"

#: each SQL type: (the JSON text that fits, as a regular expression over JSON_QUERY's
#: wrapped scalar ``[...]``; how the value is read; what it must be, for the reason)
FIT = {
    "BIGINT": (rf"^\[{_INT}\]$", "TRY_CAST({v} AS BIGINT)", "an integer"),
    "DOUBLE": (rf"^\[{_NUMBER}\]$", "TRY_CAST({v} AS DOUBLE)", "a number"),
    "BOOLEAN": (r"^\[(true|false)\]$", "TRY_CAST({v} AS BOOLEAN)", "a boolean"),
    "STRING": (rf'^\[("|({_INT}|true|false)\]$)', "{v}", "a string, an integer or a boolean"),
}
SPEC_WORD = {"BIGINT": "int", "DOUBLE": "float", "BOOLEAN": "bool", "STRING": "string"}
#: 2**63 as a double: the first float beyond int64 (``CAST`` to BIGINT saturates there)
_TWO_63 = "9.223372036854775808E18"


def quote(name: str) -> str:
    """A column name as a Flink SQL identifier (``count`` and ``sum`` are reserved)."""
    return "`" + name.replace("`", "``") + "`"


def sql_string(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def json_path(column: str) -> str:
    """The JSON path of a top-level field, as a SQL string literal."""
    return sql_string("$['" + column.replace("\\", "\\\\").replace("'", "\\'") + "']")


def read_value(value: str, column: str, sql_type: str) -> str:
    """The typed value of a field of the JSON text ``value`` (SQL): NULL when missing, null
    or not fitting."""
    text = f"JSON_VALUE({value}, {json_path(column)})"
    read = "(" + FIT[sql_type][1].format(v=text) + ")"
    if sql_type != "DOUBLE":
        return read
    # JSON_VALUE reads a number as a decimal, which has no -0.0: the sign is taken from the
    # text (a zero whose field is written `"name": -...`)
    minus = sql_string(r'"\Q' + column + r'\E"\s*:\s*-')
    return f"(CASE WHEN {read} = 0 AND REGEXP({value}, {minus}) THEN -{read} ELSE {read} END)"


def problem_cases(value: str, columns: dict[str, str]) -> list[tuple[str, str]]:
    """(SQL condition, SQL reason) of each way the JSON text ``value`` is not a record of
    ``columns`` (name -> SQL type), in our runner's order and words: not JSON, not an
    object, then the first field whose value does not fit."""
    cases = [
        # (Flink's IS JSON takes a document followed by other text; ours does not)
        (f"NOT ({value} IS JSON) OR ({value} IS JSON OBJECT AND NOT REGEXP({value}, "
         r"'^\s*\{[\s\S]*\}\s*$'))", "'not valid JSON'"),
        (f"NOT ({value} IS JSON OBJECT)",
         f"CONCAT('a record must be a JSON object, not ', {_kind_phrase(value)})"),
    ]
    for column, sql_type in columns.items():
        wrapped = f"JSON_QUERY({value}, {json_path(column)} WITH CONDITIONAL ARRAY WRAPPER)"
        pattern, read, word = FIT[sql_type]
        text = f"JSON_VALUE({value}, {json_path(column)})"
        fits = f"REGEXP({wrapped}, {sql_string(pattern)}) AND {read.format(v=text)} IS NOT NULL"
        if sql_type == "DOUBLE":
            fits += f" AND {_exact_float(wrapped, text)}"
        tail = f" is not {word}; the column is {SPEC_WORD[sql_type]} (declared)"
        reason = (f"CONCAT({sql_string(f'field {column!r}: the value ')}, "
                  f"SUBSTRING({wrapped} FROM 2 FOR CHAR_LENGTH({wrapped}) - 2), "
                  f"{sql_string(tail)})")
        cases.append((f"{wrapped} IS NOT NULL AND NOT ({fits})", reason))
    return cases


def _exact_float(wrapped: str, text: str) -> str:
    """An integer literal in a float column has an exact float value (ours sends it to
    errors otherwise: a float keeps 53 bits of an integer). Within int64: the double, cast
    back to BIGINT, is the integer (below 2**63, where that cast saturates); beyond int64:
    not taken (see the module docstring)."""
    as_int, as_double = f"TRY_CAST({text} AS BIGINT)", f"TRY_CAST({text} AS DOUBLE)"
    return (f"(NOT REGEXP({wrapped}, {sql_string(FIT['BIGINT'][0])}) OR ({as_int} IS NOT "
            f"NULL AND {as_double} < {_TWO_63} AND CAST({as_double} AS BIGINT) = {as_int}))")


def _kind_phrase(value: str) -> str:
    """What a JSON document that is not an object is, in our runner's words."""
    return (f"CASE WHEN {value} IS JSON ARRAY THEN 'an array' "
            rf"WHEN REGEXP({value}, '^\s*\"') THEN 'a string' "
            rf"WHEN REGEXP({value}, '^\s*(true|false)') THEN 'a boolean' "
            rf"WHEN REGEXP({value}, '^\s*null') THEN 'null' ELSE 'a number' END")


def problem_sql(cases: list[tuple[str, str]]) -> str:
    """Why a value is not a record (the first case that holds), or NULL: it is one."""
    whens = "\n    ".join(f"WHEN {cond} THEN {reason}" for cond, reason in cases)
    return f"CASE\n    {whens}\n    ELSE CAST(NULL AS STRING) END"
