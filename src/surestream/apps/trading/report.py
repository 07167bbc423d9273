"""The trading demo's HTML report (``<out>/report.html``): the reconciliation, the market as
the jobs saw it, and each job's run report.

- **Top symbols**: the symbols with the most traded volume in the aggregation job's
  windows (``trade_aggregates``, each window's final revision), one chart each:
  OHLC candles with the window VWAP as a line, volume below. The window size is the
  smallest (1m, 5m, 15m) that shows the symbol in at most ``MAX_CANDLES`` windows, else
  the latest ``MAX_CANDLES`` windows of 15m. Candles are evenly spaced (no gaps for the
  hours between trading sessions), labelled with their window start in UTC.
- **Price alerts**: the alerts job's alerts over event time, one row per severity,
  marked by direction, and their counts.
- **Jobs**: every job's run report (``surestream.ops.report``: outputs, conservation,
  late data, duplicates, checkpoints, errors) from its checkpoint folder.

The warehouse is read through ``TradingAnalytics`` (Parquet datasets, Iceberg or Delta
tables alike); charts are inline SVG like the run report's.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl

from surestream.apps.trading.analytics import WINDOW_SIZES, TradingAnalytics
from surestream.ops.report import gather, page, run_sections
from surestream.ops.report.charts import COLOURS, figure, to_svg
from surestream.ops.report.html import badge, esc, ident, para, section, table

TOP_SYMBOLS = 3
MAX_CANDLES = 120
SEVERITIES = ("MEDIUM", "HIGH", "CRITICAL")
SEVERITY_COLOURS = {"MEDIUM": "#d4a72c", "HIGH": "#fb8500", "CRITICAL": "#cf222e"}
UP, DOWN = "#1a7f37", "#cf222e"


def top_symbols_by_volume(a: TradingAnalytics, n: int = TOP_SYMBOLS) -> pl.DataFrame:
    """``symbol``, ``volume``, ``trades``: the ``n`` symbols with the most volume in the
    final 15-minute windows (every trade is in exactly one window of each size)."""
    windows = a.final_windows("15m")
    if not windows.height:
        return pl.DataFrame({"symbol": [], "volume": [], "trades": []})
    return (windows.group_by("symbol")
            .agg(pl.col("total_volume").sum().alias("volume"),
                 pl.col("trade_count").sum().alias("trades"))
            .sort(["volume", "symbol"], descending=[True, False]).head(n))


def symbol_windows(a: TradingAnalytics, symbol: str) -> tuple[str, pl.DataFrame]:
    """(size, the symbol's final windows of that size, oldest first; see the module
    docstring for the choice of size)."""
    frame = pl.DataFrame()
    for size in WINDOW_SIZES:
        frame = a.final_windows(size, symbol).sort("window_start")
        if frame.height <= MAX_CANDLES:
            return size, frame
    return WINDOW_SIZES[-1], frame.tail(MAX_CANDLES)


def candles_chart(name: str, symbol: str, size: str, w: pl.DataFrame) -> str:
    """OHLC candles and the window VWAP over evenly spaced windows; volume below."""
    fig = figure((7.5, 3.8))
    grid = fig.add_gridspec(2, 1, height_ratios=(3, 1))
    ax, vol = fig.add_subplot(grid[0]), fig.add_subplot(grid[1])
    x = list(range(w.height))
    o, h, lo, c = (w[col].to_list() for col in ("open_price", "high_price", "low_price",
                                                 "close_price"))
    colours = [UP if close >= open_ else DOWN for open_, close in zip(o, c, strict=True)]
    span = (max(h) - min(lo)) or 1.0
    ax.vlines(x, lo, h, colors=colours, linewidth=0.8)
    ax.bar(x, [max(abs(cl - op), span * 0.004) for op, cl in zip(o, c, strict=True)],
           bottom=[min(op, cl) for op, cl in zip(o, c, strict=True)], color=colours,
           width=0.6)
    ax.plot(x, w["vwap"].to_list(), color=COLOURS[0], linewidth=1.2, label="VWAP (window)")
    ax.set_title(f"{symbol}: {size} windows, OHLC and VWAP ({w.height} windows)",
                 fontsize=10, loc="left")
    ax.set_ylabel("price", fontsize=8)
    ax.legend(fontsize=7, loc="upper left", frameon=False)
    vol.bar(x, w["total_volume"].to_list(), color="#8c959f", width=0.6)
    vol.set_ylabel("volume", fontsize=8)
    ticks = _ticks(w.height)
    vol.set_xticks(ticks, [_label(w["window_start"][i]) for i in ticks])
    ax.set_xticks(ticks, [""] * len(ticks))
    for axis in (ax, vol):
        axis.tick_params(labelsize=7)
        axis.grid(True, alpha=0.3)
        axis.set_xlim(-1, max(w.height, 2))
    vol.set_xlabel("window start (UTC)", fontsize=8)
    return to_svg(fig, name, f"{symbol} OHLC and VWAP")


def _ticks(n: int, most: int = 8) -> list[int]:
    step = max(1, -(-n // most))
    return list(range(0, n, step))


def _label(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%m-%d %H:%M")


def alerts_frame(a: TradingAnalytics) -> pl.DataFrame:
    """Every alert: ``at_ms`` (detection, event time), ``severity``, ``direction``,
    ``symbol``, ``pct``."""
    if "price_alerts" not in a.available:
        return pl.DataFrame({"at_ms": [], "severity": [], "direction": [], "symbol": [],
                             "pct": []})
    return a.con.sql(
        "SELECT coalesce(detected_at_ms, alert_ts) AS at_ms, severity, direction, symbol, "
        "coalesce(pct_change, abs(change_pct)) AS pct FROM price_alerts "
        "ORDER BY at_ms, symbol").pl()


def alerts_chart(name: str, alerts: pl.DataFrame) -> str:
    """Alerts over event time: one row per severity, ▲ up / ▼ down."""
    fig = figure((7.5, 2.2))
    ax = fig.add_subplot()
    rows = {s: i for i, s in enumerate(SEVERITIES)}
    for sev in sorted(set(alerts["severity"].to_list()) - set(rows)):
        rows[sev] = len(rows)
    for (sev, direction), group in alerts.group_by(["severity", "direction"]):
        times = [datetime.fromtimestamp(v / 1000, tz=UTC) for v in group["at_ms"].to_list()]
        ax.scatter(times, [rows[sev]] * group.height, marker="^" if direction == "UP" else "v",
                   s=36, color=SEVERITY_COLOURS.get(str(sev), COLOURS[4]), alpha=0.8,
                   linewidths=0)
    ax.set_yticks(list(rows.values()), list(rows))
    first, last = alerts["at_ms"].min(), alerts["at_ms"].max()
    pad = max((last - first) * 0.05, 30 * 60_000)  # one alert: an hour around it
    ax.set_xlim(datetime.fromtimestamp((first - pad) / 1000, tz=UTC),
                datetime.fromtimestamp((last + pad) / 1000, tz=UTC))
    ax.set_ylim(-0.6, len(rows) - 0.4)
    ax.set_title(f"Price alerts over event time ({alerts.height}; ▲ up, ▼ down)",
                 fontsize=10, loc="left")
    ax.set_xlabel("detected at (event time, UTC)", fontsize=8)
    ax.tick_params(labelsize=7)
    ax.grid(True, axis="x", alpha=0.3)
    return to_svg(fig, name, "price alerts over event time")


def trading_sections(warehouse: Path) -> list[str]:
    """The market sections: top symbols (OHLC + VWAP) and the alert timeline."""
    with TradingAnalytics(warehouse) as a:
        top = top_symbols_by_volume(a)
        charts = []
        for symbol in top["symbol"].to_list():
            size, w = symbol_windows(a, symbol)
            if w.height:
                charts.append(candles_chart(ident("trading-ohlc", symbol), symbol, size, w))
        alerts = alerts_frame(a)
    market = [para(esc(f"The {top.height} symbols with the most traded volume in the "
                       "aggregation job's windows (each window's final revision)."), "note"),
              table(["symbol", "volume", "trades"],
                    [[r["symbol"], int(r["volume"]), int(r["trades"])]
                     for r in top.iter_rows(named=True)],
                    table_id="trading-top-symbols", numeric=(1, 2)), *charts]
    counts = (alerts.group_by("severity").len().sort("len", descending=True)
              if alerts.height else pl.DataFrame({"severity": [], "len": []}))
    timeline = [alerts_chart("trading-alerts-timeline", alerts)] if alerts.height else \
        [para("No price alerts.", "note")]
    timeline.append(table(["severity", "alerts"],
                          [[r["severity"], int(r["len"])] for r in counts.iter_rows(named=True)],
                          table_id="trading-alerts-table", numeric=(1,)))
    return [section("Top symbols: OHLC and VWAP", market, "trading-top"),
            section("Price alerts", timeline, "trading-alerts")]


def reconciliation_section(checks: Sequence[tuple[str, int, int]]) -> str:
    rows = [[check, found, want, badge("OK", "ok") if found == want
             else badge("MISMATCH", "bad")] for check, found, want in checks]
    return section("Reconciliation with the simulator's truth", [table(
        ["check", "found", "injected/expected", ""], rows, table_id="trading-reconciliation",
        numeric=(1, 2), raw=(3,))], "trading-reconciliation-section")


def write_demo_report(target: Path, *, warehouse: Path, job_dirs: dict[str, Path],
                      checks: Sequence[tuple[str, int, int]], summary: str) -> Path:
    """Write the demo's report: reconciliation, market sections, then each job's run
    report (from its checkpoint folder) under a heading of its own."""
    body: list[Any] = [reconciliation_section(checks), *trading_sections(warehouse)]
    jobs = [f'<li><a href="#{ident("job", job)}">{esc(job)}</a></li>' for job in job_dirs]
    body.append(section("Jobs", [f"<nav><ul>{''.join(jobs)}</ul></nav>"], "jobs"))
    for job, folder in job_dirs.items():
        data = gather(folder)
        body.append(section(f"Job {job} ({data.view.pipeline})",
                            run_sections(data, prefix=job, level=3), ident("job", job)))
    target.write_text(page("Trading demo report", body, esc(summary)), encoding="utf-8")
    return target
