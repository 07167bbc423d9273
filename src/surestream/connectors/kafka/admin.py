"""Topics as code: ``KafkaAdminManager`` creates, describes, lists and compares topics.

The event platform's plan names two pieces: ``TopicConfig`` (one topic's wanted settings;
model/topics.py, re-exported here) and ``KafkaAdminManager``. ``apply`` is the whole of
"topics as code", in this order, for a list of configs:

1. read every named topic back from the broker (metadata, then describe_configs);
2. create the missing ones (partitions, replication factor, configs), in one request;
3. compare each existing topic with its config (topic_diff.py) and, only when asked,
   add partitions (``add_partitions``) and set configs (``alter_configs``);
4. read every created or changed topic back and compare again: a setting the broker
   accepted but does not report as wanted is ``NOT_KEPT``, never "changed".

It never deletes a topic, a partition or a config, and never moves replicas. The result
is one ``TopicReport`` per config; ``report.ok`` is false when the topic still differs
(or would, in a dry run) from its config.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    NewPartitions,
    NewTopic,
    ResourceType,
)

from surestream.connectors.kafka.broker import resolve_bootstrap
from surestream.connectors.kafka.topic_diff import (
    SETTING_OF,
    Difference,
    Outcome,
    TopicState,
    differences,
)
from surestream.model.topics import TopicConfig, load_topics

__all__ = ["KafkaAdminManager", "TopicAdminError", "TopicConfig", "TopicReport",
           "TopicState", "load_topics"]


#: a topic the broker created (or another client did) but does not describe in time
NOT_DESCRIBED = "the broker does not describe the topic (yet); run apply again to compare it"


class TopicAdminError(Exception):
    """The cluster cannot be reached or answered with an error for a whole request."""


@dataclass
class TopicReport:
    """What ``apply`` found and did for one topic.

    ``status``: created, would create, matches, changed, would change, differs, refused.
    ``differences`` lists every setting that differed, each with its outcome."""

    name: str
    status: str
    differences: list[Difference] = field(default_factory=list)
    problem: str = ""  # a refusal of the whole topic (its creation), or it went missing

    @property
    def ok(self) -> bool:
        """Does the topic have (or, in a dry run, would it have) every wanted setting?"""
        return not self.problem and all(d.outcome.resolved for d in self.differences)

    def lines(self) -> list[str]:
        head = self.status
        if self.problem:
            head += f": {self.problem}"
        elif self.status == "created" and not self.ok:
            head = "created, but the broker did not keep every setting"
        return [f"{self.name}: {head}"] + [f"    {d.line()}" for d in self.differences]


def _error_text(e: BaseException) -> str:
    err = e.args[0] if isinstance(e, KafkaException) and e.args else None
    if isinstance(err, KafkaError):
        return f"{err.name()}: {err.str()}"
    return f"{type(e).__name__}: {e}"


def _already_exists(e: BaseException) -> bool:
    err = e.args[0] if isinstance(e, KafkaException) and e.args else None
    return isinstance(err, KafkaError) and err.code() == KafkaError.TOPIC_ALREADY_EXISTS


class KafkaAdminManager:
    """Topics of one cluster. ``bootstrap``: as every surestream command resolves it
    (given, else ``$SURESTREAM_BOOTSTRAP``, else the running ``surestream broker``)."""

    def __init__(self, bootstrap: str | None = None, *,
                 client_config: dict[str, Any] | None = None, timeout_s: float = 30.0) -> None:
        self.bootstrap = resolve_bootstrap(bootstrap, "--bootstrap")
        self.timeout_s = timeout_s
        self._admin = AdminClient({"bootstrap.servers": self.bootstrap,
                                   **(client_config or {})})

    # -- reading ---------------------------------------------------------------------------
    def _metadata(self) -> dict[str, Any]:
        try:
            return dict(self._admin.list_topics(timeout=self.timeout_s).topics)
        except KafkaException as e:
            raise TopicAdminError(f"cannot read the topics of {self.bootstrap}: "
                                  f"{_error_text(e)}; is the cluster running?") from None

    def _configs(self, names: Sequence[str]) -> dict[str, dict[str, str]]:
        if not names:
            return {}
        futures = self._admin.describe_configs(
            [ConfigResource(ResourceType.TOPIC, n) for n in names],
            request_timeout=self.timeout_s)
        found: dict[str, dict[str, str]] = {}
        for resource, future in futures.items():
            try:
                entries = future.result(timeout=self.timeout_s)
            except KafkaException as e:
                raise TopicAdminError(f"describe_configs of topic {resource.name!r} "
                                      f"failed: {_error_text(e)}") from None
            found[resource.name] = {k: v.value for k, v in entries.items()
                                    if v.value is not None and not v.is_sensitive}
        return found

    @staticmethod
    def _state(name: str, meta: Any, configs: dict[str, str]) -> TopicState:
        replicas = [list(p.replicas) for p in meta.partitions.values()]
        return TopicState(
            name, len(replicas),
            min((len(set(r)) for r in replicas), default=None),
            max((len(r) for r in replicas), default=None), dict(configs))

    def list_topics(self, include_internal: bool = False) -> list[TopicState]:
        """Every topic (``__``-prefixed internal ones only if asked), by name, without
        configs (``describe`` reads those)."""
        meta = self._metadata()
        return [self._state(n, m, {}) for n, m in sorted(meta.items())
                if m.error is None and (include_internal or not n.startswith("__"))]

    def describe(self, names: Iterable[str]) -> dict[str, TopicState | None]:
        """Each named topic as the broker describes it; None for a topic it does not have."""
        names = list(names)
        meta = self._metadata()
        present = [n for n in names if n in meta and meta[n].error is None
                   and meta[n].partitions]
        configs = self._configs(present)
        return {n: self._state(n, meta[n], configs.get(n, {})) if n in present else None
                for n in names}

    def diff(self, config: TopicConfig) -> list[Difference] | None:
        """What differs between the topic and ``config`` (outcomes: what ``apply`` without
        flags would leave); None when the topic does not exist."""
        state = self.describe([config.name])[config.name]
        return None if state is None else differences(config, state)

    # -- changing --------------------------------------------------------------------------
    def create_topics(self, configs: Sequence[TopicConfig]) -> list[TopicReport]:
        """Create the topics that are missing; existing ones are compared, not changed."""
        return self.apply(configs)

    def apply(self, configs: Sequence[TopicConfig], *, dry_run: bool = False,
              add_partitions: bool = False, alter_configs: bool = False) -> list[TopicReport]:
        """Make the cluster hold ``configs`` (the module docstring: the four steps)."""
        states = self.describe(c.name for c in configs)
        missing = [c for c in configs if states[c.name] is None]
        reports: dict[str, TopicReport] = {}
        if dry_run:
            reports.update({c.name: TopicReport(c.name, "would create") for c in missing})
        else:
            reports.update(self._create(missing, states))
        for config in configs:
            state = states[config.name]
            if config.name in reports:
                continue
            if state is None:  # created by another client meanwhile, yet not described
                reports[config.name] = TopicReport(config.name, "differs",
                                                   problem=NOT_DESCRIBED)
                continue
            found = differences(config, state, add_partitions=add_partitions,
                                alter_configs=alter_configs)
            if not found:
                reports[config.name] = TopicReport(config.name, "matches")
            elif dry_run or not any(d.outcome is Outcome.WOULD_CHANGE for d in found):
                reports[config.name] = TopicReport(config.name, self._status(found), found)
            else:
                reports[config.name] = self._change(config, found)
        return [reports[c.name] for c in configs]

    @staticmethod
    def _status(found: list[Difference]) -> str:
        if all(d.outcome.resolved for d in found):
            return "would change" if any(d.outcome is Outcome.WOULD_CHANGE for d in found) \
                else "changed"
        return "differs"

    def _create(self, missing: Sequence[TopicConfig],
                states: dict[str, TopicState | None]) -> dict[str, TopicReport]:
        """Create ``missing`` in one request and read each back: a setting the broker did
        not keep is reported NOT_KEPT. A topic another client created meanwhile is left in
        ``states`` as None and re-read, then compared like any existing topic."""
        if not missing:
            return {}
        futures = self._admin.create_topics(
            [NewTopic(c.name, c.partitions, c.replication_factor or -1,
                      config=c.kafka_configs()) for c in missing],
            request_timeout=self.timeout_s, operation_timeout=self.timeout_s)
        reports: dict[str, TopicReport] = {}
        created: list[TopicConfig] = []
        raced: list[TopicConfig] = []
        for c in missing:
            try:
                futures[c.name].result(timeout=self.timeout_s)
                created.append(c)
            except KafkaException as e:
                if _already_exists(e):
                    raced.append(c)
                else:
                    reports[c.name] = TopicReport(c.name, "refused", problem=_error_text(e))
        if raced:
            states.update(self.describe(c.name for c in raced))
        for c, state in self._read_back(created, lambda c, s: s.partitions >= c.partitions):
            if state is None:
                reports[c.name] = TopicReport(c.name, "created", problem=NOT_DESCRIBED)
                continue
            left = [replace(d, outcome=Outcome.NOT_KEPT,
                            note="created with the wanted value, read back with this one"
                                 + (f"; {d.note}" if d.setting == "replication_factor" else ""))
                    for d in differences(c, state)]
            reports[c.name] = TopicReport(c.name, "created", left)
        return reports

    def _read_back(self, configs: Sequence[TopicConfig],
                   settled: Callable[[TopicConfig, TopicState], bool],
                   ) -> list[tuple[TopicConfig, TopicState | None]]:
        """Each config's topic as the broker now describes it, waiting (up to the timeout)
        until ``settled(config, state)`` holds for every one: a new topic or partition
        can take a moment to show in the metadata of a multi-broker cluster. A state is
        None for a topic the broker still does not describe at the deadline."""
        deadline = time.monotonic() + self.timeout_s
        while True:
            states = self.describe(c.name for c in configs)
            done = all(states[c.name] is not None and settled(c, states[c.name])
                       for c in configs)
            if done or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        return [(c, states[c.name]) for c in configs]

    def _change(self, config: TopicConfig, found: list[Difference]) -> TopicReport:
        """Make the WOULD_CHANGE differences, then read back: CHANGED only for a setting
        the broker now reports as wanted."""
        refused: dict[str, str] = {}
        if any(d.setting == "partitions" and d.outcome is Outcome.WOULD_CHANGE for d in found):
            future = self._admin.create_partitions(
                [NewPartitions(config.name, config.partitions)],
                request_timeout=self.timeout_s, operation_timeout=self.timeout_s)[config.name]
            try:
                future.result(timeout=self.timeout_s)
            except KafkaException as e:
                refused["partitions"] = _error_text(e)
        wanted = config.kafka_configs()
        to_set = {d.setting for d in found if d.outcome is Outcome.WOULD_CHANGE
                  and d.setting != "partitions"}
        entries = [ConfigEntry(k, v, incremental_operation=AlterConfigOpType.SET)
                   for k, v in wanted.items()
                   if SETTING_OF.get(k, k) in to_set]
        if entries:
            resource = ConfigResource(ResourceType.TOPIC, config.name,
                                      incremental_configs=entries)
            try:
                future = self._admin.incremental_alter_configs(
                    [resource], request_timeout=self.timeout_s)[resource]
                future.result(timeout=self.timeout_s)
            except KafkaException as e:
                refused.update({d.setting: _error_text(e) for d in found
                                if d.setting in to_set})

        # wait only for the changes made: a difference left alone (partitions without
        # --add-partitions) never settles, and waiting for it cost the whole timeout
        asked = {d.setting for d in found if d.outcome is Outcome.WOULD_CHANGE} - set(refused)

        def settled(c: TopicConfig, s: TopicState) -> bool:  # every asked change visible
            return not any(d.setting in asked and d.outcome is Outcome.WOULD_CHANGE
                           for d in differences(c, s, add_partitions=True,
                                                alter_configs=True))

        (_, state), = self._read_back([config], settled)
        if state is None:
            return TopicReport(config.name, "differs", found, problem=NOT_DESCRIBED)
        remaining = {d.setting: d for d in differences(config, state)}
        outcomes = []
        for d in found:
            if d.outcome is not Outcome.WOULD_CHANGE:
                outcomes.append(d)
            elif d.setting in refused:
                outcomes.append(replace(d, outcome=Outcome.REFUSED, note=refused[d.setting]))
            elif d.setting in remaining:
                outcomes.append(replace(d, found=remaining[d.setting].found,
                                        outcome=Outcome.NOT_KEPT,
                                        note="the broker accepted the change but reports "
                                             "the value above"))
            else:
                outcomes.append(replace(d, outcome=Outcome.CHANGED, note=""))
        return TopicReport(config.name, self._status(outcomes), outcomes)

