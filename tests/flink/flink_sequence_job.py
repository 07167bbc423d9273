"""A trivial SQL job for the cluster tests: datagen sequence 1..N -> CSV files.

Run as a subprocess with the interpreter that has pyflink (``flink_python()``):
``python flink_sequence_job.py --out DIR --checkpoint-dir DIR --rows N --rate R
[--flink-address H:P] [--savepoint PATH] [--wait] [--python-udf]``. Prints ``JOB_ID <id>``
once submitted; with ``--wait`` (the local mini-cluster) it waits for the job to end.
"""

from __future__ import annotations

import argparse

from surestream.runners.flink.environment import create_table_environment


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    parser.add_argument("--checkpoint-dir", required=True)
    parser.add_argument("--rows", type=int, required=True)
    parser.add_argument("--rate", type=int, required=True)
    parser.add_argument("--flink-address")
    parser.add_argument("--savepoint")
    parser.add_argument("--wait", action="store_true")
    parser.add_argument("--python-udf", action="store_true",
                        help="pass the ids through a Python UDF (starts Python workers)")
    args = parser.parse_args()
    env = create_table_environment(checkpoint_dir=args.checkpoint_dir,
                                   checkpoint_interval_ms=300,
                                   flink_address=args.flink_address,
                                   savepoint_path=args.savepoint)
    env.execute_sql(f"""
        CREATE TABLE seq (id BIGINT) WITH (
          'connector' = 'datagen', 'rows-per-second' = '{args.rate}',
          'fields.id.kind' = 'sequence', 'fields.id.start' = '1',
          'fields.id.end' = '{args.rows}')""")
    env.execute_sql(f"""
        CREATE TABLE out_files (id BIGINT) WITH (
          'connector' = 'filesystem', 'path' = '{args.out}', 'format' = 'csv')""")
    select = "SELECT id FROM seq"
    if args.python_udf:
        from pyflink.table import DataTypes
        from pyflink.table.udf import udf

        env.create_temporary_function(
            "same_id", udf(lambda x: x, result_type=DataTypes.BIGINT()))
        select = "SELECT same_id(id) FROM seq"
    result = env.execute_sql(f"INSERT INTO out_files {select}")
    job_id = str(result.get_job_client().get_job_id())
    print(f"JOB_ID {job_id}", flush=True)
    if args.wait:
        result.wait()


if __name__ == "__main__":
    main()
