"""``surestream demo medallion``: raw events -> bronze -> silver -> gold, each hop exactly
once, killed mid-commit and resumed, reconciled with the truth.

1. simulate the platform's raw events (``simulator.py``) into ``DIR/data``: three landing
   files and ``truth.json``; with ``kafka`` they are also published to their topics on an
   embedded broker (or the one ``bootstrap`` names);
2. for each hop (bronze, silver, gold) write its spec (``DIR/<hop>.yaml``, from
   ``templates.py``) and run it as a subprocess -- ``surestream run`` -- with a checkpoint
   every 1/``checkpoints`` of its input. A hop in ``kill_at`` is first run with the fault
   point ``checkpoint.commit_partial``: at that checkpoint the process kills itself with
   SIGKILL after its first output committed and before the others did (no cleanup); then
   it is run again, resumes from its last checkpoint and finishes;
3. reconcile every table with the truth (``reconcile.py``) and print a PASS/FAIL line per
   check. The exit code is 0 only when every hop ran as described and every check passes.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from surestream.apps.medallion import templates
from surestream.apps.medallion.reconcile import Check, lines_of, reconcile, report_lines
from surestream.apps.medallion.simulator import MedallionSimulation, feed_file
from surestream.apps.medallion.truth import MedallionTruth

KILL_POINT = "checkpoint.commit_partial"
HOPS = ("bronze", "silver", "gold")
EXIT_OK, EXIT_FAIL = 0, 1
STRAY_FILES = ("bronze-errors.jsonl", "silver-errors.jsonl", "gold-errors.jsonl",
               "silver-late.jsonl", "gold-late.jsonl")


@dataclass
class DemoSettings:
    out: str = "out/demo-medallion"
    events: int = 6_000
    minutes: int = 60
    seed: int = 7
    invalid_rate: float = 0.03
    duplicate_rate: float = 0.03
    kafka: bool = False
    #: a Kafka cluster to use instead of an embedded broker (with ``kafka``)
    bootstrap: str | None = None
    #: checkpoints over each hop's input
    checkpoints: int = 8
    #: hop -> the checkpoint during whose commit its first run is killed (None: half-way)
    kill_at: dict[str, int | None] = field(
        default_factory=lambda: {"bronze": None, "silver": None})


@dataclass
class DemoOutcome:
    checks: list[Check]
    hops_ok: bool

    @property
    def ok(self) -> bool:
        return self.hops_ok and all(c.ok for c in self.checks)


def parse_kill_at(text: str) -> dict[str, int | None]:
    """``"bronze,silver:3"`` -> ``{"bronze": None, "silver": 3}``; ``"none"`` -> ``{}``."""
    if text.strip().lower() in ("", "none"):
        return {}
    found: dict[str, int | None] = {}
    for part in text.split(","):
        hop, _, at = part.strip().partition(":")
        if hop not in HOPS:
            raise ValueError(f"--kill-at: {hop!r} is not a hop; use {', '.join(HOPS)} "
                             "(optionally hop:N, the checkpoint), or none")
        if at and (not at.isdigit() or int(at) < 1):
            raise ValueError(f"--kill-at: {part.strip()!r}: N must be a checkpoint number "
                             "from 1")
        found[hop] = int(at) if at else None
    return found


@contextmanager
def _kafka(s: DemoSettings, say: Callable[[str], None]) -> Iterator[str | None]:
    if not s.kafka:
        yield None
        return
    if s.bootstrap:
        yield s.bootstrap
        return
    from surestream.connectors.kafka.broker import EmbeddedBroker

    with EmbeddedBroker() as broker:
        say(f"   embedded Kafka broker (tansu) on {broker.bootstrap}")
        yield broker.bootstrap


def run_demo(s: DemoSettings, say: Callable[[str], None] = print) -> DemoOutcome:
    """The demo end to end (module docstring)."""
    started = time.perf_counter()
    out = Path(s.out).resolve()
    if out.exists():
        shutil.rmtree(out)
    data = out / "data"
    sim = MedallionSimulation(seed=s.seed, events=s.events, minutes=s.minutes,
                              invalid_rate=s.invalid_rate, duplicate_rate=s.duplicate_rate)
    truth = sim.write(data)
    landing, _ = sim.feed_lines()
    say(f"1. simulated {truth.total_received:,} raw events over {s.minutes} min (seed "
        f"{s.seed}) -> {data}")
    for line in truth.lines():
        say("   " + line)
    with _kafka(s, say) as bootstrap:
        if bootstrap is not None:
            from surestream.apps.medallion.kafka_feed import create_topics, publish_feeds

            create_topics(bootstrap)
            say(f"   published {publish_feeds(bootstrap, landing):,} messages to "
                f"{', '.join(truth.feeds.values())} on {bootstrap}")
        hops_ok = _run_hops(s, out, data, truth, bootstrap, say)
        say("5. reconciliation with truth.json:")
        dlq_count: Callable[[], int]
        if bootstrap is not None:
            from surestream.apps.medallion.kafka_feed import count_dlq_messages

            def dlq_count() -> int:
                return count_dlq_messages(bootstrap)
        else:
            def dlq_count() -> int:
                return lines_of(out / "dlq-events.jsonl")
        checks = reconcile(truth, landing, templates.default_catalog("."), out, dlq_count,
                           [out / name for name in STRAY_FILES]) if hops_ok else []
    for line in report_lines(checks) if checks else ["FAIL  a hop did not run as expected"]:
        say("   " + line)
    say(f"demo medallion took {time.perf_counter() - started:.1f} s. Next:")
    say(f"  surestream tables scan {out / 'silver.yaml'} --output silver_events --limit 5")
    say(f"  surestream tables scan {out / 'gold.yaml'} --output event_metrics_5m --limit 5")
    say(f"  surestream tables scan {out / 'silver.yaml'} --output dlq_table --limit 5")
    return DemoOutcome(checks, hops_ok)


def _specs(s: DemoSettings, data: Path, truth: MedallionTruth, bootstrap: str | None,
           ) -> dict[str, dict[str, Any]]:
    """Each hop's spec, a checkpoint every 1/checkpoints of its input."""
    span = truth.minutes * 60_000 + templates.WINDOW_MS

    def every(n: int) -> dict[str, Any]:
        step = max(1, n // max(1, s.checkpoints))
        return {"checkpoint_interval_records": step, "checkpoint_interval_ms": None,
                "batch_size": min(step, 65_536)}

    kafka = {"bootstrap": bootstrap} if bootstrap is not None else None
    paths = [str(data / feed_file(feed)) for feed in truth.feeds]
    return {
        "bronze": templates.bronze(input_paths=paths, out_dir=".", kafka=kafka,
                                   **every(truth.total_received)),
        "silver": templates.silver(out_dir=".", watermark_max_out_of_order_ms=span,
                                   dedup_window_ms=span, state_ttl_ms=span,
                                   dlq_kafka=kafka, **every(truth.total_received)),
        "gold": templates.gold(out_dir=".", watermark_max_out_of_order_ms=span,
                               **every(truth.total_valid_unique)),
    }


def _run_hops(s: DemoSettings, out: Path, data: Path, truth: MedallionTruth,
              bootstrap: str | None, say: Callable[[str], None]) -> bool:
    for n, (hop, spec) in enumerate(_specs(s, data, truth, bootstrap).items(), start=2):
        path = out / f"{hop}.yaml"
        path.write_text(yaml.safe_dump(spec, sort_keys=False))
        interval = spec["checkpoint"]["interval_records"]
        say(f"{n}. {hop}: {path.name}, a checkpoint every {interval:,} records")
        if hop in s.kill_at:
            kill_at = s.kill_at[hop] or max(1, s.checkpoints // 2)
            first = _run(path, {"SURESTREAM_FAULT": f"{KILL_POINT}:{kill_at}"})
            if first.returncode != -9:
                say(f"   FAIL: the first run should have been killed (SIGKILL) at checkpoint "
                    f"{kill_at} but exited {first.returncode}: {first.stderr[-2000:]}")
                return False
            say(f"   killed with SIGKILL at checkpoint {kill_at}, between two outputs' "
                "commits")
        second = _run(path, {})
        if second.returncode != 0:
            say(f"   FAIL: {hop} exited {second.returncode}: {second.stderr[-2000:]}")
            return False
        resumed = next((ln.strip() for ln in (second.stderr + second.stdout).splitlines()
                        if ln.strip().startswith("resumed from")), None)
        say(f"   {resumed + '; ' if resumed else ''}finished")
    return True


def _run(spec_path: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if k != "SURESTREAM_FAULT"}
    environment.update(env)
    return subprocess.run([sys.executable, "-m", "surestream", "run", str(spec_path)],
                          capture_output=True, text=True, env=environment, timeout=1800)
