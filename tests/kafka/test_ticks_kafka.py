"""The vendor-tick feed through Kafka: ``surestream simulate ticks --kafka`` publishes it to
a one-partition topic and ``vendor_ticks`` (with ``kafka_bootstrap``) reads it back; the
tables reconcile exactly with the truth, as they do from the file."""

from __future__ import annotations

import yaml

from surestream.apps.energy.ticks_reconcile import reconcile
from surestream.apps.energy.ticks_template import vendor_ticks
from surestream.apps.energy.ticks_truth import TicksTruth
from surestream.cli.main import main
from surestream.model.loader import build_spec
from surestream.runners.local.runner import LocalRunner


def test_ticks_through_a_topic_reconcile_exactly(kafka_bootstrap, kafka_topic, tmp_path):
    topic = kafka_topic("vendor.ticks")
    assert main(["simulate", "ticks", "--kafka", "--bootstrap", kafka_bootstrap, "--topic",
                 topic, "--minutes", "6", "--vendors", "3", "--symbols", "3",
                 "--idle-minutes", "2", "--ticks-per-s", "2",
                 "--out", str(tmp_path / "truth")]) == 0
    assert not (tmp_path / "truth" / "ticks.jsonl").exists()  # published, not written
    truth = TicksTruth.read(tmp_path / "truth")
    doc = vendor_ticks(kafka_bootstrap=kafka_bootstrap, kafka_topic=topic, out_dir="out")
    doc["source"]["options"] = {"fetch.wait.max.ms": 10}
    (tmp_path / "vendor_ticks.yaml").write_text(yaml.safe_dump(doc))
    result = LocalRunner(build_spec(doc, tmp_path, None)).run()
    checks = reconcile(tmp_path / "out", truth, result.counters.get("duplicates", 0))
    assert [(c.name, c.found, c.expected) for c in checks if not c.ok] == []
