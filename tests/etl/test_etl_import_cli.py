"""``surestream import etl-config FILE [--out SPEC]`` as a user runs it: the spec printed
or written (YAML, or JSON for a .json name), an existing file kept unless --force, and a
configuration that cannot be honoured refused with exit 2 and one line per JSON path --
nothing written."""

from __future__ import annotations

import json

import yaml
from etl_examples import cli, copy_examples, load, save, surestream


def test_the_spec_is_printed_written_as_yaml_or_json_and_never_overwritten(tmp_path):
    folder = copy_examples(tmp_path)
    r = surestream("import", "etl-config", "user-analytics.json", cwd=folder)  # as typed
    assert r.returncode == 0, r.stderr
    printed = yaml.safe_load(r.stdout)
    assert printed["pipeline"] == "user-analytics"
    assert r.stdout.startswith("# translated by `surestream import etl-config")
    assert "# pipelineName: User analytics" in r.stdout

    r = cli("import", "etl-config", "user-analytics.json", "--out", "ua.yaml",
                   cwd=folder)
    assert r.returncode == 0, r.stderr
    assert yaml.safe_load((folder / "ua.yaml").read_text()) == printed
    r = cli("import", "etl-config", "user-analytics.json", "--out", "ua.json",
                   cwd=folder)
    assert r.returncode == 0 and json.loads((folder / "ua.json").read_text()) == printed

    (folder / "ua.yaml").write_text("mine\n")
    r = cli("import", "etl-config", "user-analytics.json", "--out", "ua.yaml",
                   cwd=folder)
    assert r.returncode == 2 and "give --force" in r.stderr
    assert (folder / "ua.yaml").read_text() == "mine\n"
    r = cli("import", "etl-config", "user-analytics.json", "--out", "ua.yaml",
                   "--force", cwd=folder)
    assert r.returncode == 0 and yaml.safe_load((folder / "ua.yaml").read_text()) == printed


def test_refusals_exit_2_with_one_line_per_json_path_and_nothing_written(tmp_path):
    folder = copy_examples(tmp_path)
    doc = load(folder, "user-analytics")
    doc["owner"] = "team-a"
    cfg = json.loads(doc["streamingConfigJson"])
    cfg["lateData"]["strategy"] = "Ignore"
    cfg["watermark"]["delayThreshold"] = "1 month"
    doc["streamingConfigJson"] = json.dumps(cfg)
    save(folder, "bad", doc)
    r = cli("import", "etl-config", "bad.json", "--out", "bad.yaml", cwd=folder)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert sorted(line.split(": ")[1] for line in lines) == [
        "owner", "streamingConfigJson.lateData.strategy",
        "streamingConfigJson.watermark.delayThreshold"]
    assert all(line.startswith("bad.json: ") for line in lines)
    assert not (folder / "bad.yaml").exists()


def test_a_translation_the_spec_refuses_is_not_written(tmp_path):
    """Late records sent to the sink's own file: each field translates, but two outputs
    on one file is no spec, and the validation says so before anything is written."""
    folder = copy_examples(tmp_path)
    doc = load(folder, "user-analytics")
    cfg = json.loads(doc["streamingConfigJson"])
    cfg["lateData"]["path"] = doc["sink"]["path"]
    doc["streamingConfigJson"] = json.dumps(cfg)
    save(folder, "clash", doc)
    r = cli("import", "etl-config", "clash.json", "--out", "clash.yaml", cwd=folder)
    assert r.returncode == 2
    assert "not a valid spec (nothing written)" in r.stderr
    assert "outputs.late" in r.stderr and "user_activity.jsonl" in r.stderr
    assert not (folder / "clash.yaml").exists()
    r = cli("import", "etl-config", "missing.json", cwd=folder)
    assert r.returncode == 2 and "cannot read the file" in r.stderr
