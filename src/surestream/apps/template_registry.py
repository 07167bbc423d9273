"""The pipeline templates surestream ships, and how one becomes a spec file.

A template is a Python factory ``f(*, **params) -> dict``: keyword-only parameters whose
defaults are the seed's settings, returning a spec dict that ``surestream validate`` accepts
(HELPERS.md, "Seed systems"). The registry names each one by ``"module:function"`` and
imports it only when it is used, so a template whose module is missing (not installed, or
not written yet) is reported as unavailable instead of breaking ``surestream templates``.

A template renders to YAML as a header comment (name, description, every parameter with
the value used and its default) followed by ``yaml.safe_dump`` of the factory's dict. The
shipped file ``apps/templates/<name>.yaml`` is that rendering with the defaults; a test
holds the two equal, so the YAML a user reads is the spec the factory builds.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from surestream.model.feed_profile import FeedProfile

#: where the shipped YAML of each template lives
SHIPPED_DIR = Path(__file__).resolve().parent / "templates"


@dataclass(frozen=True)
class Template:
    """A registered template: its factory as ``"module:function"`` and one line on it."""

    factory: str
    description: str


TEMPLATES: dict[str, Template] = {
    "hardened_iso_streaming": Template(
        "surestream.apps.energy.iso_template:hardened_iso_streaming",
        "ISO real-time 5-minute LMP: 10 min watermark, dedup, curated rt_lmp_5m to Iceberg "
        "(write-audit-publish) and ClickHouse, late records quarantined"),
    "vendor_ticks": Template(
        "surestream.apps.energy.ticks_template:vendor_ticks",
        "high-frequency vendor ticks: 30 s watermark, dedup [vendor, symbol, tick_id] "
        "within 1 min, late ticks quarantined"),
    "payments": Template(
        "surestream.apps.payments.template:payments",
        "payments exactly-once: dedup by transaction_id, 1 h watermark, fraud indicators, "
        "per-minute metrics, PostgreSQL tables"),
}


class TemplateError(ValueError):
    """A template that cannot be used: unknown, unavailable, or given bad parameters."""


def _entry(name: str, registry: Mapping[str, Template]) -> Template:
    try:
        return registry[name]
    except KeyError:
        raise TemplateError(f"no template {name!r}; the templates are: "
                            + ", ".join(registry)) from None


def load_factory(name: str, registry: Mapping[str, Template] = TEMPLATES
                 ) -> Callable[..., dict[str, Any]]:
    """The template's factory, imported now; unavailable -> ``TemplateError`` saying why."""
    entry = _entry(name, registry)
    module_name, _, function = entry.factory.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        raise TemplateError(f"template {name!r} is not available: importing "
                            f"{module_name} failed ({e})") from None
    factory = getattr(module, function, None)
    if not callable(factory):
        raise TemplateError(f"template {name!r} is not available: {module_name} has no "
                            f"function {function!r}")
    return factory


def available(name: str, registry: Mapping[str, Template] = TEMPLATES) -> str | None:
    """None if the template can be used, else why not (one line)."""
    try:
        load_factory(name, registry)
    except TemplateError as e:
        return str(e)
    return None


def parameters(name: str, registry: Mapping[str, Template] = TEMPLATES) -> dict[str, Any]:
    """The factory's parameters and their defaults, in signature order."""
    factory = load_factory(name, registry)
    return {p.name: (None if p.default is inspect.Parameter.empty else p.default)
            for p in inspect.signature(factory).parameters.values()
            if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)}


def resolve_parameters(name: str, profile: FeedProfile | None = None,
                       params: Mapping[str, Any] | None = None,
                       registry: Mapping[str, Template] = TEMPLATES) -> dict[str, Any]:
    """The keyword arguments to call the factory with: the profile's settings, then
    ``params`` over them. A key the factory does not take is refused, naming it."""
    known = parameters(name, registry)
    chosen: dict[str, Any] = {}
    if profile is not None:
        if profile.template is not None and profile.template != name:
            raise TemplateError(f"profile {profile.name or ''!r} is for template "
                                f"{profile.template!r}, not {name!r}")
        for key, value in profile.parameters().items():
            if key not in known:
                raise TemplateError(f"profile key {key!r}: template {name!r} has no such "
                                    "parameter; its parameters are: " + ", ".join(known))
            chosen[key] = value
    for key, value in (params or {}).items():
        if key not in known:
            raise TemplateError(f"--param {key}: template {name!r} has no such parameter; "
                                "its parameters are: " + ", ".join(known))
        chosen[key] = value
    return chosen


def build(name: str, profile: FeedProfile | None = None,
          params: Mapping[str, Any] | None = None,
          registry: Mapping[str, Template] = TEMPLATES) -> dict[str, Any]:
    """The spec dict of the template with the profile and parameters applied."""
    chosen = resolve_parameters(name, profile, params, registry)
    try:
        return load_factory(name, registry)(**chosen)
    except (TypeError, ValueError) as e:
        raise TemplateError(f"template {name!r}: {e}") from None


def _comment_value(value: Any) -> str:
    return yaml.safe_dump(value, default_flow_style=True, width=10_000).strip() \
        .removesuffix("\n...").removesuffix("...").strip()


class _PlainDumper(yaml.SafeDumper):
    """A safe dumper without anchors and aliases: a factory that reuses one list or dict
    (the same key columns for two outputs) must still render as plain, editable YAML, not
    ``&id001`` / ``*id001``."""

    def ignore_aliases(self, data: object) -> bool:
        return True


def render(name: str, profile: FeedProfile | None = None,
           params: Mapping[str, Any] | None = None,
           registry: Mapping[str, Template] = TEMPLATES) -> str:
    """The template as a YAML spec file: a header comment, then the spec."""
    entry = _entry(name, registry)
    defaults = parameters(name, registry)
    chosen = resolve_parameters(name, profile, params, registry)
    spec = build(name, profile, params, registry)
    lines = [f"# surestream template {name}: {entry.description}",
             "# Edit freely, then: surestream validate FILE; surestream run FILE",
             f"# (made by: surestream templates write {name}; factory {entry.factory})"]
    if profile is not None:
        lines.append(f"# feed profile: {profile.name or 'from file'}"
                     + (f" ({profile.description})" if profile.description else ""))
    lines.append("# parameters (--param NAME=VALUE):")
    for key, default in defaults.items():
        if key in chosen and chosen[key] != default:
            lines.append(f"#   {key}: {_comment_value(chosen[key])}"
                         f"  (default: {_comment_value(default)})")
        else:
            lines.append(f"#   {key}: {_comment_value(default)}  (default)")
    body = yaml.dump(spec, Dumper=_PlainDumper, sort_keys=False, default_flow_style=False,
                     width=100)
    return "\n".join(lines) + "\n" + body


def shipped_path(name: str) -> Path:
    """The shipped YAML of a template (its rendering with the defaults)."""
    return SHIPPED_DIR / f"{name}.yaml"
