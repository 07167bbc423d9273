"""``surestream payments reconcile``: the auditor's reconciliation of the payments tables.

    surestream payments reconcile --tables out/payments/payments.duckdb
    surestream payments reconcile --tables postgresql://user@host/db --truth data/payments \\
        --checkpoints out/payments/checkpoints

Exit 0 when every day PASSes (and, with --truth, every figure equals the truth; with
--checkpoints, the dedup state stayed bounded), 1 otherwise, 2 when the tables cannot be
read.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2


def add_payments_parser(sub: Any) -> argparse.ArgumentParser:
    """Register ``payments`` (with ``reconcile``) on the ``surestream`` subparsers."""
    p = sub.add_parser("payments", help="the payments seed system: reconcile its tables",
                       description="Tools of the exactly-once payments system "
                                   "(docs/payments.md).")
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION",
                               help="what to do (`surestream payments ACTION --help`)")
    r = actions.add_parser(
        "reconcile", help="per day COUNT(DISTINCT transaction_id) vs COUNT(*), amounts, "
                          "duplicate rate; PASS or FAIL - DUPLICATES DETECTED",
        description="Reconcile the payments tables per UTC day: COUNT(DISTINCT "
                    "transaction_id), COUNT(*), total amount per currency, PASS or FAIL - "
                    "DUPLICATES DETECTED; the duplicate rate in its band (0-1 %% excellent, "
                    "1-5 %% normal, 5-10 %% elevated, > 10 %% investigate); the figures "
                    "compared with a simulator's truth; the dedup state over time.")
    r.add_argument("--tables", required=True, metavar="DSN_OR_FILE",
                   help="a PostgreSQL DSN (postgresql://...) or the DuckDB file "
                        "(default: none, required)")
    r.add_argument("--truth", default=None, metavar="PATH",
                   help="the simulator's truth.json (or its folder): compare every figure "
                        "(default: no comparison)")
    r.add_argument("--checkpoints", default=None, metavar="DIR",
                   help="the run's checkpoint folder: show the dedup state over time from "
                        "its run-history.jsonl (default: not shown)")
    r.add_argument("--state-window-ms", type=int, default=3 * 3_600_000,
                   help="the bound of the dedup state: the most transactions within this "
                        "much event time, state TTL + watermark + dedup window "
                        "(default 10800000)")
    r.set_defaults(func=run_reconcile)
    return p


def run_reconcile(args: argparse.Namespace) -> int:
    from surestream.apps.payments.reconcile import reconcile
    from surestream.apps.payments.truth import PaymentTruth

    try:
        truth = PaymentTruth.read(args.truth) if args.truth else None
        result = reconcile(args.tables, truth, args.checkpoints, args.state_window_ms)
    except (OSError, LookupError, ValueError) as e:
        print(f"payments reconcile: {e}", file=sys.stderr)
        return EXIT_USAGE
    except Exception as e:  # a database error: name it, the target, and stop
        print(f"payments reconcile: cannot read {args.tables}: {type(e).__name__}: {e}",
              file=sys.stderr)
        return EXIT_USAGE
    print("\n".join(result.lines()))
    return EXIT_OK if result.ok else EXIT_FAIL
