"""A spec names code: every ``module:function`` reference is resolved and checked by
``validate``; a bad one is a spec error (exit 2) naming the field, never a traceback, and
references into the standard library (``os:system``) are refused before anything runs."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from surestream.model.loader import SpecError, build_spec
from surestream.model.user_code import UserCodeError, resolve_object

SRC = Path(__file__).resolve().parents[1] / "src"

USER_MODULE = '''
"""User code for the tests: right and wrong shapes."""

CONSTANT = 42


def enrich(record):
    return record


def two_args(record, other):
    return record


def frame_fn(frame):
    return frame


def handle(record, ctx):
    return record


class Alerts:
    def process_element(self, record, ctx):
        return record


class NeedsConfig:
    def __init__(self, threshold):
        self.threshold = threshold

    def process_element(self, record, ctx):
        return record


class NoMethod:
    pass


def records(n):
    return [{"id": i, "ts": i} for i in range(n)]
'''


@pytest.fixture
def user_module(tmp_path, monkeypatch):
    """``tests_usercode``: importable in this process and by child processes."""
    folder = tmp_path / "code"
    folder.mkdir()
    (folder / "tests_usercode.py").write_text(USER_MODULE)
    (folder / "tests_broken_module.py").write_text("raise RuntimeError('config missing')\n")
    monkeypatch.syspath_prepend(str(folder))
    return folder


def spec_doc(step: dict | None = None, source: dict | None = None) -> dict:
    return {"pipeline": "p",
            "source": source or {"type": "memory", "records": [{"id": 1, "ts": 1}]},
            "steps": [step] if step else [],
            "outputs": {"main": {"type": "memory"}}}


def problems(doc: dict) -> list[tuple[str, str]]:
    with pytest.raises(SpecError) as info:
        build_spec(doc)
    return info.value.problems


@pytest.mark.parametrize(("step", "message"), [
    ({"type": "map", "function": "os:system"}, "standard library"),
    ({"type": "filter", "function": "builtins:eval"}, "standard library"),
    ({"type": "map_batches", "function": "subprocess.run"}, "standard library"),
    ({"type": "process", "key_fields": ["id"], "function": "importlib:import_module"},
     "standard library"),
    ({"type": "map", "function": "tests_no_such_module:f"}, "cannot be imported"),
    ({"type": "map", "function": "tests_broken_module:f"}, "RuntimeError: config missing"),
    ({"type": "map", "function": "tests_usercode:missing"}, "has no attribute 'missing'"),
    ({"type": "map", "function": "tests_usercode:CONSTANT"}, "resolves to a int"),
    ({"type": "map", "function": "tests_usercode"}, "package.module:attribute"),
    ({"type": "map", "function": "tests_usercode:two_args"}, "function(record)"),
    ({"type": "filter", "function": "tests_usercode:handle"}, "function(record)"),
    ({"type": "process", "key_fields": ["id"], "function": "tests_usercode:NeedsConfig"},
     "without arguments"),
    ({"type": "process", "key_fields": ["id"], "function": "tests_usercode:NoMethod"},
     "no process_element"),
    ({"type": "process", "key_fields": ["id"], "function": "tests_usercode:enrich"},
     "process_element(record, ctx)"),
    ({"type": "process", "key_fields": ["id"], "function": "tests_usercode:CONSTANT"},
     "resolves to a int"),
])
def test_a_bad_step_reference_is_a_spec_error_naming_the_field(user_module, step, message):
    ((path, reason),) = problems(spec_doc(step))
    assert path == "steps[0].function"
    assert message in reason and repr(step["function"]) in reason


@pytest.mark.parametrize(("source", "message"), [
    ({"type": "generator", "function": "os:system", "params": {"command": "true"}},
     "standard library"),
    ({"type": "generator", "function": "tests_usercode:records", "params": {"count": 3}},
     "function(**params)"),
    ({"type": "generator", "function": "tests_usercode:records"}, "function(**params)"),
    ({"type": "generator", "function": "tests_usercode:CONSTANT"}, "resolves to a int"),
])
def test_a_bad_generator_reference_is_a_spec_error(user_module, source, message):
    ((path, reason),) = problems(spec_doc(source=source))
    assert path == "source.function" and message in reason


def test_good_references_validate(user_module):
    for step in ({"type": "map", "function": "tests_usercode:enrich"},
                 {"type": "filter", "function": "tests_usercode.enrich"},
                 {"type": "map_batches", "function": "tests_usercode:frame_fn"},
                 {"type": "process", "key_fields": ["id"], "function": "tests_usercode:Alerts"},
                 {"type": "process", "key_fields": ["id"], "function": "tests_usercode:handle"}):
        assert build_spec(spec_doc(step)).steps[0].function == step["function"]
    source = {"type": "generator", "function": "tests_usercode:records", "params": {"n": 3}}
    assert build_spec(spec_doc(source=source)).source.params == {"n": 3}


def test_paths_inside_named_streams_and_sources(user_module):
    doc = {"pipeline": "p",
           "sources": {"feed": {"type": "generator", "function": "tests_usercode:missing"}},
           "streams": {"clean": {"from": "feed", "steps": [
               {"type": "map", "name": "ok", "function": "tests_usercode:enrich"},
               {"type": "map", "name": "bad", "function": "tests_usercode:two_args"}]}},
           "outputs": {"clean": {"type": "memory"}}}
    assert [p for p, _ in problems(doc)] == ["sources.feed.function",
                                             "streams.clean.steps[1].function"]


def test_a_python_user_aggregate_is_checked():
    class HalfAggregate:  # add takes one argument instead of (acc, record)
        def create(self):
            return 0

        def add(self, acc):
            return acc

        def merge(self, a, b):
            return a + b

        def result(self, acc):
            return acc

    doc = {"pipeline": "p", "source": {"type": "memory", "records": []},
           "steps": [{"type": "watermark", "timestamp_column": "ts"},
                     {"type": "window", "kind": "tumbling", "size_ms": 10,
                      "aggregations": {"total": HalfAggregate()}}],
           "outputs": {"main": {"type": "memory"}, "late_window": {"type": "memory"}}}
    ((path, reason),) = problems(doc)
    assert path == "steps[1].aggregations.total" and "add(acc, record)" in reason


def test_the_python_api_refuses_the_standard_library_too():
    with pytest.raises(UserCodeError, match="standard library"):
        resolve_object("os:system")
    with pytest.raises(UserCodeError, match="standard library"):
        resolve_object("posix.system")


# -- the command line -----------------------------------------------------------------------
def cli(*args: str, extra_path: Path) -> subprocess.CompletedProcess:
    env = {"PYTHONPATH": f"{SRC}:{extra_path}", "PATH": "/usr/bin:/bin"}
    return subprocess.run([sys.executable, "-m", "surestream", *args], env=env,
                          capture_output=True, text=True, timeout=120)


def test_os_system_is_never_run_validate_and_run_exit_2(tmp_path, user_module):
    marker = tmp_path / "pwned"
    spec = tmp_path / "evil.yaml"
    spec.write_text(yaml.safe_dump({
        "pipeline": "evil",
        "source": {"type": "generator", "function": "os:system",
                   "params": {"command": f"touch {marker}"}},
        "steps": [{"type": "map", "function": "os:system"}],
        "outputs": {"main": {"type": "stdout"}}}))
    for command in ("validate", "run"):
        r = cli(command, str(spec), extra_path=user_module)
        assert r.returncode == 2, (command, r.stdout, r.stderr)
        assert "source.function" in r.stderr and "steps[0].function" in r.stderr
        assert "Traceback" not in r.stderr
        assert not marker.exists()


def test_a_bad_reference_is_exit_2_without_traceback(tmp_path, user_module):
    spec = tmp_path / "bad.yaml"
    spec.write_text(textwrap.dedent("""\
        pipeline: bad
        source: {type: generator, function: "tests_usercode:records", params: {n: 2}}
        steps:
          - {type: map, function: "tests_usercode:two_args"}
        outputs: {main: {type: stdout}}
        """))
    for command in ("validate", "run"):
        r = cli(command, str(spec), extra_path=user_module)
        assert r.returncode == 2 and "Traceback" not in r.stderr, (command, r.stderr)
        assert "steps[0].function" in r.stderr and "function(record)" in r.stderr
