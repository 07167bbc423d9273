"""``surestream explain SPEC --runner flink``: the Flink SQL a spec becomes
(``runners/flink/translate``), printed without starting Flink.

Exit codes: 0 printed, 2 a spec that is not valid, 3 a spec the Flink runner refuses (the
message names the field and why: it would not compute what the local runner computes).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from surestream.model.loader import SpecError, load_spec

EXIT_OK, EXIT_USAGE, EXIT_REFUSED = 0, 2, 3
RUNNERS = ("flink",)


def add_explain_parser(sub: Any) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "explain", help="print what a runner would execute for a spec (Flink SQL)",
        description="Print the Flink SQL statements a spec is translated to: the source "
                    "table with its watermark, one view per step, one INSERT per output "
                    "in one statement set. A step Flink SQL would compute differently is "
                    "refused with the field and the reason (exit 3).")
    p.add_argument("spec", metavar="SPEC", nargs="?", default=None,
                   help="the pipeline spec file (YAML or JSON); not needed with --support "
                        "(default: none)")
    p.add_argument("--set", action="append", metavar="PATH=VALUE",
                   help="override a spec key before validation, repeatable (default: none)")
    p.add_argument("--runner", default="flink", choices=RUNNERS,
                   help="the runner whose plan to print (default: flink)")
    p.add_argument("--support", action="store_true",
                   help="print which steps and options the local runner and the runner "
                        "support (a markdown table probed from the code; refusals with "
                        "their field and reason) instead of a spec's plan (default: off)")
    p.set_defaults(func=run_explain)
    return p


def run_explain(args: argparse.Namespace) -> int:
    from surestream.runners.flink.sql_refusals import FlinkUnsupported
    from surestream.runners.flink.translate import translate

    if args.support:
        from surestream.runners.flink.support import markdown

        sys.stdout.write(markdown())
        return EXIT_OK
    if args.spec is None:
        print("surestream explain: give a SPEC, or --support for the supported-step table",
              file=sys.stderr)
        return EXIT_USAGE
    try:
        spec = load_spec(args.spec, args.set or ())
    except SpecError as e:
        print(str(e), file=sys.stderr)
        return EXIT_USAGE
    from surestream.connectors.kafka.broker import BrokerError

    try:
        translation = translate(spec)
    except FlinkUnsupported as e:
        print(f"{args.spec}: {e}", file=sys.stderr)
        return EXIT_REFUSED
    except BrokerError as e:  # a Kafka source/output without an address to put in the SQL
        print(f"{args.spec}: {e}", file=sys.stderr)
        return EXIT_USAGE
    sys.stdout.write(translation.script())
    return EXIT_OK
