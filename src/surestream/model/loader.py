"""Load a spec file (YAML or JSON) or dict, expand ``${ENV_VARS}``, apply ``--set``
overrides, validate.

Errors name the field by its path in the file (``steps[2].state_ttl_ms``) and say why, so
``surestream validate`` can print one line per problem. User code the spec names
(``function: "pkg.mod:f"``) is resolved and checked here too, so a bad reference is a spec
error (exit 2), not a failure of the run.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from surestream.model.env_values import MissingVariableError, expand_environment
from surestream.model.problems import SpecProblems
from surestream.model.spec import PipelineSpec
from surestream.model.user_code import user_code_problems


class SpecError(ValueError):
    """A spec that cannot be used; ``problems`` holds one ``(path, reason)`` per error."""

    def __init__(self, problems: list[tuple[str, str]], source: str = "spec") -> None:
        self.problems = problems
        self.source = source
        super().__init__("\n".join(f"{source}: {p}: {r}" if p else f"{source}: {r}"
                                   for p, r in problems))


def _discriminators() -> set[str]:
    """The ``type`` values of every step, source and sink model: pydantic puts them in error
    locations, but they are not part of the user's file."""
    from typing import get_args

    from pydantic import BaseModel

    from surestream.model import spec, steps

    found: set[str] = set()
    for module in (spec, steps):
        for obj in vars(module).values():
            if isinstance(obj, type) and issubclass(obj, BaseModel) \
                    and "type" in obj.model_fields:
                found.update(get_args(obj.model_fields["type"].annotation))
    return found


_DISCRIMINATORS = _discriminators()


def _field_path(loc: tuple[Any, ...]) -> str:
    """``('steps', 2, 'keyed_dedup', 'state_ttl_ms')`` -> ``steps[2].state_ttl_ms``: the
    discriminator names pydantic inserts are not part of the user's file."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in _DISCRIMINATORS or str(part).startswith("function-"):
            continue
        else:
            out += ("." if out else "") + str(part).rstrip("_")
    return out


def format_validation_error(err: ValidationError) -> list[tuple[str, str]]:
    """One ``(field path, reason)`` per problem; a whole-spec rule's ``SpecProblems`` gives
    each of its problems with its own path (below the location pydantic reports)."""
    problems = []
    for e in err.errors():
        found = (e.get("ctx") or {}).get("error")
        if isinstance(found, SpecProblems):
            base = _field_path(e["loc"])
            problems.extend((".".join(p for p in (base, path) if p), reason)
                            for path, reason in found.problems)
            continue
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            msg = "unknown key (check the spelling; the keys are in docs/spec.md)"
        elif e["type"] == "union_tag_invalid":
            msg = f"unknown type {e.get('input', {}).get('type')!r}: " + e["msg"].split(": ", 1)[-1]
        elif e["type"] == "missing":
            msg = "required key is missing"
        problems.append((_field_path(e["loc"]), msg))
    return problems


_PATH_TOKEN = re.compile(r'\["([^"]*)"\]|\[(\d+)\]|([^.\[\]]+)')


def _path_parts(path: str) -> list[str | int]:
    """``steps[2].name`` -> ['steps', 2, 'name']; ``outputs["a.b"].path`` keeps a key that
    contains dots (tags like ``processed.trades.new``) in one piece."""
    parts: list[str | int] = []
    for quoted, index, plain in _PATH_TOKEN.findall(path):
        if quoted:
            parts.append(quoted)
        elif index:
            parts.append(int(index))
        else:
            parts.append(int(plain) if plain.isdigit() else plain)
    return parts


def apply_override(doc: dict[str, Any], assignment: str) -> None:
    """``--set a.b[2].c=value`` (value parsed as YAML: numbers stay numbers); a key with
    dots in it is quoted: ``--set 'outputs["processed.trades.new"].path=x'``."""
    path, sep, raw = assignment.partition("=")
    if not sep or not path:
        raise SpecError([("--set", f"{assignment!r} is not path=value")])
    value = yaml.safe_load(raw) if raw else ""
    parts = _path_parts(path)
    node: Any = doc
    for i, part in enumerate(parts[:-1]):
        nxt = parts[i + 1]
        try:
            if isinstance(node, list):
                node = node[part]
            else:
                node = node.setdefault(part, [] if isinstance(nxt, int) else {})
        except (IndexError, TypeError, KeyError):
            raise SpecError([(path, "no such element to override")]) from None
    try:
        node[parts[-1]] = value
    except (IndexError, TypeError):
        raise SpecError([(path, "no such element to override")]) from None


def load_spec_dict(path: str | Path) -> dict[str, Any]:
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as e:
        raise SpecError([("", f"cannot read spec: {e.strerror}")], str(p)) from None
    try:
        doc = yaml.safe_load(text)  # YAML is a superset of JSON
    except yaml.YAMLError as e:
        raise SpecError([("", f"not valid YAML/JSON: {e}")], str(p)) from None
    if not isinstance(doc, dict):
        raise SpecError([("", "a spec is a mapping with `pipeline`, `source`, ...")], str(p))
    try:
        return expand_environment(doc)  # ${NAME:-default} from the environment
    except MissingVariableError as e:
        raise SpecError([(e.path, str(e))], str(p)) from None


def build_spec(doc: dict[str, Any], base_dir: str | Path | None = None,
               source: str = "spec") -> PipelineSpec:
    """The validated spec of a parsed document: keys and values (pydantic), then every
    piece of user code it names, resolved and checked (``model.user_code``)."""
    try:
        spec = PipelineSpec.model_validate(doc)
    except ValidationError as e:
        raise SpecError(format_validation_error(e), source) from None
    problems = user_code_problems(spec)
    if problems:
        raise SpecError(problems, source)
    if base_dir is not None:
        spec.base_dir = str(base_dir)
    problems = spec.output_path_problems()  # needs base_dir: relative paths resolve by it
    if problems:
        raise SpecError(problems, source)
    return spec


def load_spec(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> PipelineSpec:
    """The validated spec of a file, with ``--set`` overrides applied first."""
    doc = load_spec_dict(path)
    for assignment in overrides:
        apply_override(doc, assignment)
    return build_spec(doc, Path(path).resolve().parent, str(path))
