"""``surestream templates``: the shipped pipeline templates, listed, shown, written out.

``templates`` / ``templates list`` prints each template's name, description and
parameters (defaults from its factory); ``templates show NAME`` prints its YAML;
``templates write NAME`` writes it as a spec file to edit, then ``surestream validate`` /
``run``, with a feed profile (``--profile FILE_OR_NAME``) and parameters (``--param
k=v``) applied. The written spec is validated first, and an existing file is only
replaced with ``--force``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2


def add_templates_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "templates", help="list the pipeline templates, show one, write one out to edit",
        description="The shipped pipeline templates (docs/energy.md, 'Templates and feed "
                    "profiles'). Without a command: list them.")
    p.set_defaults(func=run_list)
    sub = p.add_subparsers(dest="templates_command", metavar="COMMAND",
                           help="list, show or write")
    listing = sub.add_parser("list", help="the templates, their descriptions and parameters",
                             description="Print each template with its parameters and "
                                         "their defaults, and the shipped feed profiles.")
    listing.set_defaults(func=run_list)
    show = sub.add_parser("show", help="print a template's YAML",
                          description="Print the template as a spec (YAML).")
    _add_template_options(show)
    show.set_defaults(func=run_show)
    write = sub.add_parser("write", help="write a template out as a spec file to edit",
                           description="Write the template as a spec file, with a feed "
                                       "profile and parameters applied; edit it, then "
                                       "`surestream validate FILE` and `surestream run FILE`.")
    _add_template_options(write)
    write.add_argument("--to", metavar="FILE", default=None,
                       help="the file to write (default: NAME.yaml in the current folder)")
    write.add_argument("--force", action="store_true",
                       help="replace the file if it exists (default: refuse)")
    write.set_defaults(func=run_write)
    return p


def _add_template_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", metavar="NAME", help="the template (see `surestream templates`)")
    p.add_argument("--profile", metavar="FILE_OR_NAME", default=None,
                   help="a feed profile: a shipped one's name, a file holding one profile "
                        "(or several: FILE:NAME) (default: none, the template's defaults)")
    p.add_argument("--param", action="append", metavar="NAME=VALUE", default=[],
                   help="set a template parameter; VALUE is read as YAML (numbers stay "
                        "numbers); repeatable, over the profile (default: none)")


def _fail(message: str, code: int = EXIT_USAGE) -> int:
    print(f"templates: {message}", file=sys.stderr)
    return code


def run_list(args: argparse.Namespace) -> int:
    from surestream.apps.feed_profiles import shipped_profiles
    from surestream.apps.template_registry import TEMPLATES, TemplateError, parameters

    for name, entry in TEMPLATES.items():
        print(f"{name}: {entry.description}")
        try:
            params = parameters(name)
        except TemplateError as e:
            print(f"    (unavailable: {e})")
            continue
        for key, default in params.items():
            print(f"    --param {key}={default!r}" if isinstance(default, str)
                  else f"    --param {key}={default}")
    print("\nfeed profiles (--profile NAME):")
    for name, profile in shipped_profiles().items():
        settings = ", ".join(f"{k}={v}" for k, v in profile.parameters().items())
        print(f"  {name} (template {profile.template}): {settings}")
    print("\nwrite one out: surestream templates write NAME [--to FILE] [--profile NAME] "
          "[--param k=v]")
    return EXIT_OK


def _rendered(args: argparse.Namespace) -> str | int:
    """The template's YAML with the profile and parameters, or an exit code."""
    import yaml

    from surestream.apps.feed_profiles import resolve_profile
    from surestream.apps.template_registry import TemplateError, render
    from surestream.model.feed_profile import FeedProfileError

    params: dict[str, Any] = {}
    for assignment in args.param:
        key, sep, raw = assignment.partition("=")
        if not sep or not key:
            return _fail(f"--param {assignment!r} is not NAME=VALUE")
        try:
            params[key] = yaml.safe_load(raw) if raw else ""
        except yaml.YAMLError as e:
            return _fail(f"--param {key}: {raw!r} is not a YAML value ({e})")
    try:
        profile = resolve_profile(args.profile, args.name) if args.profile else None
        return render(args.name, profile, params)
    except FeedProfileError as e:
        return _fail(str(e))
    except TemplateError as e:
        unavailable = "is not available" in str(e)
        return _fail(str(e), EXIT_FAILURE if unavailable else EXIT_USAGE)


def run_show(args: argparse.Namespace) -> int:
    text = _rendered(args)
    if isinstance(text, int):
        return text
    sys.stdout.write(text)
    return EXIT_OK


def run_write(args: argparse.Namespace) -> int:
    import yaml

    from surestream.model.loader import SpecError, build_spec

    target = Path(args.to) if args.to else Path(f"{args.name}.yaml")
    if target.exists() and not args.force:
        return _fail(f"{target} exists; pass --force to replace it, or --to another file")
    text = _rendered(args)
    if isinstance(text, int):
        return text
    try:  # a template with these parameters must give a valid spec, where it will live
        build_spec(yaml.safe_load(text), target.resolve().parent, str(target))
    except SpecError as e:
        return _fail(f"{args.name} with these parameters is not a valid spec, nothing "
                     f"written:\n{e}", EXIT_FAILURE)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)
    print(f"wrote {target}; edit it, then:\n  surestream validate {target}\n"
          f"  surestream run {target}")
    return EXIT_OK
