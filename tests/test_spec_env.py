"""``${NAME}`` / ``${NAME:-default}`` in spec files: deployments pass connection settings
and folders through the environment (the payments plan's KAFKA_BOOTSTRAP_SERVERS,
KAFKA_TOPIC_PAYMENTS, CHECKPOINT_LOCATION)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from surestream.model.env_values import MissingVariableError, expand_environment

SPEC = """\
pipeline: env-demo
source: {type: file, path: "${INPUT_FILE}", format: jsonl}
steps:
  - {type: watermark, timestamp_column: ts, max_out_of_orderness_ms: "${MAX_OOO_MS:-0}"}
outputs:
  main: {type: file, path: "${OUT_DIR:-out}/main.jsonl"}
checkpoint: {dir: "${CHECKPOINT_LOCATION:-out/checkpoints}"}
"""


def _cli(*args: str, cwd, env: dict[str, str]) -> subprocess.CompletedProcess:
    full = {k: v for k, v in os.environ.items()
            if k not in ("INPUT_FILE", "MAX_OOO_MS", "OUT_DIR", "CHECKPOINT_LOCATION")}
    return subprocess.run([sys.executable, "-m", "surestream", *args], cwd=cwd,
                          env={**full, **env}, capture_output=True, text=True, timeout=120)


def test_a_run_reads_its_input_output_and_checkpoint_folder_from_the_environment(tmp_path):
    (tmp_path / "b.jsonl").write_text("".join(json.dumps({"id": i, "ts": 1000 * i}) + "\n"
                                              for i in range(5)))
    (tmp_path / "spec.yaml").write_text(SPEC)
    r = _cli("run", "spec.yaml", cwd=tmp_path,
             env={"INPUT_FILE": "b.jsonl", "OUT_DIR": "prod", "CHECKPOINT_LOCATION": "ck"})
    assert r.returncode == 0, r.stderr
    rows = [json.loads(line) for line in (tmp_path / "prod/main.jsonl").read_text().splitlines()]
    assert [row["id"] for row in rows] == [0, 1, 2, 3, 4]
    assert (tmp_path / "ck").is_dir() and not (tmp_path / "out").exists()


def test_an_unset_variable_without_default_is_refused_naming_the_field(tmp_path):
    (tmp_path / "spec.yaml").write_text(SPEC)
    r = _cli("validate", "spec.yaml", cwd=tmp_path, env={})
    assert r.returncode == 2
    assert "source.path" in r.stderr and "INPUT_FILE is not set" in r.stderr


def test_a_whole_value_placeholder_takes_the_type_its_text_has():
    env = {"MS": "600000", "FLAG": "true", "NAME": "007", "F": "1e3", "Y": "yes"}
    doc = {"a": "${MS}", "b": "${FLAG}", "c": "x-${MS}", "d": "${NAME}", "e": "${NONE:-}",
           "f": "${F}", "g": "${Y}", "h": "${NONE:--5}"}
    assert expand_environment(doc, env) == {"a": 600000, "b": True, "c": "x-600000",
                                           "d": "007", "e": "", "f": "1e3", "g": "yes",
                                           "h": -5}


def test_defaults_literals_and_lists():
    env = {"TOPIC": "payments.prod"}
    doc = {"topics": ["${TOPIC}", "${OTHER:-dlq.payments}"], "raw": "cost $${HOME}",
           "keys_untouched": {"${TOPIC}": 1}}
    assert expand_environment(doc, env) == {
        "topics": ["payments.prod", "dlq.payments"], "raw": "cost ${HOME}",
        "keys_untouched": {"${TOPIC}": 1}}


def test_the_error_names_the_list_position():
    with pytest.raises(MissingVariableError) as e:
        expand_environment({"source": {"topics": ["a", "${T}"]}}, {})
    assert e.value.path == "source.topics[1]" and e.value.name == "T"
