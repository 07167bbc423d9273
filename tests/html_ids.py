"""Reading the HTML pages the tests check (the run report, the demo's report.html): the
text of every element with an id, nested text included, and the ids of the inline svgs."""

from __future__ import annotations

from html.parser import HTMLParser


class ById(HTMLParser):
    """The text of every element with an id (nested text included), and the svg ids."""

    def __init__(self) -> None:
        super().__init__()
        self.text: dict[str, str] = {}
        self.svgs: list[str] = []
        self._open: list[tuple[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        ident = dict(attrs).get("id")
        if tag == "svg":
            self.svgs.append(ident or "")
        if ident:
            self.text.setdefault(ident, "")
        self._open.append((tag, ident))

    def handle_endtag(self, tag: str) -> None:
        while self._open:
            if self._open.pop()[0] == tag:
                break

    def handle_data(self, data: str) -> None:
        for _, ident in self._open:
            if ident:
                self.text[ident] += data
