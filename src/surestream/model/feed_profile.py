"""Feed profiles: the three numbers the hardening plan tunes per feed, as one checked value.

The plan's "Configuration" block gives each kind of feed its operator settings::

    iso_rt_lmp:
      watermark_max_out_of_order_ms: 600000   # 10 min
      dedup_window_ms: 600000                 # 10 min
      state_ttl_ms: 3600000                   # 1 hour

A profile is applied to a template (``template_registry.render_spec``): its keys are the
template factory's parameters of the same names, so one template serves every feed of its
kind. A profile file holds one profile, or a mapping name -> profile (the plan's shape).
Unknown keys are refused with their name (a typo such as ``dedup_windows_ms`` would
otherwise leave the template's default in place without a word).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from surestream.model.steps import NonNegativeMs, PositiveMs

#: the keys a profile hands to a template factory, in this order
PARAMETER_KEYS = ("watermark_max_out_of_order_ms", "dedup_window_ms", "state_ttl_ms",
                  "idle_timeout_ms")


class FeedProfile(BaseModel):
    """The operator settings of one feed (all durations in milliseconds)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    watermark_max_out_of_order_ms: NonNegativeMs = Field(
        description="the watermark's bounded out-of-orderness: a record this far behind the "
                    "newest event time is still on time; later ones are quarantined")
    dedup_window_ms: PositiveMs = Field(
        description="a record less than this after the first of its key is a duplicate")
    state_ttl_ms: PositiveMs = Field(
        description="how long a key is remembered (event time); at least dedup_window_ms")
    idle_timeout_ms: PositiveMs | None = Field(
        None, description="a live partition silent this long stops holding the watermark "
                          "back (the watermark's idle_source_timeout_ms)")
    template: Annotated[str, Field(min_length=1)] | None = Field(
        None, description="the template this profile is for (`surestream templates list`)")
    name: Annotated[str, Field(min_length=1)] | None = Field(
        None, description="the profile's name (the key in a file of several)")
    description: str | None = Field(None, description="what feed it is for")

    @model_validator(mode="after")
    def _ttl_covers_window(self) -> FeedProfile:
        if self.state_ttl_ms < self.dedup_window_ms:
            raise ValueError(
                f"state_ttl_ms ({self.state_ttl_ms}) is shorter than dedup_window_ms "
                f"({self.dedup_window_ms}): a key would be forgotten while it can still "
                "see duplicates; make state_ttl_ms >= dedup_window_ms")
        return self

    def parameters(self) -> dict[str, int]:
        """The template factory's keyword arguments this profile sets."""
        return {k: getattr(self, k) for k in PARAMETER_KEYS if getattr(self, k) is not None}


class FeedProfileError(ValueError):
    """A profile that cannot be used; the message names the file, profile and key."""


def _problems(err: ValidationError) -> str:
    lines = []
    for e in err.errors():
        field = ".".join(str(p) for p in e["loc"]) or "profile"
        if e["type"] == "extra_forbidden":
            msg = ("unknown key; a profile has " + ", ".join(FeedProfile.model_fields))
        elif e["type"] == "missing":
            msg = "required key is missing"
        else:
            msg = e["msg"].removeprefix("Value error, ")
        lines.append(f"{field}: {msg}")
    return "; ".join(lines)


def parse_profile(doc: Any, name: str | None = None, source: str = "profile") -> FeedProfile:
    """One profile from a parsed mapping; errors name ``source``, the profile and the key."""
    if not isinstance(doc, dict):
        raise FeedProfileError(f"{source}: a profile is a mapping with "
                               "watermark_max_out_of_order_ms, dedup_window_ms, state_ttl_ms")
    if name is not None:
        doc = {"name": name, **doc}
    try:
        return FeedProfile.model_validate(doc)
    except ValidationError as e:
        where = f"{source}: profile {name!r}" if name else source
        raise FeedProfileError(f"{where}: {_problems(e)}") from None


def parse_profiles(doc: Any, source: str = "profile") -> dict[str, FeedProfile]:
    """A document holding one profile (its ``name`` or ``default`` is its key) or a
    mapping name -> profile."""
    if not isinstance(doc, dict):
        raise FeedProfileError(f"{source}: not a mapping (one profile, or name -> profile)")
    if any(k in FeedProfile.model_fields for k in doc):
        profile = parse_profile(doc, source=source)
        return {profile.name or "default": profile}
    return {str(n): parse_profile(p, str(n), source) for n, p in doc.items()}


def load_profiles(path: str | Path) -> dict[str, FeedProfile]:
    """The profiles of a YAML/JSON file."""
    p = Path(path)
    try:
        doc = yaml.safe_load(p.read_text())
    except OSError as e:
        raise FeedProfileError(f"{p}: cannot read: {e.strerror}") from None
    except yaml.YAMLError as e:
        raise FeedProfileError(f"{p}: not valid YAML/JSON: {e}") from None
    return parse_profiles(doc, str(p))
