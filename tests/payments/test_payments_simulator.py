"""The payments simulator: same seed, same bytes; and its truth recounted from the file
it wrote, in plain Python, by the rules the truth states (late behind the 1 h watermark,
the earliest on-time occurrence kept, velocity over 10 minutes)."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections import defaultdict

from conftest import SMALL

from surestream.apps.payments.simulator import DATA_FILE, PaymentSimulation

HOUR, TEN_MIN = 3_600_000, 600_000


def ms(text: str) -> int:
    return int(dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000)


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path):
    a, b, c = (PaymentSimulation(seed=s, hours=3, events=400).write(tmp_path / n)
               for n, s in (("a", 1), ("b", 1), ("c", 2)))
    assert (tmp_path / "a" / DATA_FILE).read_bytes() == (tmp_path / "b" / DATA_FILE).read_bytes()
    assert (tmp_path / "a" / "truth.json").read_bytes() == \
        (tmp_path / "b" / "truth.json").read_bytes()
    assert (tmp_path / "a" / DATA_FILE).read_bytes() != (tmp_path / "c" / DATA_FILE).read_bytes()
    assert a.to_dict() == b.to_dict()


def test_truth_matches_a_plain_recount_of_the_file(payments_data):
    data, truth = payments_data
    text = (data / DATA_FILE).read_text().splitlines()
    assert all(re.search(r'"amount":\d+\.\d\d,', line) for line in text)
    newest = None
    late_per_day: dict[str, int] = defaultdict(int)
    occurrences: dict[str, list[int]] = defaultdict(list)
    record: dict[str, dict] = {}
    for line in text:
        r = json.loads(line)
        t = ms(r["event_time"])
        assert r["event_time"].endswith("Z")
        if newest is not None and t <= newest - HOUR - 1:
            late_per_day[r["event_time"][:10]] += 1
        else:
            occurrences[r["transaction_id"]].append(t)
            previous = record.setdefault(r["transaction_id"], r)
            assert {k: v for k, v in r.items() if k != "event_time"} == \
                {k: v for k, v in previous.items() if k != "event_time"}  # same content
        newest = t if newest is None else max(newest, t)
    days: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    by_sender: dict[str, list[int]] = defaultdict(list)
    for tx, times in occurrences.items():
        day = dt.datetime.fromtimestamp(min(times) / 1000, dt.UTC).date().isoformat()
        days[day]["transactions"] += 1
        days[day]["duplicates"] += len(times) - 1
        days[day]["cents_" + record[tx]["currency"]] += round(record[tx]["amount"] * 100)
        by_sender[record[tx]["sender_account"]].append(min(times))
    for tx, times in occurrences.items():
        t = min(times)
        window = [u for u in by_sender[record[tx]["sender_account"]] if t - TEN_MIN < u <= t]
        if len(window) > SMALL.get("velocity_threshold", 5):
            days[dt.datetime.fromtimestamp(t / 1000, dt.UTC).date().isoformat()]["velocity"] += 1
    assert sorted(days) == sorted(truth.days)
    for day, want in truth.days.items():
        got = days[day]
        assert got["transactions"] == want.transactions
        assert got["duplicates"] == want.duplicates
        assert late_per_day[day] == want.late
        assert got["velocity"] == want.velocity_flagged
        assert {c: got["cents_" + c] for c in want.amount_cents} == want.amount_cents
    # the settings were honoured: the default rate of retries, late events, bursts
    assert truth.duplicates == round(0.02 * SMALL["events"])
    assert truth.late == round(SMALL["late_rate"] * SMALL["events"]) >= 3
    assert all(d.velocity_flagged >= 3 * 3 for d in truth.days.values())
