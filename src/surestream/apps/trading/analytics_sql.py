"""The SQL of the trading analytics: fixed text; every user value arrives as a ``$n`` parameter.

The views these statements read (``trades``, ``sector_trades``, ``trade_aggregates``, ...)
are created by ``TradingAnalytics``. "FILLED" means ``upper(status) = 'FILLED'``: the router
upper-cases statuses, and raw data read directly may not be.

The time-relative questions take a reference time ``ref`` in epoch milliseconds: the bound
``now`` when given, else the latest event time in the data the question reads -- so a
replayed or simulated warehouse answers the same whenever it is asked.
"""

from __future__ import annotations

#: $1 top_n, $2 the period in ms, $3 now in epoch ms (NULL: the latest trade's time)
TOP_TRADED_SYMBOLS = """
WITH ref AS (SELECT coalesce($3::BIGINT, max(timestamp_ms)) AS ms FROM trades),
recent AS (
    SELECT t.symbol, t.quantity, t.price
    FROM trades t, ref
    WHERE upper(t.status) = 'FILLED'
      AND t.timestamp_ms > ref.ms - $2::BIGINT AND t.timestamp_ms <= ref.ms
)
SELECT symbol,
       count(*)                                                        AS trade_count,
       CAST(sum(quantity) AS DOUBLE)                                   AS total_volume,
       sum(quantity * price)                                           AS total_notional,
       round(sum(quantity * price) / nullif(sum(quantity), 0), 4)      AS vwap,
       min(price)                                                      AS low,
       max(price)                                                      AS high,
       round((max(price) - min(price)) / nullif(min(price), 0) * 100, 2) AS price_range_pct
FROM recent
GROUP BY symbol
ORDER BY total_volume DESC, symbol
LIMIT $1
"""

#: $1 account_id
PORTFOLIO_ANALYSIS = """
WITH legs AS (
    SELECT symbol,
           count(*)                                                           AS trade_count,
           CAST(coalesce(sum(quantity) FILTER (upper(side) = 'BUY'), 0) AS DOUBLE)  AS bought,
           CAST(coalesce(sum(quantity) FILTER (upper(side) = 'SELL'), 0) AS DOUBLE) AS sold,
           coalesce(sum(quantity * price) FILTER (upper(side) = 'BUY'), 0.0)  AS buy_notional,
           coalesce(sum(quantity * price) FILTER (upper(side) = 'SELL'), 0.0) AS sell_notional
    FROM trades
    WHERE account_id = $1 AND upper(status) = 'FILLED'
    GROUP BY symbol
)
SELECT $1::VARCHAR                                                   AS account_id,
       symbol,
       trade_count,
       bought                                                        AS total_bought,
       sold                                                          AS total_sold,
       bought - sold                                                 AS net_position,
       buy_notional - sell_notional                                  AS net_cost,
       round((buy_notional - sell_notional) / (bought - sold), 4)    AS avg_cost_basis
FROM legs
WHERE bought <> sold
ORDER BY abs(buy_notional - sell_notional) DESC, symbol
"""

#: the final result of each aggregate window: its latest revision (earlier ones are updates)
FINAL_AGGREGATES = """
SELECT * FROM trade_aggregates
QUALIFY row_number() OVER (PARTITION BY symbol, window_size, window_start
                           ORDER BY revision DESC NULLS LAST,
                                    computed_at DESC NULLS LAST) = 1
"""

#: $1 symbol, $2 now in epoch ms (NULL: the latest 1-minute window's start)
COMPARE_VOLUME_TO_HISTORICAL = """
WITH minutes AS (SELECT symbol, window_start, total_volume FROM final_aggregates
                 WHERE window_size = '1m'),
ref AS (SELECT coalesce($2::BIGINT, max(window_start)) AS ms FROM minutes),
today AS (SELECT CAST(epoch_ms(ms) AS DATE) AS day, ms FROM ref WHERE ms IS NOT NULL),
daily AS (
    SELECT CAST(epoch_ms(m.window_start) AS DATE)                     AS day,
           coalesce(sum(m.total_volume) FILTER (m.symbol = $1), 0.0)  AS volume
    FROM minutes m, today t
    WHERE m.window_start <= t.ms
    GROUP BY ALL
),
history AS (
    SELECT avg(d.volume) FILTER (d.day >= t.day - 7)   AS avg_7d,
           avg(d.volume) FILTER (d.day >= t.day - 30)  AS avg_30d,
           avg(d.volume)                                AS avg_90d,
           count(*) FILTER (d.day >= t.day - 7)         AS days_7d,
           count(*) FILTER (d.day >= t.day - 30)        AS days_30d,
           count(*)                                     AS days_90d
    FROM daily d, today t
    WHERE d.day < t.day AND d.day >= t.day - 90
)
SELECT $1::VARCHAR                                                      AS symbol,
       t.day                                                            AS "date",
       coalesce((SELECT volume FROM daily WHERE day = t.day), 0.0)      AS today_volume,
       h.avg_7d, h.avg_30d, h.avg_90d,
       round((coalesce((SELECT volume FROM daily WHERE day = t.day), 0.0) - h.avg_30d)
             / nullif(h.avg_30d, 0) * 100, 2)                           AS pct_vs_30d_avg,
       h.days_7d, h.days_30d, h.days_90d
FROM today t, history h
"""

#: $1 the period in ms, $2 now in epoch ms (NULL: the latest trade's time)
SECTOR_PERFORMANCE = """
WITH ref AS (SELECT coalesce($2::BIGINT, max(timestamp_ms)) AS ms FROM sector_trades),
per_symbol AS (
    SELECT coalesce(s.sector, 'UNKNOWN')                    AS sector, s.symbol,
           count(*)                                         AS trades,
           sum(s.quantity)                                  AS volume,
           sum(s.quantity * s.price)                        AS notional,
           arg_min(s.price, row(s.timestamp_ms, s.trade_id)) AS first_price,
           arg_max(s.price, row(s.timestamp_ms, s.trade_id)) AS last_price
    FROM sector_trades s, ref
    WHERE upper(s.status) = 'FILLED'
      AND s.timestamp_ms > ref.ms - $1::BIGINT AND s.timestamp_ms <= ref.ms
    GROUP BY ALL
)
SELECT sector,
       count(*)                                                               AS symbol_count,
       CAST(sum(trades) AS BIGINT)                                            AS trade_count,
       CAST(sum(volume) AS DOUBLE)                                            AS total_volume,
       sum(notional)                                                          AS total_notional,
       round(avg((last_price - first_price) / nullif(first_price, 0) * 100), 2)
           AS avg_price_change_pct
FROM per_symbol
GROUP BY sector
ORDER BY total_notional DESC, sector
"""

#: all-time by traded value, the demo report's table; $1 side or NULL, $2 limit
TOP_SYMBOLS_BY_VALUE = """
SELECT symbol,
       count(*)                                            AS trades,
       CAST(sum(quantity) AS DOUBLE)                       AS volume,
       sum(quantity * price)                               AS value,
       sum(quantity * price) / nullif(sum(quantity), 0)    AS vwap
FROM trades
WHERE ($1::VARCHAR IS NULL OR upper(side) = $1)
GROUP BY symbol
ORDER BY value DESC, symbol
LIMIT $2
"""

#: $1 window size, $2 symbol or NULL
FINAL_WINDOWS = """
SELECT * FROM final_aggregates
WHERE window_size = $1 AND ($2::VARCHAR IS NULL OR symbol = $2)
ORDER BY window_start, symbol
"""

ALERTS_BY_SEVERITY = """
WITH alerts AS (
    SELECT severity, symbol, direction,
           coalesce(pct_change, abs(change_pct))    AS pct_change,
           coalesce(detected_at_ms, alert_ts)       AS detected_at_ms
    FROM price_alerts
)
SELECT severity,
       count(*)                                      AS alerts,
       count(DISTINCT symbol)                        AS symbols,
       count(*) FILTER (direction = 'UP')            AS up,
       count(*) FILTER (direction = 'DOWN')          AS down,
       avg(abs(pct_change))                          AS avg_abs_change_pct,
       max(abs(pct_change))                          AS max_abs_change_pct,
       min(detected_at_ms)                           AS first_alert_ts,
       max(detected_at_ms)                           AS last_alert_ts
FROM alerts
GROUP BY severity
ORDER BY CASE severity WHEN 'CRITICAL' THEN 0 WHEN 'HIGH' THEN 1 WHEN 'MEDIUM' THEN 2
         ELSE 3 END, severity
"""
