"""The sections of one run's report, made from its ``RunData``.

In order: the run (state, processes, records, time), its outputs (what each holds), the
conservation equation, the operators, late records and the watermark over event time,
duplicates over time, checkpoints, error reasons. Ids carry ``prefix`` so one page can
hold several runs (the trading demo's five jobs); every number a reader may want to look
up has one (``<prefix>-out-<tag>-read``, ``<prefix>-eq-<term>``, ...).
"""

from __future__ import annotations

from typing import Any

from surestream.ops.report import charts
from surestream.ops.report.conservation import Equation
from surestream.ops.report.gather import RunData, output_kind
from surestream.ops.report.html import (
    badge,
    esc,
    facts,
    ident,
    num,
    para,
    section,
    table,
    when,
)

STATES = {
    "finished": "finished: the input ended and the last checkpoint committed every output",
    "stopped": "stopped early on request, with a checkpoint to resume from",
    "failed": "failed: the outputs hold what the last checkpoint committed",
    "unfinished": "did not finish: no end was recorded (the process was killed, or it is "
                  "still running); the outputs hold what the last checkpoint committed",
}
#: charts of many points are thinned to this many (the SVG stays small)
MAX_POINTS = 4000


def run_sections(data: RunData, prefix: str = "", level: int = 2) -> list[str]:
    """The report's sections for one run (HTML parts); ``level``: their heading level."""
    p = prefix
    return [
        section("Run", [_summary(data, p)], ident(p, "run"), level),
        section("Outputs", [_outputs(data, p)], ident(p, "outputs"), level),
        section("Conservation", _conservation(data.equation, p), ident(p, "conservation"),
                level),
        section("Operators", [_operators(data, p)], ident(p, "operators"), level),
        section("Late records and the watermark", _late(data, p), ident(p, "late"), level),
        section("Duplicates over time", _duplicates(data, p), ident(p, "duplicates"), level),
        section("Checkpoints", _checkpoints(data, p), ident(p, "checkpoints"), level),
        section("Error reasons", _errors(data, p), ident(p, "errors"), level),
    ]


def _summary(data: RunData, p: str) -> str:
    h = data.history
    end = h.end
    started = h.first.get("started_at_ms")
    ended = end.get("at_ms") if end else None
    resumed = [s.restored_from for s in h.segments if s.restored_from is not None]
    cps = h.checkpoints
    items = [
        ("pipeline", f"<code>{esc(data.view.pipeline)}</code>"),
        ("state", f'<span id="{ident(p, "state")}">{badge(h.state)}</span> '
                  f"{esc(STATES.get(h.state, h.state))}"),
        ("records in", f'<span id="{ident(p, "records-in")}">{num(h.records_in)}</span>'),
        ("started", esc(when(started))),
        ("ended", esc(when(ended)) if ended else "-"),
        ("wall time", esc(f"{(ended - started) / 1000:,.1f} s") if ended and started
         else "-"),
        ("processes", esc(f"{len(h.segments)}" + (
            f" (resumed from checkpoint{'s' if len(resumed) > 1 else ''} "
            f"{', '.join(map(str, resumed))})" if resumed else ""))),
        ("checkpoints", esc(f"{sum(1 for c in cps if c.get('ok', True))} taken, "
                            f"{sum(1 for c in cps if not c.get('ok', True))} failed")),
        ("checkpoint folder", f"<code>{esc(data.run_dir)}</code>"),
        ("run id", esc(", ".join(str(s.run.get("run_id")) for s in h.segments))),
    ]
    warn = "" if h.state == "finished" else para(
        f"This run {esc(STATES.get(h.state, h.state))}.", "warn")
    return warn + facts(items, ident(p, "facts"))


def _outputs(data: RunData, p: str) -> str:
    rows, ids = [], {}
    written = data.written
    for r, (tag, out) in enumerate(sorted(data.view.outputs.items())):
        back = data.read.get(tag)
        rows.append([tag, output_kind(data.view, tag), out.where(), written.get(tag),
                     back.rows if back and back.rows is not None else (
                         back.note if back else "-")])
        ids[(r, 3)] = ident(p, "out", tag, "written")
        ids[(r, 4)] = ident(p, "out", tag, "read")
    return table(["output", "holds", "where", "written by the run", "read back (committed)"],
                 rows, table_id=ident(p, "outputs-table"), numeric=(3, 4), cell_ids=ids) + \
        para("<em>written</em>: records the run gave the output (its own count); "
             "<em>read back</em>: records the output holds now, counted by this report.",
             "note")


def _conservation(eq: Equation, p: str) -> list[str]:
    terms = " + ".join(
        f'{esc(t.name)} <b id="{ident(p, "eq", t.name)}">{num(t.value)}</b>'
        for t in eq.terms)
    sign = {"balanced": "=", "unbalanced": "&ne;"}.get(eq.status, "=?")
    line = (f'<div class="equation {esc(eq.status)}">in '
            f'<b id="{ident(p, "eq", "in")}">{num(eq.records_in.value)}</b> {sign} {terms}'
            f' &nbsp; <span id="{ident(p, "eq-status")}">{badge(eq.status)}</span>'
            + (f' &nbsp; difference <b id="{ident(p, "eq-difference")}">'
               f"{num(eq.difference)}</b>" if eq.difference else "") + "</div>")
    parts = [line]
    if eq.reason:
        parts.append(para(esc(f"Not judged: {eq.reason}.") if eq.status != "unknown"
                          else esc(f"Cannot be judged: {eq.reason}."), "warn"))
        if eq.status == "unknown" and eq.records_in.value is not None:
            known = sum(t.value or 0 for t in eq.terms)
            parts.append(para(esc(
                f"Known terms add up to {known:,}; the unknown ones "
                f"({', '.join(eq.unknown)}) would be {eq.records_in.value - known:,} "
                "if nothing else is missing."), "note"))
    rows = [["in", part.label, part.value] for part in eq.records_in.parts]
    for t in eq.terms:
        rows += [[t.name, part.label, part.value] for part in t.parts] or \
            [[t.name, "(no step of this kind on the path)", 0]]
    parts.append(table(["term", "from", "records"], rows, table_id=ident(p, "eq-terms"),
                       numeric=(2,)))
    parts.append(_explanation(eq))
    if eq.checks:
        parts.append(table(
            ["cross-check", "counted", "", "measured", "", ""],
            [[c.what, c.left_label, c.left, c.right_label, c.right,
              badge("ok") if c.ok else badge("mismatch", "bad") if c.ok is False else "-"]
             for c in eq.checks], table_id=ident(p, "eq-checks"), numeric=(2, 4), raw=(5,)))
    return parts


def _explanation(eq: Equation) -> str:
    path = eq.path
    steps = ", ".join(f"{st.name} ({st.type})" for st in path.ops) or "no steps"
    ends = "; ".join(
        f"into {e.step_type} {e.name}" if e.kind == "step" else f"the end of stream {e.name}"
        for e in path.ends)
    text = (
        "Every input record ends in exactly one place. <b>in</b> counts the records read "
        "from the sources. The <em>record-level path</em> is the steps that take each "
        f"record by itself: here {esc(steps)}; it ends {esc(ends or 'nowhere')}. "
        "<b>main</b> counts the records that reached that end -- records handed "
        "<em>into</em> a window or process step count there, not the window rows it "
        "makes of them -- and those a route step sent to other tags. <b>late</b> counts "
        "what the path's late split took out, <b>errors</b> the error records of the "
        "sources and the path's steps (error records of later steps and of outputs are "
        "not input records lost on the path), <b>duplicates</b> what dedup dropped"
        + (", <b>filtered</b> what a where step removed on purpose" if any(
            t.name == "filtered" for t in eq.terms) else "") + ". The counters are the "
        "operators' own (kept in their checkpointed state); records into a step and error "
        "reasons are the run's counts, added up over its processes. The cross-checks "
        "compare them with the outputs read back.")
    return para(text, "note")


def _operators(data: RunData, p: str) -> str:
    figures, problem = data.history.figures()
    counters = data.history.operator_counters
    rows = []
    for stream, st in data.view.steps():
        o = figures.operators.get(st.name, {}) if figures else {}
        emitted = ", ".join(f"{t} {n:,}" for t, n in sorted((o.get("emitted") or {}).items()))
        counts = ", ".join(f"{k} {v:,}" for k, v in sorted(counters.get(st.name, {}).items())
                           if v)
        rows.append([st.name, stream.name, st.type, o.get("records_in"),
                     o.get("records_out"), emitted, counts])
    note = para(esc(f"Records in and out are not known: {problem}."), "note") if problem \
        else ""
    return table(["operator", "stream", "step", "records in", "records out (main)",
                  "to other tags", "counters"], rows, table_id=ident(p, "operators-table"),
                 numeric=(3, 4)) + note


def _thin(xs: list[Any], ys: list[Any]) -> tuple[list[Any], list[Any]]:
    if len(xs) <= MAX_POINTS:
        return xs, ys
    step = len(xs) // MAX_POINTS + 1
    return xs[::step], ys[::step]


def _late(data: RunData, p: str) -> list[str]:
    parts = []
    groups = [(lp.tag, *_thin(lp.event_ms, lp.lateness_ms)) for lp in data.late
              if lp.event_ms]
    if groups:
        total = sum(len(lp.event_ms) for lp in data.late)
        parts.append(charts.scatter(
            ident(p, "chart-late-records"),
            f"Late records by event time ({total:,}, read back from "
            f"{', '.join(g[0] for g in groups)})", groups, "event time (UTC)",
            "lateness (ms behind the watermark)", x_is_time=True, integer=True))
    else:
        parts.append(para("No late records were read back (none were late, or the late "
                          "outputs are not local files with the late metadata columns).",
                          "note"))
    samples = [s for s in data.history.samples if s.get("watermark") is not None]
    if samples:
        late = [int((s.get("counters") or {}).get("late", 0)) for s in samples]
        parts.append(charts.lines(
            ident(p, "chart-watermark-lag"), "Watermark lag and late records over event time",
            [("watermark lag (ms)", [s["watermark"] for s in samples],
              [s.get("watermark_lag_ms") or 0 for s in samples])],
            "watermark (event time, UTC)", "lag (ms)", x_is_time=True,
            right=("late records (cumulative)", [s["watermark"] for s in samples], late,
                   "late records")))
        parts.append(para(esc(
            f"{len(samples)} samples of the run (taken every few hundred ms of wall time "
            "and at every checkpoint); the lag is how far the watermark trails the newest "
            "event time seen."), "note"))
    else:
        parts.append(para("No sample of the run had a watermark (no watermark step, or the "
                          "run was too short to sample one).", "note"))
    return parts


def _duplicates(data: RunData, p: str) -> list[str]:
    dedups = [st.name for _, st in data.view.steps() if st.type == "keyed_dedup"]
    if not dedups:
        return [para("The pipeline has no dedup step.", "note")]
    samples = data.history.samples
    if not samples:
        return [para("No samples were recorded.", "note")]
    dups = [int((s.get("counters") or {}).get("duplicates", 0)) for s in samples]
    with_wm = [s for s in samples if s.get("watermark") is not None]
    total = data.history.operator_counters
    final = sum(int(total.get(d, {}).get("duplicates", 0)) for d in dedups)
    parts = []
    if len(with_wm) >= 2:
        parts.append(charts.lines(
            ident(p, "chart-duplicates"), "Duplicates dropped over event time",
            [("duplicates (cumulative)", [s["watermark"] for s in with_wm],
              [int((s.get("counters") or {}).get("duplicates", 0)) for s in with_wm])],
            "watermark (event time, UTC)", "duplicates", x_is_time=True, step=True,
            integer=True))
    else:
        parts.append(charts.lines(
            ident(p, "chart-duplicates"), "Duplicates dropped over the run",
            [("duplicates (cumulative)", [s["at_ms"] for s in samples], dups)],
            "wall time (UTC)", "duplicates", x_is_time=True, step=True, integer=True))
    parts.append(para(esc(f"{final:,} duplicates dropped by {', '.join(dedups)} in all."),
                      "note"))
    return parts


def _checkpoints(data: RunData, p: str) -> list[str]:
    cps = data.history.checkpoints
    if not cps:
        return [para("No checkpoint was taken.", "note")]
    parts = [charts.bars(
        ident(p, "chart-checkpoints"), "Checkpoint durations",
        [str(c.get("id")) for c in cps], [float(c.get("duration_ms") or 0) for c in cps],
        "checkpoint", "duration (ms)",
        colours=[charts.COLOURS[0] if c.get("ok", True) else charts.COLOURS[1]
                 for c in cps])]
    rows = [[c.get("id"), when(c.get("at_ms")), c.get("duration_ms"), c.get("store_ms"),
             c.get("bytes_written"), c.get("bytes_total"), c.get("records_in"),
             "yes" if c.get("finished") else "",
             "ok" if c.get("ok", True) else f"failed: {c.get('error')}"] for c in cps]
    parts.append(table(["id", "at", "duration (ms)", "store (ms)", "bytes written",
                        "state bytes", "records in", "final", ""], rows,
                       table_id=ident(p, "checkpoints-table"), numeric=(2, 3, 4, 5, 6)))
    return parts


def _errors(data: RunData, p: str) -> list[str]:
    if not data.reasons:
        return [para("No error records.", "note")]
    rows = [[r.operator, r.error_type, r.count, "<br>".join(esc(_short(m))
                                                          for m in r.examples)]
            for r in data.reasons]
    labels = [f"{r.operator} / {r.error_type}" for r in data.reasons[:15]]
    return [
        charts.bars(ident(p, "chart-errors"), "Error records by operator and type", labels,
                    [r.count for r in data.reasons[:15]], "records", "", horizontal=True,
                    integer=True),
        table(["operator", "error type", "records", "examples"], rows,
              table_id=ident(p, "errors-table"), numeric=(2,), raw=(3,)),
        para(esc(f"From {data.reasons_from}."), "note"),
        *[para(f"Examples from <code>{esc(tag)}</code> (it does not keep the operator): "
               + "; ".join(f"<q>{esc(_short(m))}</q>" for m in messages), "note")
          for tag, messages in data.unattributed.items()],
    ]


def _short(message: str, limit: int = 240) -> str:
    return message if len(message) <= limit else message[:limit] + " ..."
