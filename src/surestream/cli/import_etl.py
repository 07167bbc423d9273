"""``surestream import etl-config FILE [--out SPEC]``: an ETL framework pipeline
configuration translated into a surestream spec (docs/etl.md).

The translation is checked the way ``surestream validate`` checks a spec before anything
is written: a configuration surestream cannot honour fails here (exit 2, one line per
refusal with its JSON path), not when it runs. Without ``--out`` the spec is printed.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

EXIT_OK, EXIT_USAGE = 0, 2


def add_import_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "import", help="translate another system's pipeline configuration into a spec",
        description="Translate another system's pipeline configuration into a surestream "
                    "spec.")
    sub = p.add_subparsers(dest="import_command", metavar="KIND", required=True,
                           help="etl-config")
    etl = sub.add_parser(
        "etl-config", help="the ETL framework's pipeline JSON (streamingConfigJson, ...)",
        description="Translate an ETL framework pipeline configuration (pipelineId, "
                    "source, transforms, sink, streamingConfigJson) into a surestream "
                    "spec, validated as `surestream validate` would. Every field is "
                    "translated or refused with its JSON path (docs/etl.md). "
                    "Exit 0 when written, 2 with one line per problem.")
    etl.add_argument("config", metavar="FILE", help="the configuration (JSON)")
    etl.add_argument("--out", metavar="SPEC", default=None,
                     help="write the spec here: YAML, or JSON for a .json name "
                          "(default: print the YAML)")
    etl.add_argument("--force", action="store_true",
                     help="replace SPEC if it exists (default: refuse)")
    etl.add_argument("--no-validate", action="store_true",
                     help="write the translation without validating it as a spec "
                          "(default: validate first)")
    etl.set_defaults(func=run_etl_config)
    return p


def run_etl_config(args: argparse.Namespace) -> int:
    from surestream.apps.etl import EtlConfigError, load_etl_config, translate_etl_config
    from surestream.apps.etl.translate import header_comment

    try:
        doc = load_etl_config(args.config)
        spec = translate_etl_config(doc)
    except EtlConfigError as e:
        for path, reason in e.problems:
            print(f"{args.config}: {path or '(config)'}: {reason}", file=sys.stderr)
        return EXIT_USAGE
    out = Path(args.out) if args.out else None
    if out is not None and out.exists() and not args.force:
        print(f"{out}: exists; give --force to replace it", file=sys.stderr)
        return EXIT_USAGE
    if not args.no_validate:
        problems = _spec_problems(spec, (out or Path(args.config)).resolve().parent)
        if problems:
            print(f"{args.config}: the translation is not a valid spec (nothing written):",
                  file=sys.stderr)
            for path, reason in problems:
                print(f"  {path or '(spec)'}: {reason}", file=sys.stderr)
            return EXIT_USAGE
    if out is not None and out.suffix.lower() == ".json":
        text = json.dumps(spec, indent=2) + "\n"
    else:
        import yaml

        text = header_comment(doc, args.config) + yaml.safe_dump(spec, sort_keys=False)
    if out is None:
        sys.stdout.write(text)
        return EXIT_OK
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print(f"{out}: spec of pipeline {spec['pipeline']!r} written; check it with "
          f"`surestream validate {out}`, run it with `surestream run {out}`",
          file=sys.stderr)
    return EXIT_OK


def _spec_problems(spec: dict[str, Any], base_dir: Path) -> list[tuple[str, str]]:
    from surestream.model.loader import SpecError, build_spec

    try:
        build_spec(spec, base_dir)
    except SpecError as e:
        return list(e.problems)
    return []
