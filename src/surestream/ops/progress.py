"""The progress of a run on standard error: a live line on a terminal, plain lines otherwise.

On a terminal the line is a ``rich.live.Live`` display: rich redraws the whole line, cut to
the terminal's width, so a number that shrinks (a rate, a count of another job on the same
line) never leaves stale digits behind, and a narrow terminal never wraps it into garbage.
It is refreshed at most ``refresh_per_second`` times a second by rich's own thread from the
latest report; the runner only hands over a ``Progress`` after each batch, so the display
costs nothing per record.

When standard error is not a terminal (a pipe, a log file, CI), a plain line is written
every ``plain_every_s`` seconds and once at the end, so a long run in a log shows it is
alive and where it stands.

Every line shows errors (records sent to the errors output, the dead-letter queue) as
they happen -- committed or still in the open checkpoint -- not only at the end.

Standard error is shared with the log (``ops/logs``). The live line redirects
``sys.stderr`` while it is up, so a log line (or any other text written there) is printed
above it, whole, instead of into it. ``silent`` turns the display off altogether: with
``--log-format json`` every line the run writes to standard error is a JSON object, and
the log's lines carry the progress instead.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import TextIO

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.text import Text

from surestream.model.batch import NEG_INF, POS_INF
from surestream.runners.local.results import Progress

#: the width tables are laid out in when standard error is not a terminal
LOG_WIDTH = 160
#: (label, count) pairs an application adds to the line (``alerts 12``)
ExtraCounts = Callable[[Progress], Sequence[tuple[str, int]]]


def format_watermark(wm: int) -> str:
    """An event time in epoch milliseconds as UTC, or where the watermark stands."""
    if wm == NEG_INF:
        return "not yet"
    if wm == POS_INF:
        return "end of input"
    return datetime.fromtimestamp(wm / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + "Z"


def progress_segments(p: Progress, label: str = "",
                      extra: ExtraCounts | None = None) -> list[tuple[str, str]]:
    """The line as (text, rich style) pieces, most important first: a line cut to a narrow
    terminal's width loses the watermark, never the counts."""
    c = p.counters
    errors = c.get("errors", 0)
    pieces: list[tuple[str, str]] = []
    if label:
        pieces.append((f"{label:<12} ", "bold"))
    pieces += [(f"{p.records_in:>11,} records", ""),
               (f"  {p.records_per_s:>9,.0f}/s", "dim"),
               (f"  errors {errors:,}", "bold red" if errors else ""),
               (f"  late {c.get('late', 0):,}", ""),
               (f"  duplicates {c.get('duplicates', 0):,}", "")]
    for name, n in extra(p) if extra else ():
        pieces.append((f"  {name} {n:,}", ""))
    lag = f" (lag {p.watermark_lag_ms / 1000:,.1f} s)" if p.watermark_lag_ms is not None else ""
    pieces.append((f"  watermark {format_watermark(p.watermark)}{lag}", "dim"))
    return pieces


def progress_text(p: Progress, label: str = "", extra: ExtraCounts | None = None) -> str:
    """The progress line as plain text."""
    return "".join(text for text, _ in progress_segments(p, label, extra))


class ProgressDisplay:
    """The progress of one run (``label``: the job's name, when several run in turn).

    Hand it to the runner as its ``progress`` callback; call ``done`` with the final
    ``Progress`` to leave the final line, or ``close`` to remove the live line without one
    (a failure, Ctrl-C: the caller prints its own one line).
    """

    def __init__(self, label: str = "", *, extra: ExtraCounts | None = None,
                 stream: TextIO | None = None, live: bool | None = None,
                 plain_every_s: float = 5.0, refresh_per_second: float = 4.0,
                 silent: bool = False) -> None:
        self.label = label
        #: nothing drawn or written (the log carries the progress)
        self.silent = silent
        self.extra = extra
        self.stream = stream if stream is not None else sys.stderr
        self.console = Console(file=self.stream, highlight=False, soft_wrap=False)
        if not self.console.is_terminal:  # a log has no width: do not fold tables at 80
            self.console = Console(file=self.stream, highlight=False, soft_wrap=False,
                                   width=LOG_WIDTH)
        #: a live line (a terminal) or periodic plain lines
        self.live = self.console.is_terminal if live is None else live
        self.plain_every_s = plain_every_s
        self.refresh_per_second = refresh_per_second
        self._latest: Progress | None = None
        self._live: Live | None = None
        self._next_plain: float | None = None
        self._notice: str | None = None

    # -- the runner's callback -----------------------------------------------------------
    def __call__(self, p: Progress) -> None:
        self._latest = p  # the live display renders the latest from its own thread
        if self.silent:
            return
        if self.live:
            if self._live is None:
                self._live = Live(console=self.console, get_renderable=self._render,
                                  refresh_per_second=self.refresh_per_second,
                                  transient=True, redirect_stdout=False,
                                  redirect_stderr=True)
                self._live.start()
            return
        now = time.monotonic()
        if self._next_plain is None:
            self._next_plain = now + self.plain_every_s
        elif now >= self._next_plain:
            self._next_plain = now + self.plain_every_s
            self._write_plain(p)

    def notice(self, text: str) -> None:
        """A second, passing line under the live one ("stopping after this batch ...");
        only sets an attribute, so a signal handler may call it. Not shown off a
        terminal, and gone with the live line."""
        self._notice = text

    def _render(self) -> RenderableType:
        if self._latest is None:
            return Text("")
        line = Text(no_wrap=True, overflow="ellipsis")
        for text, style in progress_segments(self._latest, self.label, self.extra):
            line.append(text, style or None)
        if self._notice is None:
            return line
        return Group(line, Text(self._notice, style="yellow", no_wrap=True,
                                overflow="ellipsis"))

    def _write_plain(self, p: Progress) -> None:
        self.stream.write(progress_text(p, self.label, self.extra) + "\n")
        self.stream.flush()

    # -- the end -------------------------------------------------------------------------
    def close(self) -> None:
        """Remove the live line (if any) and print nothing."""
        if self._live is not None:
            self._live.stop()
            self._live = None

    def done(self, p: Progress) -> None:
        """The final line: on a terminal in place of the live line, wrapped at spaces if
        the terminal is narrower than it; otherwise one more plain line."""
        self._latest = p
        self.close()
        if self.silent:
            return
        if not self.live:
            self._write_plain(p)
            return
        line = Text()
        for text, style in progress_segments(p, self.label, self.extra):
            line.append(text, style or None)
        self.console.print(line)

    def __enter__(self) -> ProgressDisplay:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
