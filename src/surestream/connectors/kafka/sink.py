"""The Kafka sink: a topic, exactly once (transactions) or at least once (idempotent).

**exactly_once** -- one Kafka transaction per checkpoint, no transaction resumption:

    write(data)       encode to messages, buffer in memory
    pre_commit(n)     stage the messages durably (``staging.py``: Arrow IPC, fsynced) and
                      return ``{checkpoint, rows, file, before, run}``
    -- checkpoint n becomes durable --
    commit(c)         in one transaction: produce the staged messages, then commit the
                      *marker* n -- an offset n committed to the marker group
                      ``surestream-marker-<transactional id>`` with
                      ``send_offsets_to_transaction`` -- and commit; drop the staged file
    recover(c, n)     read the marker: n landed -> skip; else produce n again from its
                      staged file; staged files of other checkpoints are dropped

The marker is part of the transaction, so it is visible if and only if n's records are
(to ``read_committed`` readers): "did n land?" has one answer, whatever the crash point.
The transactional id is stable (``surestream-<pipeline>-<output>`` unless given), so
``init_transactions`` at every start fences an older producer still alive with it (a
zombie) and aborts the transaction it left open; a producer that finds itself fenced
stops the run naming the output, and never retries (no "producer fenced" loop).

Each message carries headers saying where it came from: ``surestream.run`` (one id per
run started afresh), ``surestream.checkpoint``, ``surestream.index`` (its place in the
checkpoint), and ``surestream.attempt`` (which produce attempt of that checkpoint, counted
durably). Apache Kafka hides an aborted attempt from ``read_committed`` readers; tansu does
not, and ``reader.py`` then keeps each checkpoint's last attempt only (docs/kafka.md).

**at_least_once** -- an idempotent producer (``enable.idempotence``, ``acks=all``) sends
records as they are written; ``pre_commit`` flushes and fails unless every one was
acknowledged, so a checkpoint never claims a record that is not in the topic. A crash
after the flush and before the checkpoint is durable sends that span again on restart.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from surestream.connectors.committables import checked_committable
from surestream.connectors.file_sinks import OutputOwnershipError
from surestream.connectors.kafka.client_config import client_logger
from surestream.connectors.kafka.delivery import DeliveryStats
from surestream.connectors.kafka.messages import (
    ATTEMPT_HEADER,
    CHECKPOINT_HEADER,
    INDEX_HEADER,
    MAX_MESSAGE_BYTES,
    RUN_HEADER,
    Encoded,
    MessageEncoder,
    OutputKind,
)
from surestream.connectors.kafka.staging import StagingFolder, part_name
from surestream.connectors.sink_protocol import Guarantee, Rejection, SinkRecoveryError

#: seconds a transactional call (init, commit, abort) may take before the run stops
TXN_TIMEOUT_S = 60.0
#: seconds closing a run may wait to abort the transaction it leaves open
ABORT_TIMEOUT_S = 10.0
#: the partition of the output topic whose committed offset in the marker group is the marker
MARKER_PARTITION = 0
#: a transaction's records are counted at its commit; one in this many is timed
LATENCY_SAMPLE = 64
#: error codes that mean another producer with our transactional id took over
_FENCED = {KafkaError._FENCED, KafkaError.PRODUCER_FENCED, KafkaError.INVALID_PRODUCER_EPOCH}


class ProducerFencedError(RuntimeError):
    """Another producer with this output's transactional id took over (a second run of the
    pipeline, or a restarted one): this run stops without committing again."""


class TopicMissingError(RuntimeError):
    """The output's topic does not exist."""


class TopicHoldsEarlierRunError(OutputOwnershipError):
    """A fresh run would add its output after an earlier run's in the same topic."""


class KafkaTopicSink:
    """One ``outputs`` entry of ``type: kafka`` (``model.spec.KafkaSink``)."""

    def __init__(self, spec: Any, *, bootstrap: str, pipeline: str, tag: str,
                 staging: Path, kind: OutputKind = "records") -> None:
        self.spec = spec
        self.bootstrap = bootstrap
        self.topic: str = spec.topic
        self.tag = tag
        self.guarantee: Guarantee = spec.delivery
        self.transactional_id = spec.transactional_id or f"surestream-{pipeline}-{tag}"
        self.marker_group = f"surestream-marker-{self.transactional_id}"
        self.fresh_start: str = getattr(spec, "fresh_start", "refuse")
        self.staging = StagingFolder(staging)
        limit = int(spec.options.get("message.max.bytes", MAX_MESSAGE_BYTES + 512)) - 512
        self.encoder = MessageEncoder(self.describe(), spec.key_fields, spec.header_fields,
                                      kind, limit)
        self.records = 0
        self.run_id = ""
        self._buffer: list[Encoded] = []
        #: the newest staged checkpoint's messages, kept for its commit in this process
        self._staged: tuple[int, Encoded] | None = None
        self._rows = 0
        self._epoch = 1  # the checkpoint the records being written belong to
        self._landed = 0  # the newest checkpoint known to have landed (exactly_once)
        self.produce_at: str = getattr(spec, "produce_at", "commit")
        #: ``produce_at: write``: the id the next checkpoint will get (set by the runner;
        #: without it the records are produced at commit, as ``produce_at: commit``)
        self.epoch_of: Callable[[], int] | None = None
        #: the transaction open for ``produce_at: write``: (checkpoint id, attempt), and
        #: how many records were produced into it
        self._open: tuple[int, int] | None = None
        self._open_sent = 0
        #: a durable checkpoint holds this run's id: a restart goes on under it. Until then
        #: (a fresh run's first epoch) records are produced at commit even with
        #: ``produce_at: write`` -- a run killed before its first checkpoint starts afresh
        #: under a new run id, and attempts it had left in the topic would count as records
        #: of a run of their own on a broker that shows aborted transactions (tansu)
        self._run_durable = False
        self._producer: Producer | None = None
        self._marker_reader: Consumer | None = None
        self._delivery_errors: list[str] = []
        #: delivery reports counted for the run's telemetry (``telemetry``)
        self._stats = DeliveryStats()
        #: test hook: called with a point's name inside ``commit`` (crash simulation)
        self.on_point = lambda point: None

    def describe(self) -> str:
        return f"output {self.tag!r} (Kafka topic {self.topic})"

    # -- clients ------------------------------------------------------------------------
    def _producer_config(self) -> dict[str, Any]:
        config: dict[str, Any] = {"bootstrap.servers": self.bootstrap,
                                  "enable.idempotence": True, "acks": "all",
                                  "linger.ms": 5, "partitioner": "murmur2_random",
                                  "logger": client_logger()}
        if self.guarantee == "exactly_once":
            config["transactional.id"] = self.transactional_id
        config.update(self.spec.options)
        return config

    def _check_topic(self) -> None:
        admin = AdminClient({"bootstrap.servers": self.bootstrap})
        meta = admin.list_topics(timeout=30)  # (asking for the one topic may create it)
        topic = meta.topics.get(self.topic)
        if topic is None or topic.error is not None or not topic.partitions:
            raise TopicMissingError(
                f"{self.describe()}: the topic does not exist on {self.bootstrap}; create it "
                "first (`surestream topics apply`, or your cluster's tools) with the "
                "partitions and retention it needs -- surestream never creates it with "
                "broker defaults")

    def _fenced(self, e: KafkaException) -> Exception:
        err = e.args[0]
        if isinstance(err, KafkaError) and (err.code() in _FENCED or err.fatal()):
            return ProducerFencedError(
                f"{self.describe()}: another producer with transactional id "
                f"{self.transactional_id!r} took over ({err.str()}); another run of this "
                "pipeline (or of one with the same transactional id) is writing the topic. "
                "This run stops without committing; stop the other run, or give one of "
                "them another `transactional_id`")
        return RuntimeError(f"{self.describe()}: {err}")

    def _marker_group(self) -> Consumer:
        """A consumer of the marker group (never subscribed: it reads the group's
        committed offset and carries the group's metadata for the transaction)."""
        if self._marker_reader is None:
            self._marker_reader = Consumer({
                "bootstrap.servers": self.bootstrap, "group.id": self.marker_group,
                "enable.auto.commit": False, "isolation.level": "read_committed"})
        return self._marker_reader

    def _marker(self) -> int:
        """The newest checkpoint whose transaction committed (0: none). A read_committed
        consumer asks for stable offsets: a transaction still open is waited for."""
        tp = self._marker_group().committed([TopicPartition(self.topic, MARKER_PARTITION)],
                                            timeout=TXN_TIMEOUT_S)[0]
        return max(tp.offset, 0)

    def _set_marker(self, checkpoint_id: int) -> None:
        """Inside the open transaction: the marker becomes ``checkpoint_id`` at its commit."""
        self._producer.send_offsets_to_transaction(
            [TopicPartition(self.topic, MARKER_PARTITION, checkpoint_id)],
            self._marker_group().consumer_group_metadata(), TXN_TIMEOUT_S)

    # -- protocol -----------------------------------------------------------------------
    def open(self, fresh: bool) -> None:
        self._check_topic()
        self._producer = Producer(self._producer_config())
        if self.guarantee != "exactly_once":
            self.run_id = uuid.uuid4().hex[:16]
            return
        self.staging.ensure()
        try:
            # fences any older producer with this id and aborts what it left open
            self._producer.init_transactions(TXN_TIMEOUT_S)
        except KafkaException as e:
            raise self._fenced(e) from e
        if fresh:
            self._start_afresh()

    def check_fresh_start(self) -> None:
        """Before a fresh run touches anything: refuse a topic that holds committed output
        of an earlier run of this transactional id, unless ``fresh_start: append``."""
        if self.guarantee == "exactly_once":
            self._refuse_earlier_output(self._marker())

    def _start_afresh(self) -> None:
        marker = self._marker()
        self._refuse_earlier_output(marker)
        for n in self.staging.checkpoints():
            self.staging.drop(n)
        self.run_id = uuid.uuid4().hex[:16]
        if marker:  # a new timeline: checkpoint ids may start again from 1
            self._transaction(None, 0)
        self._landed = 0

    def _refuse_earlier_output(self, marker: int) -> None:
        if marker and self.fresh_start != "append":
            raise TopicHoldsEarlierRunError(
                f"{self.describe()} already holds the output of an earlier run of this "
                f"pipeline (transactional id {self.transactional_id!r} committed its "
                f"checkpoint {marker}), and records cannot be deleted from a topic: a fresh "
                "run would add its output again after it. Point the output at a new (or "
                "emptied) topic, or set `fresh_start: append` on the output to add this "
                "run's output after the earlier one's")

    def reject(self, data: pl.DataFrame) -> Rejection | None:
        return self.encoder.reject(data)

    def write(self, data: pl.DataFrame) -> None:
        if not data.height:
            return
        encoded = self.encoder.encode(data)
        if self.guarantee == "exactly_once":
            self._buffer.append(encoded)
            if self.produce_at == "write" and self.epoch_of is not None \
                    and self._run_durable:
                self._produce_now(encoded)
        else:
            self._send(encoded, self._epoch, None, self._rows)
        self._rows += len(encoded)

    def _produce_now(self, encoded: Encoded) -> None:
        """``produce_at: write``: into the epoch's transaction, opened by its first records
        with the attempt number counted durably first (as for a produce at commit)."""
        try:
            if self._open is None:
                n = self.epoch_of()  # type: ignore[misc]
                attempt = self.staging.next_attempt(n)
                self._producer.begin_transaction()
                self._open = (n, attempt)
            self._send(encoded, self._open[0], self._open[1], self._rows)
            self._open_sent += len(encoded)
        except KafkaException as e:
            raise self._fenced(e) from e

    def _send(self, batch: Encoded, checkpoint_id: int, attempt: int | None,
              first_index: int) -> None:
        base = [(RUN_HEADER, self.run_id.encode()),
                (CHECKPOINT_HEADER, str(checkpoint_id).encode())]
        if attempt is not None:
            base.append((ATTEMPT_HEADER, str(attempt).encode()))
        produce, topic = self._producer.produce, self.topic
        # at least once: every record's report is checked (and counted); in a transaction
        # the commit vouches for them all, and one record in LATENCY_SAMPLE is timed
        callback, every = (self._delivered, 1) if attempt is None else \
            (self._stats.on_timed, LATENCY_SAMPLE)
        half = len(batch) // 2
        for i, (key, value, headers) in enumerate(zip(batch.keys, batch.values,
                                                      batch.headers, strict=True)):
            if i == half:
                self.on_point("kafka.mid_produce")
            h = [*headers, *base, (INDEX_HEADER, str(first_index + i).encode())]
            while True:
                try:
                    produce(topic, value, key, headers=h,
                            on_delivery=None if i % every else callback)
                    break
                except BufferError:  # the local queue is full: let deliveries drain
                    self._producer.poll(0.05)
        self._producer.poll(0)
        self._stats.fold()

    def _delivered(self, err: KafkaError | None, msg: Any) -> None:
        self._stats.on_delivery(err, msg)
        if err is not None and len(self._delivery_errors) < 5:
            self._delivery_errors.append(err.str())

    def telemetry(self) -> dict[str, Any]:
        """The output's producer, for the run's snapshot (runner thread): records
        produced and failed since this process opened the output, and the
        produce-to-acknowledgement latency (seconds, in the shape of
        ``runners/local/telemetry.Histogram.to_dict``).

        at_least_once: each record's delivery report counts it (acknowledged: produced;
        refused: failed) and times it. exactly_once: ``produced`` counts the records of
        committed transactions (what ``read_committed`` readers see), ``failed`` those of
        a transaction that could not commit; one record in ``LATENCY_SAMPLE`` is timed."""
        return {"topic": self.topic, "produced": self._stats.delivered,
                "failed": self._stats.failed, "latency": self._stats.latency()}

    def pre_commit(self, checkpoint_id: int) -> dict[str, Any]:
        rows, self._rows = self._rows, 0
        committable: dict[str, Any] = {"checkpoint": checkpoint_id, "rows": rows,
                                       "before": self.records, "run": self.run_id}
        if self._open is not None and self._open[0] != checkpoint_id:
            raise RuntimeError(
                f"{self.describe()}: records were produced as checkpoint {self._open[0]}'s "
                f"but checkpoint {checkpoint_id} is being taken; this is a bug in the runner "
                "-- the run stops before committing anything under the wrong id")
        if self.guarantee == "exactly_once":
            committable["file"] = self.staging.write(checkpoint_id, self._buffer) \
                if rows else None
            # the commit in this process produces from memory; the file is for recovery
            self._staged = (checkpoint_id, _joined(self._buffer)) \
                if rows and self._open is None else None
            self._buffer = []
        else:
            self._flush_acknowledged()
            self._epoch = checkpoint_id + 1
        return committable

    def _flush_acknowledged(self) -> None:
        """Every record sent so far is in the topic, or the run stops naming the output."""
        left = self._producer.flush(TXN_TIMEOUT_S)
        if left or self._delivery_errors:
            why = "; ".join(self._delivery_errors) or f"{left} records not acknowledged"
            raise RuntimeError(f"{self.describe()}: records were not delivered ({why}); the "
                               "checkpoint is not taken, a restart sends them again")

    def commit(self, committable: dict[str, Any]) -> None:
        c = checked_committable(committable, self.describe())
        n = c["checkpoint"]
        self._run_durable = True
        if self.guarantee != "exactly_once":
            self.records = c["before"] + c["rows"]
            return
        if n <= self._landed or c.get("file") is None:  # landed already, or nothing to send
            self.records = c["before"] + c["rows"]
            self._drop_staged(n)
            return
        if c["file"] != part_name(n):
            raise SinkRecoveryError(f"{self.describe()}: the checkpoint's commit record "
                                    f"names the staged file {c['file']!r}, not "
                                    f"{part_name(n)!r}; the checkpoint was altered")
        if not self.staging.exists(c["file"]):
            raise SinkRecoveryError(
                f"{self.describe()}: the records of checkpoint {n} are neither in the topic "
                f"(its marker says checkpoint {self._landed}) nor staged in "
                f"{self.staging.path}; restore that folder, or start afresh on a new topic")
        self.run_id = c.get("run") or self.run_id
        if self._open is not None and self._open[0] == n:
            self._commit_open(n)
        else:
            self._transaction(c["file"], n)
        self._landed = n
        self.records = c["before"] + c["rows"]
        self._drop_staged(n)

    def _transaction(self, file: str | None, checkpoint_id: int) -> None:
        """Produce a staged checkpoint (``file``; None: nothing) and set the marker to
        ``checkpoint_id``, in one transaction."""
        producer = self._producer
        sent = 0
        try:
            producer.begin_transaction()
            if file is not None:
                attempt = self.staging.next_attempt(checkpoint_id)
                staged = self._staged
                batch = staged[1] if staged is not None and staged[0] == checkpoint_id \
                    else self.staging.read(file)
                self._send(batch, checkpoint_id, attempt, 0)
                sent = len(batch)
                producer.flush(TXN_TIMEOUT_S)
                self.on_point("kafka.produced")
            self._set_marker(checkpoint_id)
            self.on_point("kafka.marker_sent")
            producer.commit_transaction(TXN_TIMEOUT_S)
        except KafkaException as e:
            self._stats.failed += sent
            raise self._fenced(e) from e
        self._stats.delivered += sent
        self.on_point("kafka.committed")

    def _commit_open(self, checkpoint_id: int) -> None:
        """``produce_at: write``: the epoch's records are in its open transaction already;
        wait for them to be acknowledged, set the marker, commit."""
        producer = self._producer
        try:
            left = producer.flush(TXN_TIMEOUT_S)
            if left:
                raise RuntimeError(f"{self.describe()}: {left} records of checkpoint "
                                   f"{checkpoint_id} were not acknowledged in "
                                   f"{TXN_TIMEOUT_S:g} s; the restarted run produces them "
                                   "again from the staged file")
            self.on_point("kafka.produced")
            self._set_marker(checkpoint_id)
            self.on_point("kafka.marker_sent")
            producer.commit_transaction(TXN_TIMEOUT_S)
        except KafkaException as e:
            self._stats.failed += self._open_sent
            raise self._fenced(e) from e
        self._stats.delivered += self._open_sent
        self._open, self._open_sent = None, 0
        self.on_point("kafka.committed")

    def _drop_staged(self, landed: int) -> None:
        """Staged files of checkpoints up to ``landed`` are no longer needed."""
        if self._staged is not None and self._staged[0] <= landed:
            self._staged = None
        self.staging.drop_where(lambda n: n > landed)

    def recover(self, committable: dict[str, Any] | None, checkpoint_id: int) -> None:
        if committable is not None:
            committable = checked_committable(committable, self.describe(), checkpoint_id)
        if self.guarantee != "exactly_once":
            self.run_id = (committable or {}).get("run") or self.run_id
            self.records = committable["before"] + committable["rows"] if committable else 0
            self._epoch = checkpoint_id + 1
            return
        marker = self._marker()
        if marker > checkpoint_id:
            raise SinkRecoveryError(
                f"{self.describe()} already holds the output of checkpoint {marker}, newer "
                f"than checkpoint {checkpoint_id} being restored, and records cannot be "
                "deleted from a topic: resuming would write that output again. Resume from "
                f"the newest checkpoint, or start afresh on a new topic")
        self._landed = marker
        # staged after the restored checkpoint: never happened; before it: landed. The
        # attempt counts of checkpoints that did not land stay: the run produces them
        # again, and each new attempt must be numbered above any a crashed run began
        # (``produce_at: write`` begins one before its checkpoint is durable)
        for n in self.staging.checkpoints() - {checkpoint_id}:
            self.staging.drop(n, attempts=n <= marker)
        if committable is None:
            self.run_id = uuid.uuid4().hex[:16]
            self.records = 0
            return
        self.run_id = committable.get("run") or uuid.uuid4().hex[:16]
        self.commit(committable)

    def close(self) -> None:
        self._buffer = []
        self._staged = None
        if self._open is not None and self._producer is not None:
            self._open, self._open_sent = None, 0  # aborted: never visible, not counted
            with contextlib.suppress(KafkaException):  # (fenced: nothing of ours is open)
                self._producer.abort_transaction(ABORT_TIMEOUT_S)
        if self._marker_reader is not None:
            self._marker_reader.close()
            self._marker_reader = None
        if self._producer is not None:
            if self.guarantee != "exactly_once":
                self._producer.flush(TXN_TIMEOUT_S)
            self._producer = None


def _joined(batches: list[Encoded]) -> Encoded:
    if len(batches) == 1:
        return batches[0]
    return Encoded([k for b in batches for k in b.keys], [v for b in batches for v in b.values],
                   [h for b in batches for h in b.headers])
