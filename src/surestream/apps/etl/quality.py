"""``dataQuality``: the framework's rules -> a ``type: data_quality`` step.

- ``NotNull {column | columns}``
  -> ``not_null``
- ``Range {column, min, max}``
  -> ``range``
- ``Regex {column, pattern}`` (alias ``Pattern``)
  -> ``regex``
- ``InSet {column, values}`` (aliases ``AllowedValues``, ``In``)
  -> ``in_set``
- ``Unique {column | columns, within: "batch" | <duration>}`` | ``unique`` with ``within: batch
  -> {window_ms}``
- ``Expression {expression}`` (alias ``Sql``)
  -> ``expression`` with ``sql``
- ``Function {function: "pkg.mod:fn"}`` (alias ``Custom``)
  -> ``function``

``severity`` Error/Warning/Info -> error/warning/info (default Error); ``onFailure``
Abort/Continue/Warn/Quarantine (``Fail`` = Abort, ``Log`` = Warn; default Quarantine: a
failing record is kept apart, never lost, and the run goes on) -> abort/continue/warn/
quarantine, always written out. Quarantined records go to the tag ``dq_failed`` (with
``dq_rule`` and ``dq_reason``), whose output is ``dataQuality.quarantine`` or, by
default, a JSON-lines file beside the checkpoint folder.
"""

from __future__ import annotations

from typing import Any

from surestream.apps.etl.config import DataQuality, DqRule

QUARANTINE_TAG = "dq_failed"
_RULE_NAMES = {"NotNull": "not_null", "Range": "range", "Regex": "regex", "InSet": "in_set",
               "Unique": "unique", "Expression": "expression", "Function": "function"}


def translate_rule(rule: DqRule, index: int) -> dict[str, Any]:
    """One surestream rule; unnamed rules are called ``<rule>_<column>`` (or by their
    position), the name the quarantined records carry in ``dq_rule``."""
    kind = _RULE_NAMES[rule.type]
    target = rule.column or "_".join(rule.columns or []) or str(index)
    out: dict[str, Any] = {"name": rule.name or f"{kind}_{target}", "rule": kind}
    if rule.column is not None:
        out["column"] = rule.column
    if rule.columns is not None:
        out["columns"] = list(rule.columns)
    for key in ("min", "max", "pattern"):
        if getattr(rule, key) is not None:
            out[key] = getattr(rule, key)
    if rule.values is not None:
        out["values"] = list(rule.values)
    if rule.within is not None:
        out["within"] = "batch" if rule.within == "batch" else {"window_ms": rule.within}
    if rule.expression is not None:
        out["sql"] = rule.expression
    if rule.function is not None:
        out["function"] = rule.function
    out["severity"] = rule.severity.lower()
    out["on_failure"] = rule.on_failure.lower()
    return out


def translate_data_quality(cfg: DataQuality) -> dict[str, Any] | None:
    """The step, or None when ``enabled`` is false (the rules are then not applied, as
    the configuration says)."""
    if not cfg.enabled:
        return None
    rules = [translate_rule(r, i) for i, r in enumerate(cfg.rules)]
    return {"type": "data_quality", "name": "data_quality", "rules": rules,
            "quarantine_output_tag": QUARANTINE_TAG}


def quarantines(step: dict[str, Any] | None) -> bool:
    """Whether the step sends records to its quarantine tag (a rule with
    ``on_failure: quarantine``), so the tag needs an output."""
    return bool(step) and any(r.get("on_failure") == "quarantine" for r in step["rules"])
