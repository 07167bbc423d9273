#!/usr/bin/env python3
"""Operations overhead: trades-1m with and without the metrics endpoint (and the telemetry).

The trades-1m pipeline (benchmarks/trades_1m.yaml: JSON lines, watermark, dedup, 1-minute
VWAP windows) runs in a fresh process per run, the way ``surestream run`` runs it (the
operations flags parsed by the real command-line parser, entered with
``cli.run_ops.operations``), in these variants:

- ``off``: the runner's telemetry calls replaced by no-ops (monkeypatched in the child):
  what the run costs without any telemetry at all;
- ``default``: ``surestream run`` as it is, no operations flag (telemetry on: a snapshot
  every 0.25 s and at checkpoints);
- ``metrics``: ``--metrics-port 0``, and this process scraping the endpoint every
  ``--scrape-interval`` seconds (1 s by default, as a Prometheus server would) while the
  run lasts -- the scraper's own work is outside the measured process;
- ``metrics_file``: ``--metrics-file``;
- ``ui``: ``--ui-port 0`` (the web view; its ``/api/status`` is polled like the metrics);
- ``accounted``: ``--metrics-port 0 --metrics-file``, scraped, with every telemetry method
  and every metrics rendering timed inside the process (``perf_counter`` around each call):
  the CPU the operations cost, which a noisy shared machine blurs in events/s but not here.

Variants alternate within each repetition (the order rotating), so a machine getting
busier or quieter affects them alike. It prints events/s per variant (median and best of
the repetitions, processing time only: start-up and imports excluded) and each variant's
cost against ``default`` (and ``default``'s against ``off``), and the load average. On a
shared machine wall time is noisy; so it also reports events per CPU second (the process's
CPU time over the run, every thread of it: the metrics server's included), which other
processes disturb much less.

    python benchmarks/ops_overhead.py [--repeat 5] [--variants off,default,metrics]
        [--scrape-interval 1.0] [--cores one|all]

Adding a variant: one entry in ``VARIANTS`` (flags, and the endpoint to poll, if any).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from trades_1m import REPO, SPEC, child_env, ensure_data, pinned, shared_bench  # noqa: E402

#: name -> (the ``surestream run`` flags, the endpoint polled while it runs: (key in the
#: endpoints ``operations`` yields, path appended to its URL) or None, the child's mode:
#: "" as is, "off" telemetry calls no-ops, "account" telemetry calls timed)
VARIANTS: dict[str, tuple[list[str], tuple[str, str] | None, str]] = {
    "off": ([], None, "off"),
    "default": ([], None, ""),
    "metrics": (["--metrics-port", "0"], ("metrics", ""), ""),
    "metrics_file": (["--metrics-file", "{work}/metrics.prom"], None, ""),
    "ui": (["--ui-port", "0"], ("ui", "/api/status"), ""),
    "accounted": (["--metrics-port", "0", "--metrics-file", "{work}/metrics.prom"],
                  ("metrics", ""), "account"),
}

DRIVER = r"""
import json, os, sys
if os.environ.get("BENCH_ONE_CORE") == "1":
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
spec_path, flags, sets, mode = sys.argv[1], json.loads(sys.argv[2]), \
    json.loads(sys.argv[3]), sys.argv[4]
from surestream.runners.local.telemetry import RunTelemetry
LOOP = ("step_started", "operator_step", "written", "step_done", "errors", "checkpoint_done",
        "due", "publish", "start_history", "flush_history")
if mode == "off":  # every telemetry call of the runner's loop a no-op
    for name in ("step_started", "operator_step", "written", "step_done", "errors",
                 "start_history", "flush_history"):
        setattr(RunTelemetry, name, lambda self, *a, **k: None)
    RunTelemetry.due = lambda self: False
    RunTelemetry.publish = lambda self, runner: {}
    RunTelemetry.end = lambda self, runner, state: {}
account = {}
if mode == "account":  # time every call (nested calls: publish includes the listeners)
    import time
    import prometheus_client.exposition as exposition
    def timed(owner, name, key):
        inner = getattr(owner, name)
        def wrapper(*a, **k):
            t = time.perf_counter()
            try:
                return inner(*a, **k)
            finally:
                s = account.setdefault(key, [0.0, 0])
                s[0] += time.perf_counter() - t
                s[1] += 1
        setattr(owner, name, wrapper)
    for name in LOOP:
        timed(RunTelemetry, name, "telemetry." + name)
    import surestream.ops.metrics as ops_metrics
    timed(exposition, "generate_latest", "metrics rendering (scrapes and file writes)")
    timed(ops_metrics, "write_to_textfile", "metrics file writes (in telemetry.publish)")
from surestream.cli.main import build_parser
from surestream.cli.run_ops import operations
from surestream.model.loader import load_spec
from surestream.runners.local.runner import LocalRunner
args = build_parser().parse_args(
    ["run", spec_path, *flags, *[a for s in sets for a in ("--set", s)]])
runner = LocalRunner(load_spec(spec_path, sets))
import time as clock
with operations(args, runner) as endpoints:
    print("ENDPOINTS " + json.dumps(endpoints), flush=True)
    cpu = clock.process_time()
    result = runner.run()
    cpu = clock.process_time() - cpu
print("RESULT " + json.dumps({"processing_s": result.elapsed_s, "cpu_s": cpu,
                              "records_in": result.records_in,
                              "checkpoints": result.checkpoints,
                              "account": account}), flush=True)
"""


class Poller(threading.Thread):
    """GETs ``url`` every ``interval`` seconds until stopped; counts the answers."""

    def __init__(self, url: str, interval: float) -> None:
        super().__init__(daemon=True)
        self.url, self.interval = url, interval
        self.done = threading.Event()
        self.answers = self.failures = 0

    def run(self) -> None:
        while not self.done.is_set():
            try:
                with urllib.request.urlopen(self.url, timeout=5) as response:
                    response.read()
                self.answers += 1
            except OSError:
                self.failures += 1
            self.done.wait(self.interval)


def run_variant(name: str, data: dict, work: Path, one_core: bool,
                scrape_interval: float) -> dict:
    flags, polled, mode = VARIANTS[name]
    flags = [f.replace("{work}", str(work)) for f in flags]
    sets = [f"source.path={data['path']}", f"outputs.main.path={work / 'windows.csv'}",
            f"outputs.late_window.path={work / 'late.jsonl'}",
            f"outputs.errors.path={work / 'errors.jsonl'}",
            f"checkpoint.dir={work / 'checkpoints'}"]
    cmd = pinned([sys.executable, "-c", DRIVER, str(SPEC), json.dumps(flags),
                  json.dumps(sets), mode], one_core)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=child_env(one_core))
    poller = None
    result = None
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("ENDPOINTS ") and polled is not None:
            endpoints = json.loads(line[len("ENDPOINTS "):])
            key, path = polled
            url = endpoints[key]
            if path:
                url = url.split("/", 3)
                url = "/".join(url[:3]) + path
            poller = Poller(url, scrape_interval)
            poller.start()
        elif line.startswith("RESULT "):
            result = json.loads(line[len("RESULT "):])
    if poller is not None:
        poller.done.set()
        poller.join()
    if proc.wait() != 0 or result is None:
        raise RuntimeError(f"variant {name} failed with exit code {proc.returncode}")
    result["polls"] = poller.answers if poller else None
    return result


def accounted(runs: list[dict]) -> dict[str, dict]:
    """Per timed call: milliseconds and calls a run (mean), and the share of processing
    time (``telemetry.*`` calls nest: ``publish`` includes what its listeners do)."""
    out: dict[str, dict] = {}
    processing = sum(r["processing_s"] for r in runs)
    for key in sorted({k for r in runs for k in r["account"]}):
        seconds = sum(r["account"].get(key, [0.0, 0])[0] for r in runs)
        calls = sum(r["account"].get(key, [0.0, 0])[1] for r in runs)
        out[key] = {"ms_per_run": 1000 * seconds / len(runs), "calls_per_run": calls / len(runs),
                    "pct": 100 * seconds / processing}
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=5, help="alternating runs of each variant")
    ap.add_argument("--variants", default="off,default,metrics,metrics_file",
                    help=f"comma-separated, of {', '.join(VARIANTS)}")
    ap.add_argument("--scrape-interval", type=float, default=1.0)
    ap.add_argument("--cores", choices=["one", "all"], default="one")
    ap.add_argument("--data", default=str(REPO / "bench-data"))
    ap.add_argument("--out", default=str(REPO / "bench-out" / "ops_overhead.json"))
    a = ap.parse_args()
    names = a.variants.split(",")
    unknown = set(names) - set(VARIANTS)
    if unknown:
        sys.exit(f"unknown variants {sorted(unknown)}; known: {', '.join(VARIANTS)}")
    data = ensure_data(shared_bench(), a.events, Path(a.data))
    one_core = a.cores == "one"
    runs: dict[str, list[dict]] = {n: [] for n in names}
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="ops-overhead-") as tmp:
        for rep in range(a.repeat):
            order = names[rep % len(names):] + names[:rep % len(names)]
            for name in order:
                work = Path(tmp) / f"{name}-{rep}"
                r = run_variant(name, data, work, one_core, a.scrape_interval)
                runs[name].append(r)
                print(f"  rep {rep + 1} {name:<13} {a.events / r['processing_s']:>11,.0f} "
                      f"events/s {a.events / r['cpu_s']:>11,.0f} events/CPU s"
                      + (f"  ({r['polls']} polls)" if r["polls"] is not None else ""),
                      flush=True)
    load_after = os.getloadavg()
    report = {}
    for name, rs in runs.items():
        eps = [a.events / r["processing_s"] for r in rs]
        per_cpu = [a.events / r["cpu_s"] for r in rs]
        report[name] = {"median_events_per_s": round(statistics.median(eps)),
                        "best_events_per_s": round(max(eps)),
                        "runs_events_per_s": [round(e) for e in eps],
                        "median_events_per_cpu_s": round(statistics.median(per_cpu)),
                        "runs_events_per_cpu_s": [round(e) for e in per_cpu],
                        "polls": [r["polls"] for r in rs]}
        if any(r["account"] for r in rs):
            report[name]["account"] = accounted(rs)
    print(f"\n{a.events:,} events, {a.repeat} alternating repetitions, "
          f"{'one core' if one_core else 'all cores'}; load average "
          f"{load_before[0]:.2f} before, {load_after[0]:.2f} after")
    for name, r in report.items():
        for key, figure in r.get("account", {}).items():
            print(f"{name}: {key:<48} {figure['ms_per_run']:>8.2f} ms a run "
                  f"({figure['calls_per_run']:,.0f} calls), {figure['pct']:.3f} % of processing")
    base = report.get("default")
    for name, r in report.items():
        line = (f"{name:<13} median {r['median_events_per_s']:>11,} events/s, "
                f"best {r['best_events_per_s']:>11,}, median "
                f"{r['median_events_per_cpu_s']:>11,} events/CPU s")
        against = report.get("off") if name == "default" else base
        if against is not None and name not in ("off",) and against is not r:
            cost = 1 - r["median_events_per_s"] / against["median_events_per_s"]
            best = 1 - r["best_events_per_s"] / against["best_events_per_s"]
            ref = "off" if name == "default" else "default"
            cpu = 1 - r["median_events_per_cpu_s"] / against["median_events_per_cpu_s"]
            line += (f"  | cost vs {ref}: median {100 * cost:+.1f} %, best {100 * best:+.1f} %,"
                     f" CPU {100 * cpu:+.1f} %")
            r[f"cost_vs_{ref}_median_pct"] = round(100 * cost, 1)
            r[f"cost_vs_{ref}_best_pct"] = round(100 * best, 1)
            r[f"cpu_cost_vs_{ref}_pct"] = round(100 * cpu, 1)
        print(line)
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"events": a.events, "repeat": a.repeat,
                               "cores": a.cores, "scrape_interval_s": a.scrape_interval,
                               "load_average": [load_before, load_after],
                               "results": report}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
