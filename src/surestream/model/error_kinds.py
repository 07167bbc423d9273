"""The vocabulary of error records: their categories, the kinds that group them, and the
fields an error output can be shaped from.

It lives in the model layer because the spec is validated against it (an output's
``error_kinds`` and ``error_fields``); ``semantics/errors.py`` builds the records and
re-exports these names.
"""

from __future__ import annotations

# Error categories shared by the producers (user-code errors use the exception class name
# as ``error_type``; their category is ``user_code_error``).
DESERIALIZATION_ERROR = "deserialization_error"
MISSING_TIMESTAMP = "missing_timestamp"
TIMESTAMP_OUT_OF_RANGE = "timestamp_out_of_range"
NULL_KEY = "null_key"
UNROUTABLE = "unroutable"
UNDECLARED_SIDE_OUTPUT = "undeclared_side_output"
INVALID_BROADCAST_UPDATE = "invalid_broadcast_update"
#: a value a step cannot use (``sum`` over ``"n/a"``); the message names step, column, value
INVALID_VALUE = "invalid_value"
#: a record an output cannot hold (a nested value bound for CSV); the message names both
UNWRITABLE = "unwritable"
#: a SQL expression (``with_columns``, ``where``) failed on the record
EXPRESSION_ERROR = "expression_error"
#: an exception raised by user code (``map``, ``filter``, ``map_batches``, ``process``, a
#: user aggregate); its ``error_type`` is the exception class name, as it always was
USER_CODE_ERROR = "user_code_error"
#: ``map_batches``' ``error_type`` (its exception class is in ``exception``)
USER_FUNCTION_ERROR = "user_function_error"

#: kind -> the categories it groups: where in the pipeline a record was given up on.
#: ``input``: the record as read is unusable (it does not parse, it lacks the event time or
#: the key); ``processing``: a step failed on it (user code, SQL, a value a step cannot
#: use, a record no route takes); ``output``: no output can hold it.
ERROR_KINDS: dict[str, tuple[str, ...]] = {
    "input": (DESERIALIZATION_ERROR, MISSING_TIMESTAMP, TIMESTAMP_OUT_OF_RANGE, NULL_KEY,
              INVALID_BROADCAST_UPDATE),
    "processing": (USER_CODE_ERROR, EXPRESSION_ERROR, INVALID_VALUE, UNROUTABLE,
                   UNDECLARED_SIDE_OUTPUT),
    "output": (UNWRITABLE,),
}
#: every category, each in exactly one kind
ERROR_CATEGORIES: tuple[str, ...] = tuple(c for cs in ERROR_KINDS.values() for c in cs)
#: the exception class an error record names when no exception was raised: the engine
#: found the problem itself (a missing timestamp, a status no route takes)
ENGINE_EXCEPTION = "ValueError"

#: the columns of the default ``errors`` output (its shape since v1)
DEFAULT_ERROR_FIELDS: tuple[str, ...] = (
    "pipeline", "operator", "error_type", "error_message", "raw", "traceback",
)
#: every error record as produced: the default fields, then the category and the
#: exception class, which routing and shaping use
ERROR_COLUMNS: tuple[str, ...] = (*DEFAULT_ERROR_FIELDS, "category", "exception")
#: the processing time an error was recorded at, in epoch milliseconds: taken once per
#: checkpoint and stored with it (``runners/local/error_outputs.py``); only for outputs
#: that ask for it in ``error_fields``
RECORDED_AT = "recorded_at_ms"
#: what an output's ``error_fields`` may take its values from
ERROR_FIELD_SOURCES: tuple[str, ...] = (*ERROR_COLUMNS, RECORDED_AT)


def categories_of(kinds: list[str]) -> list[str]:
    """The categories a list of kinds and categories stands for, in order, once each."""
    found: dict[str, None] = {}
    for k in kinds:
        for c in ERROR_KINDS.get(k, (k,)):
            found.setdefault(c, None)
    return list(found)
