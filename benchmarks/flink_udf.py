#!/usr/bin/env python3
"""The cost of user code on the Flink runner (issue 15 item 2): records/s of the same
transformation as plain Flink SQL, as a ``map_batches`` pandas UDF (Arrow batches) and as a
record-at-a-time ``map`` (a Python table function), on this machine.

Each is a spec ``file -> watermark -> step -> file``, ``v2 = v * 2``: ``with_columns``
(``CAST(v * 2 AS DOUBLE)``, plain SQL), ``map_batches`` (``double_batch``) and ``map``
(``double``), translated by the Flink runner and run as jobs in one driver (one JVM, a
local mini-cluster, parallelism 1). The figure is records / the job's seconds as the driver
measures them (``JOB_SECONDS``: from the TableEnvironment's creation to the job's end, so a
few seconds of job start-up are in it: the SQL job's time is mostly that) and, to take the
start-up out, the records/s of the difference between ``--records`` and ``--records / 4``
(a second, smaller run of each).

    python benchmarks/flink_udf.py [--records 300000]

The machine is shared: the load average is printed with the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # flink_udf_functions, the user module

from surestream.model.loader import build_spec  # noqa: E402
from surestream.runners.flink.runner import flink_job  # noqa: E402
from surestream.runners.flink.submit import driver_command, driver_environment  # noqa: E402

SCHEMA = {"id": "int", "k": "string", "ts": "int", "v": "float"}
OUT = {**SCHEMA, "v2": "float"}
STEPS = {
    "sql": {"type": "with_columns", "columns": {"v2": "CAST(v * 2 AS DOUBLE)"}},
    "pandas_udf": {"type": "map_batches", "function": "flink_udf_functions:double_batch",
                   "output_schema": OUT},
    "python_udf": {"type": "map", "function": "flink_udf_functions:double",
                   "output_schema": OUT},
}


def write_input(path: Path, records: int) -> None:
    rng = random.Random(7)
    with path.open("w") as f:
        for i in range(records):
            f.write(json.dumps({"id": i, "k": f"k{i % 100}", "ts": 1_000 * i,
                                "v": round(rng.random() * 100, 3)}) + "\n")


def job(name: str, step: dict, data: Path, base: Path):
    doc = {"pipeline": name, "source": {"type": "file", "path": str(data), "schema": SCHEMA},
           "steps": [{"type": "watermark", "timestamp_column": "ts"}, step],
           "outputs": {"main": {"type": "file", "path": "out/main.jsonl"},
                       "errors": {"type": "file", "path": "out/errors.jsonl"}},
           "checkpoint": {"dir": "ck", "interval_ms": 60_000}}
    (base / name).mkdir(parents=True)
    return flink_job(build_spec(doc, base_dir=base / name))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=300_000,
                        help="records of the larger run (default: 300000)")
    args = parser.parse_args()
    small = args.records // 4
    with tempfile.TemporaryDirectory(prefix="flink-udf-bench-") as tmp:
        base = Path(tmp)
        warm = base / "input-warm.jsonl"
        write_input(warm, 1000)
        # a first small job takes the JVM's class loading and JIT warm-up out of the rest
        jobs = [job("warm-up", STEPS["sql"], warm, base)]
        for n in (small, args.records):
            data = base / f"input-{n}.jsonl"
            write_input(data, n)
            jobs += [job(f"{kind}-{n}", step, data, base) for kind, step in STEPS.items()]
        from surestream.runners.flink.submit import ship_user_code

        work = base / "driver"
        work.mkdir()
        files = [ship_user_code(j, work / f"user-code-{i}").write(work / f"job-{i}.json")
                 for i, j in enumerate(jobs)]
        done = subprocess.run(driver_command(files), env=driver_environment(work),
                              capture_output=True, text=True)
        if done.returncode != 0:
            sys.exit(done.stderr[-3000:])
        seconds = {p[1]: float(p[2]) for p in map(str.split, done.stdout.splitlines())
                   if len(p) == 3 and p[0] == "JOB_SECONDS"}
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; "
          f"{args.records} and {small} records, parallelism 1")
    print(f"{'':12} {'job s (small)':>13} {'job s':>8} {'records/s':>10} "
          f"{'marginal records/s':>19}")
    for kind in STEPS:
        big, little = seconds[f"{kind}-{args.records}"], seconds[f"{kind}-{small}"]
        marginal = (f"{(args.records - small) / (big - little):19.0f}" if big > little
                    else f"{'(noise)':>19}")
        print(f"{kind:12} {little:13.1f} {big:8.1f} {args.records / big:10.0f} {marginal}")


if __name__ == "__main__":
    main()
