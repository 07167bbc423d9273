"""Late-data strategy names: ours, and the ETL framework's (issue 14).

The framework configures late data with ``Drop``, ``LogAndDrop``, ``SendToDLQ`` and
``SeparateStream``; each is one of our strategies under another name, so a configuration
written for the framework runs unchanged. Names match without regard to case (``SendToDLQ``,
``sendToDlq`` and ``SENDTODLQ`` are one name): the framework's configurations are written by
hand in JSON and YAML, and no two accepted names differ only in case, so matching case
would only turn a typo of capitals into a failed run. Ours keep their spelling
(``log_and_drop``); after validation a step holds our name only, so everything that reads
a step (reports, verify, the runner) knows one set of names.
"""

from __future__ import annotations

from typing import Any

#: our strategies (``LateDataStep.strategy``)
OUR_STRATEGIES = ("quarantine", "side_output", "dlq", "log_and_drop", "drop", "flag")
#: the ETL framework's name -> ours
FRAMEWORK_STRATEGIES = {"Drop": "drop", "LogAndDrop": "log_and_drop", "SendToDLQ": "dlq",
                        "SeparateStream": "side_output"}
_BY_FOLDED = {name.casefold(): ours for name, ours in FRAMEWORK_STRATEGIES.items()}
_BY_FOLDED.update({name: name for name in OUR_STRATEGIES})

#: what the JSON Schema (and so an editor) accepts: both sets, as written here
LATE_STRATEGY_JSON_SCHEMA: dict[str, Any] = {
    "type": "string", "enum": [*OUR_STRATEGIES, *FRAMEWORK_STRATEGIES]}


def late_strategy(value: Any) -> Any:
    """Our name for ``value`` (any case); a string that names no strategy raises
    ``ValueError`` listing both sets of names. Other types are left to validation."""
    if not isinstance(value, str):
        return value
    ours = _BY_FOLDED.get(value.strip().casefold())
    if ours is None:
        raise ValueError(f"unknown late-data strategy {value!r}: use one of "
                         f"{', '.join(OUR_STRATEGIES)}, or the ETL framework's "
                         f"{', '.join(FRAMEWORK_STRATEGIES)} (case does not matter)")
    return ours
