"""Refusals of an ETL configuration, each at its JSON path.

A field the translation cannot honour is refused, never ignored: the user must see that
``streamingConfigJson.errorHandling.retry.maxAtempts`` (a typo) or an aggregation function
surestream lacks changes nothing, before a pipeline runs without it. Paths are written
the way the JSON reads (``transforms[0].parameters.windowDuration``), inside the
``streamingConfigJson`` string too.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ValidationError

DOCS = "docs/etl.md"


class EtlConfigError(ValueError):
    """An ETL configuration that cannot be translated: one ``(json path, reason)`` each."""

    def __init__(self, problems: list[tuple[str, str]], source: str = "config") -> None:
        self.problems = list(problems)
        self.source = source
        super().__init__("\n".join(f"{source}: {p or '(config)'}: {r}"
                                   for p, r in self.problems))


def join_path(prefix: str, *parts: str | int) -> str:
    """``transforms`` + 0 + ``parameters`` -> ``transforms[0].parameters``."""
    out = prefix
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out = f"{out}.{part}" if out else str(part)
    return out


def accepted_fields(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """The JSON names a model accepts at ``loc`` (the location of an unknown field), for
    the refusal to list: the model is followed down through its nested models."""
    current: Any = model
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        fields = {f.alias or n: f for n, f in current.model_fields.items()}
        if part not in fields:
            return []
        nested = _model_in(fields[part].annotation)
        if nested is None:
            return []
        current = nested
    return sorted(f.alias or n for n, f in current.model_fields.items())


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The pydantic model inside ``X | None``, ``list[X]``, ``Annotated[X, ...]``."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()) or ():
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def parse_section(model: type[BaseModel], data: Any, path: str) -> Any:
    """``model`` validated from ``data``; every problem raised as an ``EtlConfigError``
    at its JSON path below ``path``."""
    try:
        return model.model_validate(data)
    except ValidationError as err:
        raise EtlConfigError(problems_of(err, model, path)) from None


def problems_of(err: ValidationError, model: type[BaseModel],
                path: str) -> list[tuple[str, str]]:
    problems = []
    for e in err.errors():
        loc = tuple(e["loc"])
        where = join_path(path, *loc)
        kind = e["type"]
        if kind == "extra_forbidden":
            known = accepted_fields(model, loc)
            reason = ("unknown field: surestream does not translate it, and ignoring it "
                      "would change what the pipeline does without telling you"
                      + (f"; the fields accepted here: {', '.join(known)}" if known else "")
                      + f" ({DOCS})")
        elif kind == "missing":
            reason = "required field is missing"
        else:
            reason = e["msg"].removeprefix("Value error, ")
        problems.append((where, reason))
    return problems
