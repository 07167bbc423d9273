"""``surestream topics apply|list|describe``: topics as code (connectors/kafka/admin.py).

``apply FILE`` creates the topics a topics file names that are missing and reports, per
topic, created / matches / differs with each differing setting; it never deletes. Exit
0 when every topic has its settings, 1 when one still differs (or the cluster cannot be
reached), 2 for a topics file that is not valid (one line per problem, naming the field).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from surestream.connectors.kafka.admin import KafkaAdminManager, TopicAdminError, TopicReport
from surestream.connectors.kafka.broker import BrokerError
from surestream.connectors.kafka.topic_diff import TopicState, human_ms
from surestream.model.loader import SpecError
from surestream.model.topics import SHIPPED_MAPS, TopicConfig, load_topics, shipped_topics_file

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2


def add_topics_parser(sub: Any) -> None:
    p = sub.add_parser("topics", help="topics as code: apply a topics file, list, describe",
                       description="Create and check Kafka topics from a topics file "
                                   "(docs/kafka.md, \"Topics as code\"); never deletes. "
                                   "Verbs: `apply FILE [--dry-run] [--alter] "
                                   "[--add-partitions] [--replication-factor N] [--prefix "
                                   "P]`, `list [--internal]`, `describe NAME...`; each "
                                   "takes --bootstrap HOST:PORT and --timeout SECONDS.")
    verbs = p.add_subparsers(dest="verb", required=True, metavar="VERB",
                             help="apply, list or describe (`surestream topics VERB --help`)")
    a = verbs.add_parser("apply", help="create the missing topics, report what differs",
                         description="Create the topics of FILE that are missing; compare "
                                     "the others with their settings and report each one "
                                     "that differs. Never deletes. Exit 0 when every topic "
                                     "has its settings, 1 when one differs and is not (or "
                                     "cannot be) changed, 2 for an invalid file.")
    a.add_argument("file", metavar="FILE",
                   help="a topics file (YAML), or a shipped map by name: "
                        + ", ".join(SHIPPED_MAPS))
    a.add_argument("--dry-run", action="store_true",
                   help="change nothing; report what would be done (default: off)")
    a.add_argument("--alter", action="store_true",
                   help="set the configs (retention, cleanup policy, compression, "
                        "min.insync.replicas, ...) of existing topics that differ "
                        "(default: only report them)")
    a.add_argument("--add-partitions", action="store_true",
                   help="add partitions to existing topics that have fewer than the file "
                        "says; keyed records then map to other partitions (default: only "
                        "report them)")
    a.add_argument("--replication-factor", type=int, metavar="N",
                   help="override every topic's replication factor, capping "
                        "min.insync.replicas at N: 1 for a one-broker cluster (default: "
                        "the file's)")
    a.add_argument("--prefix", metavar="P",
                   help="put every topic under P + its name, for a developer's or a test's "
                        "namespace (default: none)")
    _add_connection(a)
    a.set_defaults(func=_cmd_apply)
    ls = verbs.add_parser("list", help="the cluster's topics: partitions, replication",
                          description="List the cluster's topics with their partition "
                                      "count and replication factor.")
    ls.add_argument("--internal", action="store_true",
                    help="include internal topics, those named __* (default: off)")
    _add_connection(ls)
    ls.set_defaults(func=_cmd_list)
    d = verbs.add_parser("describe", help="topics' partitions, replicas and configs",
                         description="Describe topics: partitions, replication and the "
                                     "configs the broker reports. Exit 1 if one does not "
                                     "exist.")
    d.add_argument("names", nargs="+", metavar="NAME", help="a topic name, repeatable")
    _add_connection(d)
    d.set_defaults(func=_cmd_describe)


def _add_connection(p: argparse.ArgumentParser) -> None:
    p.add_argument("--bootstrap", metavar="HOST:PORT",
                   help="the cluster (default: $SURESTREAM_BOOTSTRAP, else the running "
                        "`surestream broker`)")
    p.add_argument("--timeout", type=float, default=30.0, metavar="SECONDS",
                   help="for each request to the cluster (default: %(default)s)")


def _manager(args: argparse.Namespace) -> KafkaAdminManager | None:
    try:
        return KafkaAdminManager(args.bootstrap, timeout_s=args.timeout)
    except BrokerError as e:
        print(f"surestream topics: {e}", file=sys.stderr)
        return None


def _topics_of(args: argparse.Namespace) -> list[TopicConfig] | None:
    path = Path(args.file)
    if not path.exists() and args.file.replace("-", "_") in SHIPPED_MAPS:
        path = shipped_topics_file(args.file)
    try:
        configs = load_topics(path)
    except SpecError as e:
        for field, reason in e.problems:
            print(f"{e.source}: {field or '(file)'}: {reason}", file=sys.stderr)
        return None
    if args.replication_factor is not None:
        if args.replication_factor < 1:
            print("--replication-factor: give 1 or more", file=sys.stderr)
            return None
        configs = [c.with_replication(args.replication_factor) for c in configs]
    return [c.renamed(args.prefix) for c in configs] if args.prefix else configs


def summary(reports: list[TopicReport], dry_run: bool) -> str:
    counts: dict[str, int] = {}
    for r in reports:
        key = r.status if r.ok or r.status != "created" else "created, differs"
        counts[key] = counts.get(key, 0) + 1
    parts = ", ".join(f"{n} {status}" for status, n in counts.items())
    return f"{len(reports)} topic(s): {parts}; nothing deleted" + (" (dry run)" if dry_run
                                                                   else "")


def _cmd_apply(args: argparse.Namespace) -> int:
    configs = _topics_of(args)
    if configs is None:
        return EXIT_USAGE
    manager = _manager(args)
    if manager is None:
        return EXIT_FAILURE
    try:
        reports = manager.apply(configs, dry_run=args.dry_run,
                                add_partitions=args.add_partitions, alter_configs=args.alter)
    except TopicAdminError as e:
        print(f"surestream topics apply: {e}", file=sys.stderr)
        return EXIT_FAILURE
    for r in reports:
        print("\n".join(r.lines()))
    print(summary(reports, args.dry_run))
    return EXIT_OK if all(r.ok for r in reports) else EXIT_FAILURE


def _replication(s: TopicState) -> str:
    shown = str(s.replication_factor)
    if s.replicas_listed is not None and s.replicas_listed != s.replication_factor:
        shown += f" (listed {s.replicas_listed} times: one broker counted once)"
    return shown


def _cmd_list(args: argparse.Namespace) -> int:
    manager = _manager(args)
    if manager is None:
        return EXIT_FAILURE
    try:
        topics = manager.list_topics(include_internal=args.internal)
    except TopicAdminError as e:
        print(f"surestream topics list: {e}", file=sys.stderr)
        return EXIT_FAILURE
    width = max((len(t.name) for t in topics), default=5)
    print(f"{'topic':<{width}}  partitions  replication")
    for t in topics:
        print(f"{t.name:<{width}}  {t.partitions:>10}  {_replication(t)}")
    return EXIT_OK


def _cmd_describe(args: argparse.Namespace) -> int:
    manager = _manager(args)
    if manager is None:
        return EXIT_FAILURE
    try:
        states = manager.describe(args.names)
    except TopicAdminError as e:
        print(f"surestream topics describe: {e}", file=sys.stderr)
        return EXIT_FAILURE
    code = EXIT_OK
    for name, state in states.items():
        if state is None:
            print(f"{name}: no such topic", file=sys.stderr)
            code = EXIT_FAILURE
            continue
        print(f"{name}\n  partitions: {state.partitions}\n  replication: "
              f"{_replication(state)}\n  configs:" + ("" if state.configs else " none reported"))
        for key, value in sorted(state.configs.items()):
            shown = human_ms(value) if key.endswith(".ms") else value
            print(f"    {key}: {shown}")
    return code
