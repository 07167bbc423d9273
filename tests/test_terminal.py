"""What a person sees at the terminal during ``surestream run`` and ``demo``, and what
Ctrl-C, a run of nothing but errors and a full disk do to the exit code.

The live line is checked in a real terminal (tmux, 80 columns, a narrow but common
width): one line that rich redraws whole, errors counted while the run goes, and exact
final counts with no stale digits left from earlier redraws. Off a terminal (a pipe), a
plain line is written periodically. The input is a generator that runs slowly until the
test creates a ``go`` file, so the test decides when the run may finish, not a clock.
"""

from __future__ import annotations

import errno
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from surestream.cli.main import main
from surestream.connectors.file_sinks import LineFileSink

RECORDS = 30_000
#: every 7th record has no timestamp and goes to errors
ERRORS = len(range(0, RECORDS, 7))

FEED = '''
import os, time
from pathlib import Path

HERE = Path(__file__).parent


def trades(n=30_000):
    """Slow (about 2,000 records a second) after the first 2,000 records until a file
    `go` exists; writes `started` at record 5,000; with FEED_BLOCK_AT set, stops dead at
    that record (writing `blocked`) until `go` exists."""
    block_at = int(os.environ.get("FEED_BLOCK_AT", "-1"))
    for i in range(n):
        if i == 5_000:
            (HERE / "started").touch()
        if i == block_at:
            (HERE / "blocked").touch()
            while not (HERE / "go").exists():
                time.sleep(0.05)
        if i % 100 == 0 and i >= 2_000 and not (HERE / "go").exists():
            time.sleep(0.05)
        if i % 7 == 0:
            yield {"id": i, "sym": "A", "qty": 1}  # no timestamp: an error record
        else:
            yield {"id": i, "ts": 1000 * i, "sym": "AB"[i % 2], "qty": i % 5}
'''

SPEC = {
    "pipeline": "slowfeed",
    "source": {"type": "generator", "function": "feed:trades"},
    "steps": [{"type": "watermark", "timestamp_column": "ts", "max_out_of_orderness_ms": 5000},
              {"type": "late_data_side_output", "output_tag": "late"},
              {"type": "keyed_dedup", "key_fields": ["id"], "time_window_ms": 60_000},
              {"type": "window", "name": "per_minute", "key_fields": ["sym"],
               "kind": "tumbling", "size_ms": 60_000,
               "aggregations": {"n": "count()", "qty": "sum(qty)"}}],
    "outputs": {"main": {"type": "file", "path": "out/windows.jsonl"},
                "late": {"type": "file", "path": "out/late.jsonl"},
                "late_window": {"type": "file", "path": "out/late_window.jsonl"},
                "errors": {"type": "file", "path": "out/errors.jsonl"}},
    "runtime": {"batch_size": 500},
}
OUTPUTS = ("windows.jsonl", "late.jsonl", "late_window.jsonl", "errors.jsonl")


def workspace(folder: Path, spec: dict | None = None) -> Path:
    """A folder with the slow feed and the spec; returns the spec's path."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "feed.py").write_text(FEED)
    (folder / "spec.yaml").write_text(yaml.safe_dump(spec or SPEC))
    return folder / "spec.yaml"


def env(folder: Path, **extra: str) -> dict[str, str]:
    path = os.pathsep.join(p for p in (str(folder), os.environ.get("PYTHONPATH")) if p)
    found = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    return {**found, "PYTHONPATH": path, **extra}


def command(*args: str) -> list[str]:
    return [sys.executable, "-m", "surestream", *args]


def wait_for(condition: Callable[[], object], what: str, limit_s: float = 120) -> object:
    """Poll until ``condition()`` is true (a guard against hanging, not a timing)."""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(0.1)
    pytest.fail(f"gave up waiting for {what}")


def reference_outputs(tmp_path: Path) -> dict[str, bytes]:
    """The outputs of an uninterrupted run of the same pipeline (fast: `go` exists)."""
    folder = tmp_path / "reference"
    spec = workspace(folder)
    (folder / "go").touch()
    r = subprocess.run(command("run", str(spec)), cwd=folder, env=env(folder),
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    return {name: (folder / "out" / name).read_bytes() for name in OUTPUTS}


# -- the live line in a terminal ------------------------------------------------------------
class Terminal:
    """A command in a tmux pane of a private tmux server; ``screen()`` is what it shows."""

    def __init__(self, folder: Path, args: list[str], width: int = 80, height: int = 40,
                 **extra_env: str) -> None:
        if shutil.which("tmux") is None:
            pytest.fail("the terminal tests drive a real terminal with tmux: install tmux "
                        "(apt-get install tmux)")
        self.socket = f"surestream-test-{uuid.uuid4().hex[:8]}"
        variables = " ".join(f"{k}={shlex.quote(v)}" for k, v in
                             {"PYTHONPATH": env(folder)["PYTHONPATH"], **extra_env}.items())
        line = (f"cd {shlex.quote(str(folder))} && env -u COLUMNS -u LINES {variables} "
                f"{shlex.join(args)}; echo EXIT=$?; sleep 600")
        self._tmux("new-session", "-d", "-s", "t", "-x", str(width), "-y", str(height), line)

    def _tmux(self, *args: str) -> str:
        return subprocess.run(["tmux", "-L", self.socket, *args], check=True,
                              capture_output=True, text=True, timeout=30).stdout

    def screen(self) -> str:
        """The pane and its scrolled-off history, as a person sees it."""
        return self._tmux("capture-pane", "-p", "-t", "t", "-S", "-")

    def exit_code(self) -> int | None:
        found = re.search(r"^EXIT=(\d+)$", self.screen(), re.M)
        return int(found.group(1)) if found else None

    def close(self) -> None:
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True)


def counts(text: str, label: str) -> list[int]:
    """Every number shown after ``label`` (``errors 2,858``)."""
    return [int(n.replace(",", "")) for n in re.findall(rf"\b{label} ([\d,]+)", text)]


def progress_lines(screen: str) -> list[str]:
    return [ln for ln in screen.splitlines() if re.search(r"[\d,]+ records\b", ln)]


#: the log's summary of error records (ops/logs: WARNING, shown at the default log level)
ERRORS_LOG_LINE = re.compile(r"^\d\d:\d\d:\d\d\.\d{3} WARNING [\d,]+ record\(s\) of operator "
                             r"'\w+' went to errors \(")


def test_the_live_line_counts_errors_while_running_and_leaves_no_stale_text(tmp_path):
    spec = workspace(tmp_path)
    term = Terminal(tmp_path, command("run", str(spec)), width=80)
    try:
        screens: list[str] = []

        def errors_shown() -> bool:
            screens.append(term.screen())
            return any(n > 0 for n in counts(screens[-1], "errors"))

        wait_for(errors_shown, "the live line to show errors")
        assert term.exit_code() is None  # errors counted while the run is still going
        (tmp_path / "go").touch()
        wait_for(lambda: term.exit_code() is not None, "the run to end")
        final = term.screen()
    finally:
        term.close()
    assert term_exit(final) == 0, final
    for screen in screens:  # one line redrawn in place: never a trail of older lines
        assert len(progress_lines(screen)) <= 1, screen
    # the final line and the outputs table: exactly the run's counts, nothing left over
    assert counts(final, "errors") == [ERRORS], final
    assert len((tmp_path / "out" / "errors.jsonl").read_text().splitlines()) == ERRORS
    assert re.search(rf"\b{RECORDS:,} records\b", final), final
    assert [ln.split() for ln in final.splitlines() if ln.startswith("errors ")] == \
        [["errors", f"{ERRORS:,}", "out/errors.jsonl"]]


def term_exit(screen: str) -> int:
    return int(re.search(r"^EXIT=(\d+)$", screen, re.M).group(1))


def test_the_demo_leaves_each_jobs_exact_counts_on_a_narrow_terminal(tmp_path):
    """Five jobs one after another: each ends on its own final line, whose counts are the
    job's own (from report.json) -- not digits of a longer earlier line."""
    out = tmp_path / "demo"
    term = Terminal(tmp_path, command("demo", "--events", "20000", "--out", str(out)),
                    width=80, height=60)
    try:
        wait_for(lambda: term.exit_code() is not None, "the demo to end", limit_s=600)
        screen = term.screen()
    finally:
        term.close()
    assert term_exit(screen) == 0, screen
    jobs = json.loads((out / "report.json").read_text())["jobs"]
    text = screen.split("== report")[0]
    starts = [(m.start(), m.group(1)) for m in
              re.finditer(r"^(router|aggregation|alerts|orderbook|enrichment) +[\d,]+ \w",
                          text, re.M)]
    assert [job for _, job in starts] == list(jobs), text
    for (start, job), end in zip(starts, [s for s, _ in starts[1:]] + [len(text)],
                                 strict=True):
        shown = text[start:end]
        written = jobs[job]["written"]
        assert re.search(rf"\b{jobs[job]['records_in']:,} records\b", shown), shown
        # errors: every error output's records (dlq.deserialization, ... and errors)
        assert counts(shown, "errors") == [jobs[job]["counters"]["errors"]], shown
        assert counts(shown, "duplicates") == [jobs[job]["counters"].get("duplicates", 0)], \
            shown
        if job == "alerts":
            assert counts(shown, "alerts") == [written["main"]], shown
        if job == "router":
            assert counts(shown, "dlq") == [written["dlq.trades.unroutable"]], shown


# -- off a terminal --------------------------------------------------------------------------
def test_off_a_terminal_a_plain_line_comes_periodically_with_errors_so_far(tmp_path):
    spec = workspace(tmp_path)
    proc = subprocess.Popen(command("run", str(spec)), cwd=tmp_path, env=env(tmp_path),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stderr), daemon=True)
    reader.start()
    try:
        wait_for(lambda: progress_lines("\n".join(lines)), "a periodic progress line")
        periodic = progress_lines("\n".join(lines))[0]
        assert proc.poll() is None  # written while the run goes on
        (tmp_path / "go").touch()
        assert proc.wait(timeout=300) == 0
    finally:
        proc.kill()
    reader.join(timeout=30)
    assert 0 < counts(periodic, "errors")[0] <= ERRORS, periodic
    final = progress_lines("".join(lines))[-1]
    assert re.search(rf"\b{RECORDS:,} records\b", final) and counts(final, "errors") == \
        [ERRORS], final
    assert not any("\r" in line or "\x1b" in line for line in lines), lines  # plain text


# -- Ctrl-C ---------------------------------------------------------------------------------
STOPPED = re.compile(r"^stopped by Ctrl-C after ([\d,]+) records; checkpoint (\d+) taken; "
                     r"run again to resume$")


def interrupted_run(tmp_path: Path, signals: int, wait_for_file: str = "started",
                    **extra_env: str) -> tuple[int, list[str]]:
    """Start the run, wait until the feed writes ``wait_for_file``, send SIGINT
    ``signals`` times; (exit code, stderr lines)."""
    spec = workspace(tmp_path)
    proc = subprocess.Popen(command("run", str(spec)), cwd=tmp_path,
                            env=env(tmp_path, **extra_env), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: (tmp_path / wait_for_file).exists() or proc.poll() is not None,
                 "the run to start")
        for i in range(signals):
            if i:
                time.sleep(1)  # the first must be handled before the second is sent
            proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=300)
    finally:
        proc.kill()
    return proc.returncode, [ln for ln in err.splitlines() if ln.strip()]


def rerun(tmp_path: Path) -> subprocess.CompletedProcess[str]:
    (tmp_path / "go").touch()
    return subprocess.run(command("run", str(tmp_path / "spec.yaml")), cwd=tmp_path,
                          env=env(tmp_path), capture_output=True, text=True, timeout=300)


def test_ctrl_c_stops_with_a_checkpoint_one_line_and_exit_130_and_a_rerun_resumes(tmp_path):
    code, lines = interrupted_run(tmp_path / "run", signals=1)
    assert code == 130, lines
    assert not any("Traceback" in ln for ln in lines), lines
    found = STOPPED.match(lines[-1])
    assert found, lines
    # anything before the one line is the periodic progress line of a run off a terminal,
    # or the log's summary of the error records
    assert all(progress_lines(ln) or ERRORS_LOG_LINE.match(ln) for ln in lines[:-1]), lines
    assert 5_000 <= int(found.group(1).replace(",", "")) < RECORDS
    again = rerun(tmp_path / "run")
    assert again.returncode == 0, again.stderr
    assert f"resumed from checkpoint {found.group(2)}" in again.stderr
    got = {name: (tmp_path / "run" / "out" / name).read_bytes() for name in OUTPUTS}
    assert got == reference_outputs(tmp_path)


def test_a_second_ctrl_c_stops_at_once_in_one_line(tmp_path):
    """The source blocks, so the batch in hand cannot finish: the second Ctrl-C stops the
    run where it is, without a checkpoint; a rerun starts afresh and gets it all right."""
    code, lines = interrupted_run(tmp_path / "run", signals=2, wait_for_file="blocked",
                                  FEED_BLOCK_AT="6000")
    assert code == 130, lines
    assert not any("Traceback" in ln for ln in lines), lines
    assert lines[-1] == ("stopped by a second Ctrl-C after 6,000 records, without a final "
                         "checkpoint; run again to start afresh"), lines
    again = rerun(tmp_path / "run")
    assert again.returncode == 0, again.stderr
    assert "resumed from checkpoint" not in again.stderr
    got = {name: (tmp_path / "run" / "out" / name).read_bytes() for name in OUTPUTS}
    assert got == reference_outputs(tmp_path)


# -- the error budget -------------------------------------------------------------------------
def all_errors_spec(tmp_path: Path, **runtime: float) -> Path:
    """Every record lacks the timestamp column the spec names (a typo: `time` for `ts`)."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "in.jsonl").write_text("".join(json.dumps({"id": i, "ts": 1000 * i}) + "\n"
                                               for i in range(1_000)))
    spec = {"pipeline": "typo", "source": {"type": "file", "path": "in.jsonl"},
            "steps": [{"type": "watermark", "timestamp_column": "time"}],
            "outputs": {"main": {"type": "file", "path": "out/main.jsonl"},
                        "errors": {"type": "file", "path": "out/errors.jsonl"}},
            "runtime": runtime}
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(spec))
    return tmp_path / "spec.yaml"


def run_cli(spec: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command("run", str(spec), *args), cwd=spec.parent,
                          env=env(spec.parent), capture_output=True, text=True, timeout=300)


def test_a_run_in_which_every_record_went_to_errors_exits_1_saying_why(tmp_path):
    r = run_cli(all_errors_spec(tmp_path))
    assert r.returncode == 1, r.stderr
    assert len((tmp_path / "out" / "errors.jsonl").read_text().splitlines()) == 1_000
    last = r.stderr.splitlines()[-1]
    assert last.startswith("pipeline 'typo' failed: every one of the 1,000 input records "
                           "went to errors (first reason: "), last
    assert "'time'" in last  # the first error's reason names the missing column
    assert f"see {tmp_path / 'out' / 'errors.jsonl'}" in last
    assert "runtime.max_error_ratio" in last
    assert sum("failed" in ln for ln in r.stderr.splitlines()) == 1


def test_max_error_ratio_allows_more_or_fewer_errors(tmp_path):
    r = run_cli(all_errors_spec(tmp_path / "all"), "--set", "runtime.max_error_ratio=1")
    assert r.returncode == 0, r.stderr
    # a pipeline where 1 record in 7 is an error (the slow feed, made fast)
    folder = tmp_path / "some"
    spec = workspace(folder)
    (folder / "go").touch()
    assert run_cli(spec).returncode == 0  # unset: fails only when every record is an error
    assert run_cli(spec, "--set", "runtime.max_error_ratio=0.2").returncode == 0
    r = run_cli(spec, "--set", "runtime.max_error_ratio=0.1")
    assert r.returncode == 1
    assert (f"{ERRORS:,} of the {RECORDS:,} input records ({ERRORS / RECORDS:.1%}) went to "
            "errors, more than runtime.max_error_ratio 0.1 allows") in r.stderr


# -- failures name what they concern ---------------------------------------------------------
def test_a_full_disk_names_the_output(tmp_path, monkeypatch, capsys):
    spec = workspace(tmp_path)
    (tmp_path / "go").touch()
    monkeypatch.syspath_prepend(str(tmp_path))  # the feed module, in this process
    monkeypatch.delitem(sys.modules, "feed", raising=False)
    write = LineFileSink.write

    def full_disk(self: LineFileSink, data: object) -> None:
        if self.path.name == "windows.jsonl":
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        write(self, data)

    monkeypatch.setattr(LineFileSink, "write", full_disk)
    monkeypatch.chdir(tmp_path)
    assert main(["run", str(spec)]) == 1
    lines = [ln for ln in capsys.readouterr().err.splitlines()
             if ln.strip() and not ERRORS_LOG_LINE.match(ln)]
    assert lines == [f"pipeline 'slowfeed' failed: output 'main' "
                     f"({tmp_path / 'out' / 'windows.jsonl'}): No space left on device"]


def test_an_output_whose_folder_is_a_file_is_named(tmp_path):
    spec = dict(SPEC, outputs={**SPEC["outputs"],
                               "main": {"type": "file", "path": "blocker/windows.jsonl"}})
    path = workspace(tmp_path, spec)
    (tmp_path / "blocker").write_text("a file, not a folder")
    r = run_cli(path)
    assert r.returncode == 1
    assert r.stderr.strip().startswith(
        f"pipeline 'slowfeed' failed: output 'main' ({tmp_path / 'blocker' / 'windows.jsonl'}"
        "): Not a directory"), r.stderr


def test_a_source_failure_names_the_input(tmp_path):
    (tmp_path / "feed.py").write_text(
        "def trades():\n"
        "    for i in range(2_000):\n"
        "        yield {'id': i, 'ts': 1000 * i}\n"
        "    raise ConnectionResetError(104, 'Connection reset by peer')\n")
    spec = dict(SPEC, steps=SPEC["steps"][:1], outputs={
        "main": {"type": "file", "path": "out/main.jsonl"},
        "errors": {"type": "file", "path": "out/errors.jsonl"}})
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(spec))
    r = run_cli(tmp_path / "spec.yaml")
    assert r.returncode == 1
    assert r.stderr.strip() == ("pipeline 'slowfeed' failed: input 'source' (generator): "
                                "Connection reset by peer")
