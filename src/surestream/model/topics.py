"""Topics as code: ``TopicConfig`` (one topic's wanted settings) and the topics file.

A topics file (YAML) names each topic and the settings surestream manages for it::

    defaults:                 # optional: every topic's settings unless it sets its own
      replication_factor: 3
      min_insync_replicas: 2
    topics:
      raw.trades:
        partitions: 8
        retention_ms: 7d      # milliseconds, or a number and a unit (model/durations.py)
      raw.orderbook: {}       # the defaults only

A setting left out (``None``) is not managed: it is neither sent at creation (the broker's
default applies) nor compared. ``configs`` holds any other topic config by its Kafka name
(``max.message.bytes: 2097152``); one whose name ends in ``.ms`` takes a duration too.
Errors name the field by its path in the file (``topics["raw.trades"].partitions``), as
the spec loader does, so ``surestream topics apply`` prints one line per problem.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from surestream.model.durations import parse_duration_ms
from surestream.model.loader import SpecError
from surestream.model.problems import SpecProblems, key_path

#: Kafka's rule for a topic name (and "." / ".." are refused)
TOPIC_NAME = re.compile(r"^[A-Za-z0-9._-]{1,249}$")
CLEANUP_POLICIES = ("delete", "compact", "compact,delete")
COMPRESSION_TYPES = ("producer", "uncompressed", "gzip", "snappy", "lz4", "zstd")
#: the typed settings and the Kafka config each one is
TYPED_CONFIGS = {"retention_ms": "retention.ms", "cleanup_policy": "cleanup.policy",
                 "compression_type": "compression.type",
                 "min_insync_replicas": "min.insync.replicas"}


def _retention(value: object) -> object:
    return None if value is None else parse_duration_ms(value, allow_forever=True)


def _cleanup_policy(value: object) -> object:
    """``compact,delete``, ``delete,compact`` and ``[compact, delete]`` are one policy."""
    if isinstance(value, list | tuple):
        value = ",".join(str(v) for v in value)
    if isinstance(value, str):
        return ",".join(sorted(p.strip() for p in value.lower().split(",") if p.strip()))
    return value


Retention = Annotated[int | None, BeforeValidator(_retention),
                      Field(description="milliseconds, or 7d / 90d / 2y; -1: forever")]
CleanupPolicy = Annotated[Literal["delete", "compact", "compact,delete"] | None,
                          BeforeValidator(_cleanup_policy)]


class TopicSettings(BaseModel):
    """The settings of one topic (or the file's ``defaults``); ``None``: not managed."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    partitions: int | None = Field(None, ge=1, description="partition count")
    replication_factor: int | None = Field(None, ge=1, description="replicas per partition")
    retention_ms: Retention = None
    cleanup_policy: CleanupPolicy = None
    compression_type: Literal["producer", "uncompressed", "gzip", "snappy", "lz4",
                              "zstd"] | None = None
    min_insync_replicas: int | None = Field(None, ge=1)
    configs: dict[str, str] = Field(default_factory=dict,
                                    description="other topic configs by their Kafka name")

    @field_validator("configs", mode="before")
    @classmethod
    def _configs_as_strings(cls, value: object) -> object:
        """Values as Kafka takes them (strings); ``*.ms`` keys accept durations; a config
        with a typed setting of its own must use that (one place for each value)."""
        if not isinstance(value, dict):
            return value
        by_config = {kafka: field for field, kafka in TYPED_CONFIGS.items()}
        out: dict[str, str] = {}
        for key, raw in value.items():
            if key in by_config:
                raise ValueError(f"{key!r}: set it as `{by_config[key]}`, not in configs")
            if raw is None or isinstance(raw, dict | list):
                raise ValueError(f"{key!r}: give a single value (a string or a number)")
            if isinstance(raw, bool):
                raw = str(raw).lower()
            elif str(key).endswith(".ms"):
                try:
                    raw = parse_duration_ms(raw, allow_forever=True)
                except ValueError as e:
                    raise ValueError(f"{key!r}: {e}") from None
            out[str(key)] = str(raw)
        return out


class TopicConfig(TopicSettings):
    """One topic and the settings wanted for it (the event platform's ``TopicConfig``).

    ``partitions`` defaults to 1 and ``replication_factor`` to the broker's default;
    ``min_insync_replicas`` may not exceed ``replication_factor`` (a producer with
    ``acks=all`` could never write)."""

    name: str
    partitions: int = Field(1, ge=1, description="partition count")

    @field_validator("name")
    @classmethod
    def _kafka_name(cls, name: str) -> str:
        if not TOPIC_NAME.match(name) or name in (".", ".."):
            raise ValueError(f"{name!r} is not a Kafka topic name: 1 to 249 of the "
                             "characters A-Z a-z 0-9 . _ -")
        return name

    @model_validator(mode="after")
    def _insync_within_replication(self) -> TopicConfig:
        if (self.min_insync_replicas is not None and self.replication_factor is not None
                and self.min_insync_replicas > self.replication_factor):
            raise SpecProblems([("min_insync_replicas", f"{self.min_insync_replicas} "
                                 f"exceeds replication_factor {self.replication_factor}: "
                                 "producers with acks=all could never write; lower it or "
                                 "add replicas")])
        return self

    def kafka_configs(self) -> dict[str, str]:
        """Every managed config by its Kafka name, as strings (what is sent and compared)."""
        typed = {kafka: getattr(self, field) for field, kafka in TYPED_CONFIGS.items()}
        return {**{k: str(v) for k, v in typed.items() if v is not None}, **self.configs}

    def with_replication(self, replication_factor: int) -> TopicConfig:
        """This topic for a cluster of fewer brokers: ``replication_factor`` replicas and
        ``min_insync_replicas`` capped at it."""
        insync = self.min_insync_replicas
        return self.model_copy(update={
            "replication_factor": replication_factor,
            "min_insync_replicas": None if insync is None else min(insync,
                                                                   replication_factor)})

    def renamed(self, prefix: str) -> TopicConfig:
        """This topic under ``prefix + name`` (a developer's or a test's namespace)."""
        return TopicConfig.model_validate({**self.model_dump(), "name": prefix + self.name})


class TopicsFile(BaseModel):
    """A topics file: optional ``defaults`` and the ``topics`` by name."""

    model_config = ConfigDict(extra="forbid")

    defaults: TopicSettings = Field(default_factory=TopicSettings)
    topics: dict[str, TopicSettings | None] = Field(min_length=1)


def _path(loc: tuple[Any, ...]) -> str:
    """pydantic's location as the file writes it: ``topics["raw.trades"].partitions``."""
    out = ""
    for part in loc:
        out = f"{out}[{part}]" if isinstance(part, int) else key_path(out, str(part))
    return out


def _joined(*parts: str) -> str:
    """``topics["a.b"]`` + ``partitions`` -> ``topics["a.b"].partitions``."""
    out = ""
    for part in filter(None, parts):
        out += part if not out or part.startswith("[") else "." + part
    return out


def _problems(err: ValidationError, prefix: str = "") -> list[tuple[str, str]]:
    """One ``(field path, reason)`` per error, below ``prefix``."""
    found = []
    for e in err.errors():
        path = _joined(prefix, _path(e["loc"]))
        rule = (e.get("ctx") or {}).get("error")
        if isinstance(rule, SpecProblems):  # a rule across settings names its own field
            found += [(_joined(path, own), reason) for own, reason in rule.problems]
            continue
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            msg = "unknown key (the keys are in docs/kafka.md, \"Topics as code\")"
        elif e["type"] == "missing":
            msg = "required key is missing"
        found.append((path, msg))
    return found


def topic_configs(doc: object, source: str = "topics file") -> list[TopicConfig]:
    """The validated topics of a parsed topics file, each with the defaults applied.
    Raises ``SpecError`` with one ``(field path, reason)`` per problem."""
    if not isinstance(doc, dict):
        raise SpecError([("", "a topics file is a mapping with `topics` (and optionally "
                              "`defaults`)")], source)
    try:
        parsed = TopicsFile.model_validate(doc)
    except ValidationError as e:
        raise SpecError(_problems(e), source) from None
    defaults = parsed.defaults.model_dump(exclude_unset=True)
    configs, problems = [], []
    for name, settings in parsed.topics.items():
        own = settings.model_dump(exclude_unset=True) if settings is not None else {}
        merged = {**defaults, **own, "configs": {**defaults.get("configs", {}),
                                                 **own.get("configs", {})}}
        try:
            configs.append(TopicConfig.model_validate({"name": name, **merged}))
        except ValidationError as e:
            problems += _problems(e, key_path("topics", name))
    if problems:
        raise SpecError(problems, source)
    return configs


def load_topics(path: str | Path) -> list[TopicConfig]:
    """The topics of a topics file (YAML or JSON), validated."""
    p = Path(path)
    try:
        doc = yaml.safe_load(p.read_text())
    except OSError as e:
        raise SpecError([("", f"cannot read the topics file: {e.strerror}")], str(p)) from None
    except yaml.YAMLError as e:
        raise SpecError([("", f"not valid YAML: {e}")], str(p)) from None
    return topic_configs(doc, str(p))


#: the topic maps shipped with surestream (src/surestream/data/topics/; not under examples/,
#: whose YAML files are all pipeline specs)
SHIPPED_MAPS = ("trading", "event_platform")


def shipped_topics_file(name: str) -> Path:
    """The file of a shipped topic map: ``trading`` or ``event_platform`` (or
    ``event-platform``)."""
    from importlib import resources

    stem = name.replace("-", "_")
    if stem not in SHIPPED_MAPS:
        raise FileNotFoundError(f"no shipped topic map {name!r}: {', '.join(SHIPPED_MAPS)}")
    return Path(str(resources.files("surestream") / "data" / "topics" / f"{stem}.yaml"))
