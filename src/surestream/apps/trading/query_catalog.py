"""The trading warehouse's named queries: name, options, help -- without the engine.

Why a module apart from ``analytics``: ``surestream query``'s parser lists these names and
options on every ``surestream`` command line, and ``analytics`` imports DuckDB and the
warehouse readers (pyarrow.dataset, pandas: ~0.3 s). Every ``surestream run`` child that
``verify`` starts paid that for a parser it never used. ``QuerySpec.method`` names the
``TradingAnalytics`` method, looked up when the query runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class QuerySpec:
    """A named query: the ``TradingAnalytics`` method answering it, the keyword options it
    accepts (those in ``required`` must be given) and a one-line help."""

    name: str
    method: str
    options: tuple[str, ...]
    help: str
    required: tuple[str, ...] = ()

    def run(self, analytics: Any, **options: Any) -> Any:
        """The answer (a ``polars.DataFrame``) of ``analytics`` (a ``TradingAnalytics``)."""
        unknown = set(options) - set(self.options)
        if unknown:
            raise ValueError(f"{self.name} does not take {', '.join(sorted(unknown))}")
        missing = [o for o in self.required if options.get(o) is None]
        if missing:
            raise ValueError(f"{self.name} needs {', '.join(missing)}")
        return getattr(analytics, self.method)(**options)


#: query name (as the CLI spells it) -> its spec; the plan's four first
QUERIES: dict[str, QuerySpec] = {spec.name: spec for spec in (
    QuerySpec("top-traded-symbols", "top_traded_symbols", ("top_n", "since_hours", "now"),
              "FILLED trades of the last hours per symbol, by volume"),
    QuerySpec("portfolio-analysis", "portfolio_analysis", ("account_id",),
              "an account's open positions: net position, net cost, cost basis",
              required=("account_id",)),
    QuerySpec("compare-volume-to-historical", "compare_volume_to_historical",
              ("symbol", "now"), "today's volume against the 7/30/90-day averages",
              required=("symbol",)),
    QuerySpec("sector-performance", "sector_performance", ("since_hours", "now"),
              "FILLED trades of the last hours per sector"),
    QuerySpec("top-symbols", "top_symbols", ("limit", "side"),
              "all-time symbols by traded value: trades, volume, value, VWAP"),
    QuerySpec("windows", "final_windows", ("size", "symbol"),
              "final (latest-revision) trade aggregate windows"),
    QuerySpec("alerts", "alerts_by_severity", (), "price alerts per severity"),
)}
