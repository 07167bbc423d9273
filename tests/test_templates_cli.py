"""The template registry and ``surestream templates``: templates listed with their
parameters, rendered to YAML that is exactly the factory's spec, written out as a file
that validates and runs, never over an existing file without --force; a template whose
module is missing is reported, not a crash. The shipped YAML of every registered template
is its factory's output with the defaults."""

from __future__ import annotations

import json

import pytest
import yaml
from template_example import example_feed, lmp_feed, write_feed

from surestream.apps import template_registry
from surestream.apps.template_registry import (
    TEMPLATES,
    Template,
    TemplateError,
    available,
    load_factory,
    parameters,
    render,
    shipped_path,
)
from surestream.cli.main import main

EXAMPLE = Template("template_example:example_feed", "the tests' own template")
MISSING = Template("surestream.apps.no_such_module:factory", "not written yet")
BROKEN = Template("template_example:broken_feed", "gives no valid spec")


@pytest.fixture
def registry(monkeypatch):
    """The real registry with the tests' templates added (the CLI reads it)."""
    monkeypatch.setitem(TEMPLATES, "example", EXAMPLE)
    monkeypatch.setitem(TEMPLATES, "missing", MISSING)
    monkeypatch.setitem(TEMPLATES, "broken", BROKEN)
    return TEMPLATES


# -- the shipped templates ------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(template_registry.TEMPLATES))
def test_the_shipped_yaml_is_the_factorys_spec_with_its_defaults(name):
    """(Fails until the template's factory and its YAML are there.) Regenerate a file with
    ``surestream templates write NAME --to src/surestream/apps/templates/NAME.yaml
    --force``."""
    factory = load_factory(name)
    text = shipped_path(name).read_text()
    assert yaml.safe_load(text) == factory()
    assert text == render(name)


# -- the registry ---------------------------------------------------------------------
def test_parameters_and_defaults_come_from_the_factory_signature(registry):
    assert parameters("example") == {
        "watermark_max_out_of_order_ms": 600_000, "dedup_window_ms": 600_000,
        "state_ttl_ms": 3_600_000, "idle_timeout_ms": 60_000, "input_path": "lmp.jsonl",
        "out_dir": "out"}


def test_a_rendering_is_a_header_then_the_factorys_spec(registry):
    text = render("example", params={"dedup_window_ms": 900_000})
    header = [line for line in text.splitlines() if line.startswith("#")]
    assert header[0] == "# surestream template example: the tests' own template"
    assert "#   dedup_window_ms: 900000  (default: 600000)" in header
    assert "#   state_ttl_ms: 3600000  (default)" in header
    assert yaml.safe_load(text) == example_feed(dedup_window_ms=900_000)


def test_a_template_whose_module_is_missing_is_reported_not_a_crash(registry):
    assert "is not available" in available("missing")
    assert "no_such_module" in available("missing")
    with pytest.raises(TemplateError, match="no template 'nope'"):
        load_factory("nope")


def test_an_unknown_parameter_is_refused_naming_it(registry):
    with pytest.raises(TemplateError, match="--param dedup_windw_ms: .*no such parameter"):
        render("example", params={"dedup_windw_ms": 1})


# -- the command ----------------------------------------------------------------------
def test_templates_lists_names_descriptions_and_parameters(registry, capsys):
    assert main(["templates"]) == 0
    out = capsys.readouterr().out
    assert "example: the tests' own template" in out
    assert "--param dedup_window_ms=600000" in out
    assert "missing: not written yet" in out and "unavailable" in out
    assert "iso_rt_lmp" in out  # the shipped feed profiles
    assert main(["templates", "list"]) == 0
    assert capsys.readouterr().out == out


def test_show_prints_the_yaml(registry, capsys):
    assert main(["templates", "show", "example"]) == 0
    assert yaml.safe_load(capsys.readouterr().out) == example_feed()
    assert main(["templates", "show", "missing"]) == 1
    assert "no_such_module" in capsys.readouterr().err


def test_write_then_validate_then_run(registry, tmp_path, capsys, monkeypatch):
    """The user's path: write the template with a profile and parameters, validate, run;
    the run's outputs hold what the input's truth says."""
    records, truth = lmp_feed()
    write_feed(tmp_path / "lmp.jsonl", records)
    profile = tmp_path / "profile.yaml"
    profile.write_text("my_feed: {watermark_max_out_of_order_ms: 600000, dedup_window_ms: "
                       "1200000, state_ttl_ms: 3600000}\n")
    spec = tmp_path / "feed.yaml"
    monkeypatch.chdir(tmp_path)
    assert main(["templates", "write", "example", "--to", str(spec), "--profile",
                 str(profile), "--param", "out_dir=results"]) == 0
    assert f"wrote {spec}" in capsys.readouterr().out
    written = yaml.safe_load(spec.read_text())
    assert written["steps"][2]["time_window_ms"] == 1_200_000  # from the profile
    assert written["outputs"]["main"]["path"] == "results/curated.jsonl"  # from --param
    assert main(["validate", str(spec)]) == 0
    assert main(["run", str(spec)]) == 0
    curated = [json.loads(x) for x in (tmp_path / "results/curated.jsonl").open()]
    late = [json.loads(x) for x in (tmp_path / "results/late.jsonl").open()]
    keys = [(r["iso"], r["node"], r["interval_start"]) for r in curated]
    assert len(keys) == len(set(keys)) == truth["curated"]
    assert len(late) == truth["late"] and {r["node"] for r in late} == {"LATE"}


def test_write_refuses_an_existing_file_unless_forced(registry, tmp_path, capsys):
    spec = tmp_path / "feed.yaml"
    spec.write_text("mine\n")
    assert main(["templates", "write", "example", "--to", str(spec)]) == 2
    assert f"{spec} exists; pass --force" in capsys.readouterr().err
    assert spec.read_text() == "mine\n"
    assert main(["templates", "write", "example", "--to", str(spec), "--force"]) == 0
    assert yaml.safe_load(spec.read_text()) == example_feed()


def test_write_refuses_what_would_not_be_a_valid_spec(registry, tmp_path, capsys):
    spec = tmp_path / "broken.yaml"
    assert main(["templates", "write", "broken", "--to", str(spec)]) == 1
    assert "not a valid spec, nothing written" in capsys.readouterr().err
    assert not spec.exists()


def test_write_with_a_bad_profile_or_param_names_it(registry, tmp_path, capsys):
    spec = tmp_path / "x.yaml"
    assert main(["templates", "write", "example", "--to", str(spec), "--profile",
                 "no_such_profile"]) == 2
    assert "no_such_profile" in capsys.readouterr().err
    assert main(["templates", "write", "example", "--to", str(spec), "--param",
                 "nope=1"]) == 2
    assert "--param nope" in capsys.readouterr().err
    assert not spec.exists()


def test_the_shipped_file_check_holds_for_a_file_written_by_the_command(registry, tmp_path,
                                                                        monkeypatch):
    """The machinery of the shipped-YAML test, on the tests' template: the file the
    regeneration command writes is the rendering with the defaults, and loads as the
    factory's spec."""
    monkeypatch.setattr(template_registry, "SHIPPED_DIR", tmp_path)
    target = shipped_path("example")
    assert main(["templates", "write", "example", "--to", str(target)]) == 0
    assert target.read_text() == render("example")
    assert yaml.safe_load(target.read_text()) == example_feed()
