"""What differs between a topic on the broker and its ``TopicConfig`` -- pure, no I/O.

``KafkaAdminManager`` (admin.py) reads a topic back from the broker as a ``TopicState``
and compares it here, setting by setting; the same comparison runs again after every
change it makes, so a report never says "changed" unless the broker, asked again, says
so. Only what the config manages is compared (a setting left out is the broker's
business). Which differences ``topics apply`` may fix, and which it never touches:

- partitions *fewer* than wanted: added when asked (``add_partitions``); Kafka cannot
  remove partitions, so *more* than wanted is reported and left;
- replication factor: never changed (moving replicas is a reassignment, an operator's
  decision with its own tool), only reported;
- configs (retention, cleanup policy, compression, min.insync.replicas, others): set when
  asked (``alter_configs``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from surestream.model.durations import UNIT_MS
from surestream.model.topics import TYPED_CONFIGS, TopicConfig

#: the file's name of each Kafka config that has a typed setting
SETTING_OF = {kafka: name for name, kafka in TYPED_CONFIGS.items()}


@dataclass(frozen=True)
class TopicState:
    """A topic as the broker describes it. ``replication_factor`` counts the *distinct*
    brokers holding each partition (the fewest over the partitions): a broker listed twice
    for one partition holds one copy, not two. ``configs`` is what describe_configs
    returned (Apache Kafka: every config; tansu: only those set on the topic)."""

    name: str
    partitions: int
    replication_factor: int | None
    replicas_listed: int | None = None  # the longest replica list, duplicates included
    configs: dict[str, str] = field(default_factory=dict)


class Outcome(Enum):
    """What became of one differing setting."""

    CHANGED = "changed"            # set, and read back as wanted
    WOULD_CHANGE = "would change"  # a dry run: it would be set
    LEFT = "not changed"           # changeable, but not asked for
    CANNOT = "cannot be changed"   # apply never changes it
    REFUSED = "refused by the broker"
    NOT_KEPT = "not kept by the broker"  # accepted, but read back otherwise

    @property
    def resolved(self) -> bool:
        return self in (Outcome.CHANGED, Outcome.WOULD_CHANGE)


@dataclass(frozen=True)
class Difference:
    """One setting whose value on the broker is not the wanted one."""

    setting: str           # the file's name: partitions, retention_ms, or a Kafka config
    wanted: str
    found: str | None      # None: the broker reports no value
    outcome: Outcome
    note: str = ""         # why, or what to do next

    def line(self) -> str:
        found = "not set" if self.found is None else self.found
        text = f"{self.setting}: wanted {self.wanted}, found {found} -- {self.outcome.value}"
        return f"{text} ({self.note})" if self.note else text


def human_ms(value: str | None) -> str | None:
    """``604800000`` -> ``604800000 (7d)``: retentions are read in days, not millis."""
    if value is None or not value.lstrip("-").isdigit() or int(value) <= 0:
        return value
    ms = int(value)
    for unit in ("y", "d", "h", "m", "s"):  # 7d, not 1w: retentions are said in days
        if ms % UNIT_MS[unit] == 0:
            return f"{ms} ({ms // UNIT_MS[unit]}{unit})"
    return value


def normalized(config: str, value: str | None) -> str | None:
    """A config's value as compared: ``delete,compact`` and ``compact,delete`` are one
    cleanup policy."""
    if value is None:
        return None
    if config == "cleanup.policy":
        return ",".join(sorted(p.strip() for p in value.split(",") if p.strip()))
    return value.strip()


def differences(wanted: TopicConfig, state: TopicState, *, add_partitions: bool = False,
                alter_configs: bool = False) -> list[Difference]:
    """Every managed setting of ``wanted`` that ``state`` does not have, each with what
    ``apply`` would do about it: WOULD_CHANGE when it is changeable and asked for
    (the caller makes the change and compares again), LEFT or CANNOT otherwise."""
    change = Outcome.WOULD_CHANGE
    found: list[Difference] = []
    if state.partitions < wanted.partitions:
        found.append(Difference(
            "partitions", str(wanted.partitions), str(state.partitions),
            change if add_partitions else Outcome.LEFT,
            "" if add_partitions else "--add-partitions adds them; keys then map to "
                                      "other partitions"))
    elif state.partitions > wanted.partitions:
        found.append(Difference("partitions", str(wanted.partitions), str(state.partitions),
                                Outcome.CANNOT, "Kafka cannot remove partitions; create a "
                                                "new topic and move the data"))
    rf = wanted.replication_factor
    if rf is not None and state.replication_factor != rf:
        listed = state.replicas_listed
        shown = str(state.replication_factor)
        if listed is not None and listed != state.replication_factor:
            shown += f" distinct broker(s), listed {listed} times"
        found.append(Difference("replication_factor", str(rf), shown, Outcome.CANNOT,
                                "apply does not move replicas: reassign partitions "
                                "(kafka-reassign-partitions), or give fewer with "
                                "--replication-factor"))
    for config, value in wanted.kafka_configs().items():
        have = state.configs.get(config)
        if normalized(config, have) == normalized(config, value):
            continue
        setting = SETTING_OF.get(config, config)
        timed = config.endswith(".ms")
        found.append(Difference(
            setting, (human_ms(value) if timed else value) or value,
            human_ms(have) if timed else have,
            change if alter_configs else Outcome.LEFT,
            "" if alter_configs else "--alter sets it"))
    return found
