"""HTML building blocks for reports: escaping, tables, sections and the page around them.

One self-contained file: the style sheet is inline, charts are inline SVG, there is no
script and nothing is fetched (no http(s) address anywhere), so the report opens offline,
from an e-mail attachment or a CI artifact alike. Elements a reader (or a test) looks up
carry ids, prefixed per run when a page holds several runs.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

STYLE = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: #1b1f24;
       margin: 0 auto; max-width: 1100px; padding: 1.5em 2em 4em; }
h1 { font-size: 1.6em; margin-bottom: 0.1em; }
h2 { font-size: 1.3em; border-bottom: 1px solid #d0d7de; padding-bottom: 0.2em;
     margin-top: 2em; }
h3 { font-size: 1.08em; margin-top: 1.6em; }
.sub { color: #57606a; margin-top: 0; }
table { border-collapse: collapse; margin: 0.6em 0 1em; font-size: 13px; }
th, td { border: 1px solid #d0d7de; padding: 0.25em 0.6em; vertical-align: top; }
th { background: #f6f8fa; text-align: left; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
dl.facts { display: grid; grid-template-columns: max-content auto; gap: 0.15em 1.2em; }
dl.facts dt { color: #57606a; }
dl.facts dd { margin: 0; }
.equation { font-size: 1.15em; padding: 0.6em 0.9em; background: #f6f8fa;
            border-left: 4px solid #8c959f; font-variant-numeric: tabular-nums; }
.balanced { border-left-color: #1a7f37; } .unbalanced { border-left-color: #cf222e; }
.badge { display: inline-block; padding: 0.05em 0.55em; border-radius: 1em;
         font-size: 0.85em; font-weight: 600; color: white; background: #8c959f; }
.badge.ok, .badge.balanced, .badge.finished { background: #1a7f37; }
.badge.bad, .badge.unbalanced, .badge.failed { background: #cf222e; }
.badge.stopped, .badge.unfinished, .badge.unknown { background: #9a6700; }
.note { color: #57606a; }
.warn { background: #fff8c5; border: 1px solid #d4a72c; padding: 0.5em 0.8em; }
svg.chart { width: 100%; height: auto; max-width: 900px; display: block; }
code { background: #f6f8fa; padding: 0 0.25em; border-radius: 3px; }
nav ul { columns: 2; }
"""


def esc(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def ident(*parts: str) -> str:
    """An element id from parts (a run's prefix, a tag): letters, digits, ``-_.``."""
    return re.sub(r"[^A-Za-z0-9_.-]", "-", "-".join(p for p in parts if p))


def num(value: int | float | None) -> str:
    if value is None:
        return "unknown"
    return f"{value:,}" if isinstance(value, int) else f"{value:,.1f}"


def when(ms: int | None) -> str:
    if ms is None:
        return "-"
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] \
        + " UTC"


def badge(text: str, kind: str | None = None) -> str:
    return f'<span class="badge {esc(kind or text)}">{esc(text)}</span>'


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]], *, table_id: str | None = None,
          numeric: Sequence[int] = (), cell_ids: dict[tuple[int, int], str] | None = None,
          raw: Sequence[int] = ()) -> str:
    """A table; ``numeric`` column indexes are right-aligned, ``raw`` ones are HTML
    already; ``cell_ids`` (row, column) -> id."""
    cell_ids = cell_ids or {}
    out = [f'<table{_id(table_id)}><thead><tr>'
           + "".join(f"<th>{esc(h)}</th>" for h in headers) + "</tr></thead><tbody>"]
    for r, row in enumerate(rows):
        cells = []
        for c, value in enumerate(row):
            cls = ' class="n"' if c in numeric else ""
            text = value if c in raw else (num(value) if isinstance(value, int | float)
                                           and not isinstance(value, bool) else esc(value))
            cells.append(f"<td{_id(cell_ids.get((r, c)))}{cls}>{text}</td>")
        out.append("<tr>" + "".join(cells) + "</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def facts(items: Iterable[tuple[str, str]], facts_id: str | None = None) -> str:
    """A definition list; values are HTML already."""
    return f'<dl class="facts"{_id(facts_id)}>' + "".join(
        f"<dt>{esc(k)}</dt><dd>{v}</dd>" for k, v in items) + "</dl>"


def section(title: str, body: Iterable[str], section_id: str, level: int = 2) -> str:
    return (f'<section id="{esc(section_id)}"><h{level}>{esc(title)}</h{level}>'
            + "\n".join(body) + "</section>")


def para(text: str, cls: str | None = None) -> str:
    """A paragraph of HTML (escape what you put in)."""
    return f'<p class="{esc(cls)}">{text}</p>' if cls else f"<p>{text}</p>"


def page(title: str, body: Iterable[str], subtitle: str = "") -> str:
    """The whole document around ``body`` (HTML parts, in order)."""
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>{esc(title)}</title><style>{STYLE}</style></head><body>"
            f"<h1>{esc(title)}</h1>"
            + (f'<p class="sub">{subtitle}</p>' if subtitle else "")
            + "\n".join(body) + "</body></html>\n")


def _id(value: str | None) -> str:
    return f' id="{esc(value)}"' if value else ""
