"""Self-contained HTML evaluation pages: one report per run and an index comparing runs.

A page is a single file that opens from disk with no server and no network: figures are inline
``data:image/png;base64`` URIs, the stylesheet and the few lines of script are inline, nothing
is fetched. All text passes through :func:`html.escape`, so a run name or config value holding
``<script>`` shows as text instead of running. Output is deterministic (no clock is read; a date
appears only when the caller passes one), so an unchanged evaluation rewrites identical bytes.

Tables are sortable by clicking a header: numeric cells carry their raw value in ``data-v`` so
``9`` sorts before ``10`` and missing values (shown as "–") always sort last.
"""

from __future__ import annotations

import base64
import html
import json
import logging
import math
import os
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from numbers import Integral, Real
from pathlib import Path
from typing import Any

from trainset.errors import TrainsetError
from trainset.provenance import atomic_path, jsonable

logger = logging.getLogger(__name__)

MISSING = "–"
_HASHLIKE = re.compile(r"^(sha256:)?[0-9a-f]{16,}$")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

CSS = """
:root { --ink: #1d2330; --muted: #5b6474; --rule: #d5d9e0; --band: #f4f6f9; --accent: #1f5fa8; }
* { box-sizing: border-box; }
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif;
       color: var(--ink); background: #fff; max-width: 1180px; margin: 0 auto; padding: 24px 28px 48px; }
h1 { font-size: 1.7em; margin: 0 0 .2em; }
h2 { font-size: 1.3em; margin: 1.8em 0 .5em; padding-bottom: .2em; border-bottom: 2px solid var(--rule); }
h3 { font-size: 1.05em; margin: 1.2em 0 .4em; }
p { margin: .4em 0 .8em; max-width: 80ch; }
a { color: var(--accent); }
.meta { color: var(--muted); font-size: .9em; }
nav.toc { background: var(--band); border: 1px solid var(--rule); border-radius: 6px; padding: 8px 16px; margin: 16px 0; }
nav.toc ol { margin: 4px 0; padding-left: 1.4em; }
nav.toc ol.many { columns: 2; }
.table-wrap { overflow-x: auto; margin: .4em 0 1.2em; }
table { border-collapse: collapse; font-size: .9em; font-variant-numeric: tabular-nums; }
caption { caption-side: bottom; text-align: left; color: var(--muted); font-size: .9em; padding-top: 4px; }
th, td { padding: 4px 10px; border-bottom: 1px solid var(--rule); text-align: left; vertical-align: top; }
thead th { border-bottom: 2px solid var(--ink); background: #fff; white-space: nowrap; }
th.num { text-align: right; }
tbody tr:nth-child(even) { background: var(--band); }
td.num { text-align: right; }
td.missing { color: var(--muted); text-align: center; }
td.key { font-weight: 600; white-space: nowrap; }
td.mono, pre { font-family: ui-monospace, "DejaVu Sans Mono", Menlo, Consolas, monospace; font-size: .85em; }
td.mono { word-break: break-all; }
table.sortable thead th { cursor: pointer; user-select: none; }
table.sortable thead th::after { content: " \\2195"; color: #b0b6c0; font-size: .8em; }
table.sortable thead th[aria-sort="ascending"]::after { content: " \\25B2"; color: var(--ink); }
table.sortable thead th[aria-sort="descending"]::after { content: " \\25BC"; color: var(--ink); }
.figures { display: flex; flex-wrap: wrap; gap: 8px 28px; align-items: flex-start; }
figure { margin: .6em 0 1.2em; max-width: 100%; }
figure img { display: block; max-width: 100%; height: auto; border: 1px solid var(--rule); }
figure img.broken { outline: 3px solid #c0392b; min-height: 40px; }
figcaption { color: var(--muted); font-size: .9em; margin-top: 4px; }
figcaption b { color: var(--ink); }
pre { background: var(--band); border: 1px solid var(--rule); border-radius: 4px; padding: 10px 12px;
      overflow-x: auto; white-space: pre-wrap; word-break: break-word; }
header .facts { color: var(--muted); font-size: .9em; margin: 0 0 .6em; }
header .facts span + span::before { content: " \\00B7  "; }
p.note { max-width: none; font-size: 1.05em; padding: 8px 12px; border-left: 4px solid var(--rule); background: var(--band); }
p.note.good { border-left-color: #2e7d32; }
p.note.bad { border-left-color: #c0392b; background: #fdecea; }
details.raw { margin: .6em 0 1.2em; }
details.raw summary { cursor: pointer; color: var(--accent); }
body.wide { max-width: none; }
.table-wrap.fit { overflow-x: visible; }
table.fit { width: 100%; }
table.fit thead th { white-space: normal; vertical-align: bottom; }
table.fit td, table.fit td.key { overflow-wrap: anywhere; white-space: normal; }
table.fit.sortable thead th::after { content: "\\00A0\\2195"; }
table.fit td.lines { white-space: pre-line; font-size: .92em; }
tr.loses td { background: #fdecea; }
td.verdict.worse { color: #a12a1d; font-weight: 600; }
td.verdict.better { color: #2e6b31; }
footer { margin-top: 3em; color: var(--muted); font-size: .85em; border-top: 1px solid var(--rule); padding-top: 8px; }
@media print {
  body { max-width: none; padding: 0; font-size: 11pt; }
  nav.toc { display: none; }
  a { color: inherit; text-decoration: none; }
  table.sortable thead th::after { content: ""; }
  figure, .table-wrap, pre { break-inside: avoid; }
  h2, h3 { break-after: avoid; }
  tbody tr:nth-child(even) { background: none; }
}
""".strip()

# Sort on header click (numeric-aware, missing values last) and mark every image as decoded
# or broken once the page has loaded, so a reader (or a headless check) sees a failed figure.
SCRIPT = """
(function () {
  function key(row, col) {
    var cell = row.cells[col];
    if (!cell || cell.classList.contains("missing") || cell.hasAttribute("data-last")) return null;
    var v = cell.getAttribute("data-v");
    return v !== null ? parseFloat(v) : cell.textContent.trim();
  }
  function sortBy(th) {
    var table = th.closest("table"), body = table.tBodies[0], col = th.cellIndex;
    var asc = th.getAttribute("aria-sort") !== "ascending";
    table.querySelectorAll("thead th").forEach(function (h) { h.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", asc ? "ascending" : "descending");
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = key(a, col), y = key(b, col);
      if (x === null || y === null) return (x === null) - (y === null);
      var c = (typeof x === "number" && typeof y === "number") ? x - y
        : String(x).localeCompare(String(y), undefined, {numeric: true, sensitivity: "base"});
      return asc ? c : -c;
    });
    rows.forEach(function (r) { body.appendChild(r); });
  }
  document.querySelectorAll("table.sortable thead th").forEach(function (th) {
    th.tabIndex = 0;
    th.addEventListener("click", function () { sortBy(th); });
    th.addEventListener("keydown", function (e) { if (e.key === "Enter") sortBy(th); });
  });
  window.addEventListener("load", function () {
    document.querySelectorAll("img").forEach(function (img) {
      var ok = img.complete && img.naturalWidth > 0;
      img.setAttribute("data-loaded", ok ? String(img.naturalWidth) : "0");
      if (!ok) img.classList.add("broken");
    });
    document.body.setAttribute("data-ready", "1");
  });
})();
""".strip()


# ----------------------------------------------------------------------------- content model
@dataclass(frozen=True)
class Table:
    """A titled table; rows are sequences in ``columns`` order or dicts keyed by column."""

    title: str
    columns: Sequence[str]
    rows: Sequence[Sequence[Any] | Mapping[str, Any]]
    caption: str = ""


@dataclass(frozen=True)
class Figure:
    """A titled PNG figure, embedded inline; ``caption`` says what to look for."""

    title: str
    png: bytes
    caption: str = ""


@dataclass(frozen=True)
class Preformatted:
    """A titled block of preformatted text (a config dump, a command line).

    ``collapsed`` shows only the title until clicked (``<details>``): raw dumps stay on the
    page for whoever needs them without pushing the results down.
    """

    title: str
    text: str
    collapsed: bool = False


@dataclass(frozen=True)
class Cell:
    """A cell whose text is not its value: ``sort`` orders the column (None sorts last)."""

    text: str
    sort: float | None = None
    classes: str = ""


@dataclass(frozen=True)
class Note:
    """A one-line statement set apart under the title (a verdict); ``tone``: good, bad or ''."""

    text: str
    tone: str = ""


@dataclass(frozen=True)
class Section:
    """One report section: a heading, an intro paragraph, then tables, text blocks, figures."""

    title: str
    intro: str = ""
    tables: Sequence[Table] = field(default_factory=list)
    figures: Sequence[Figure] = field(default_factory=list)
    preformatted: Sequence[Preformatted] = field(default_factory=list)


# ----------------------------------------------------------------------------- cells
def _esc(value: Any, breakable: bool = False) -> str:
    """Escaped text; ``breakable`` lets a narrow column wrap names after ``_`` or ``/`` (``<wbr>``)."""
    text = html.escape(str(value), quote=True)
    return re.sub(r"([_/])(?=\w)", r"\1<wbr>", text) if breakable else text


def format_value(value: Any) -> str:
    """Text of one cell: floats to 4 significant digits, integers exact, None/NaN as "–"."""
    if value is None:
        return MISSING
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, Integral):
        return str(int(value))
    if isinstance(value, Real):
        number = float(value)
        return MISSING if math.isnan(number) else f"{number:.4g}"
    return str(value)


def _rich_cell(cell: Cell, classes: str = "", breakable: bool = False) -> str:
    names = [c for c in (classes, cell.classes) if c]
    attrs = ""
    if cell.sort is None or not math.isfinite(cell.sort):
        attrs = " data-last"  # the sort script puts it after every value, as it does "–"
    else:
        attrs = f' data-v="{float(cell.sort)!r}"'
    cls = f' class="{" ".join(names)}"' if names else ""
    return f"<td{cls}{attrs}>{_esc(cell.text, breakable)}</td>"


def _cell(value: Any, classes: str = "", breakable: bool = False) -> str:
    """A ``<td>``; numbers get ``data-v`` (their raw value) for numeric sorting."""
    if isinstance(value, Cell):
        return _rich_cell(value, classes, breakable)
    text = format_value(value)
    names = [classes] if classes else []
    attrs = ""
    if text == MISSING and (value is None or isinstance(value, Real)):
        names.append("missing")
    elif isinstance(value, Real) and not isinstance(value, bool):
        names.append("num")
        number = float(value)
        raw = repr(number) if math.isfinite(number) else ("-Infinity" if number < 0 else "Infinity")
        attrs = f' data-v="{raw}"'
    elif isinstance(value, str) and _HASHLIKE.match(value):
        names.append("mono")
    cls = f' class="{" ".join(names)}"' if names else ""
    return f"<td{cls}{attrs}>{_esc(text, breakable)}</td>"


def _head(columns: Sequence[str], rows: list[list[Any]]) -> str:
    """Header cells; a column whose present values are all numbers is right-aligned."""
    cells = []
    for j, name in enumerate(columns):
        present = [r[j] for r in rows if format_value(r[j]) != MISSING]
        numeric = bool(present) and all(isinstance(v, Real) and not isinstance(v, bool)
                                        for v in present)
        cls = ' class="num"' if numeric else ""
        cells.append(f'<th scope="col"{cls}>{_esc(name)}</th>')
    return "".join(cells)


def _row_values(row: Sequence[Any] | Mapping[str, Any], columns: Sequence[str],
                where: str) -> list[Any]:
    if isinstance(row, Mapping):
        return [row.get(c) for c in columns]
    if isinstance(row, (str, bytes)) or not isinstance(row, Sequence):
        raise TrainsetError(f"{where}: a row must be a list or a dict, got {type(row).__name__}")
    if len(row) != len(columns):
        raise TrainsetError(f"{where}: row has {len(row)} values but there are {len(columns)} "
                            f"columns {list(columns)}")
    return list(row)


def _paragraphs(text: str) -> str:
    """Plain text to escaped ``<p>`` blocks, one per blank-line-separated paragraph."""
    parts = [p.strip() for p in re.split(r"\n\s*\n", text or "") if p.strip()]
    return "".join(f"<p>{_esc(p)}</p>\n" for p in parts)


def _slug(text: str, taken: set[str]) -> str:
    """A stable, unique anchor id for a section heading."""
    base = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "section"
    slug, i = base, 2
    while slug in taken:
        slug, i = f"{base}-{i}", i + 1
    taken.add(slug)
    return slug


# ----------------------------------------------------------------------------- blocks
def render_table(table: Table, sortable: bool = True, key_column: int | None = None,
                 mono_columns: Sequence[int] = ()) -> str:
    """One ``<table>`` (with its ``<h3>`` title) as HTML."""
    where = f"table {table.title!r}"
    rows = [_row_values(row, table.columns, where) for row in table.rows]
    head = _head(table.columns, rows)
    body = []
    for values in rows:
        cells = []
        for j, value in enumerate(values):
            classes = " ".join(c for c, on in (("key", j == key_column),
                                               ("mono", j in mono_columns)) if on)
            cells.append(_cell(value, classes))
        body.append("<tr>" + "".join(cells) + "</tr>")
    caption = f"<caption>{_esc(table.caption)}</caption>" if table.caption else ""
    cls = ' class="sortable"' if sortable else ""
    title = f"<h3>{_esc(table.title)}</h3>\n" if table.title else ""
    return (f'{title}<div class="table-wrap"><table{cls}>{caption}\n<thead><tr>{head}</tr>'
            f"</thead>\n<tbody>\n" + "\n".join(body) + "\n</tbody></table></div>\n")


def render_figure(figure: Figure) -> str:
    """One ``<figure>`` with the PNG inline as a base64 data URI."""
    png = bytes(figure.png) if isinstance(figure.png, (bytes, bytearray)) else b""
    if not png.startswith(PNG_SIGNATURE):
        raise TrainsetError(f"figure {figure.title!r}: png must be PNG bytes (as returned by "
                            "trainset.evaluate.figures), not a path or another image format")
    data = base64.b64encode(png).decode("ascii")
    alt = figure.title + (f": {figure.caption}" if figure.caption else "")
    caption = f"<b>{_esc(figure.title)}</b>" + (f" — {_esc(figure.caption)}"
                                                  if figure.caption else "")
    return (f'<figure><img src="data:image/png;base64,{data}" alt="{_esc(alt)}" '
            f'loading="eager"><figcaption>{caption}</figcaption></figure>\n')


def _header(title: str, subtitle: str = "", meta: Mapping[str, Any] | None = None,
            notes: Sequence[Note] = ()) -> str:
    """Title, a subtitle, one line of facts (``key: value`` pairs) and the notes under it."""
    parts = [f"<header><h1>{_esc(title)}</h1>\n"]
    if subtitle:
        parts.append(f'<p class="meta">{_esc(subtitle)}</p>\n')
    if meta:
        facts = "".join(f"<span>{_esc(k)}: <b>{_esc(format_value(v))}</b></span>" for k, v in meta.items())
        parts.append(f'<p class="facts">{facts}</p>\n')
    for note in notes:
        tone = f" {note.tone}" if note.tone in ("good", "bad") else ""
        parts.append(f'<p class="note{tone}">{_esc(note.text)}</p>\n')
    parts.append("</header>\n")
    return "".join(parts)


def _preformatted(block: Preformatted) -> str:
    if block.collapsed:
        return (f'<details class="raw"><summary>{_esc(block.title or "show")}</summary>'
                f"<pre>{_esc(block.text)}</pre></details>\n")
    heading = f"<h3>{_esc(block.title)}</h3>\n" if block.title else ""
    return f"{heading}<pre>{_esc(block.text)}</pre>\n"


def _page(title: str, body: str, generated: str | None, body_class: str = "") -> str:
    footer = "Generated by trainset" + (f" on {_esc(generated)}" if generated else "")
    cls = f' class="{body_class}"' if body_class else ""
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
            f"<title>{_esc(title)}</title>\n<style>\n{CSS}\n</style>\n</head>\n<body{cls}>\n"
            f"{body}<footer>{footer}</footer>\n<script>\n{SCRIPT}\n</script>\n</body>\n</html>\n")


# ----------------------------------------------------------------------------- pages
def render_report(title: str, sections: Sequence[Section], subtitle: str = "",
                  generated: str | None = None, meta: Mapping[str, Any] | None = None,
                  notes: Sequence[Note] = ()) -> str:
    """One run's evaluation report as a self-contained HTML page.

    Parameters
    ----------
    title : str
        Page title and heading (e.g. the run name).
    sections : sequence of Section
        Rendered in order, each with its tables, preformatted blocks and figures; a table of
        contents links to them when there are more than two.
    subtitle : str
        A line under the title (e.g. task and split).
    generated : str, optional
        A date to print in the footer; none by default so the page is reproducible.
    meta : dict, optional
        Facts for one line under the title (e.g. date, trainset version, config hash), in order.
    notes : sequence of Note
        Statements set apart under the title, before any section (e.g. the verdict).

    Returns
    -------
    str
        The HTML text; write it with :func:`write_page`.

    Raises
    ------
    TrainsetError
        A row of the wrong length or a figure that is not PNG bytes.
    """
    taken: set[str] = set()
    ids = [_slug(s.title, taken) for s in sections]
    parts = [_header(title, subtitle, meta, notes)]
    if len(sections) > 2:
        items = "".join(f'<li><a href="#{i}">{_esc(s.title)}</a></li>'
                        for i, s in zip(ids, sections))
        many = ' class="many"' if len(sections) > 6 else ""
        parts.append(f'<nav class="toc"><b>Contents</b><ol{many}>{items}</ol></nav>\n')
    for anchor, section in zip(ids, sections):
        parts.append(f'<section id="{anchor}">\n<h2>{_esc(section.title)}</h2>\n')
        parts.append(_paragraphs(section.intro))
        parts.extend(render_table(t, key_column=0) for t in section.tables)
        parts.extend(_preformatted(block) for block in section.preformatted)
        if section.figures:
            parts.append('<div class="figures">\n')
            parts.extend(render_figure(f) for f in section.figures)
            parts.append("</div>\n")
        parts.append("</section>\n")
    return _page(title, "".join(parts), generated)


def _flatten(record: Mapping[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    """Nested dict to (dotted key, value) pairs, in insertion order; lists become JSON."""
    pairs: list[tuple[str, Any]] = []
    for key, value in record.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            pairs.extend(_flatten(value, name + "."))
        elif isinstance(value, (list, tuple, Mapping)):
            pairs.append((name, json.dumps(jsonable(value, name), ensure_ascii=False)))
        else:
            pairs.append((name, value))
    return pairs


def provenance_section(config: Mapping[str, Any], provenance: Mapping[str, Any],
                       title: str = "Provenance") -> Section:
    """What produced this report: the run config as JSON and a table of hashes and versions.

    Parameters
    ----------
    config : dict
        The run's resolved config (``config.json``), shown pretty-printed with sorted keys.
    provenance : dict
        Flat or nested record, e.g. dataset / scaler / checkpoint sha256, code version and
        the split evaluated. Nested keys are shown dotted (``inputs.dataset``), in the given
        order, so the caller decides what reads first.
    title : str
        Section heading.

    Returns
    -------
    Section
        Ready to append to the report's sections.
    """
    rows = [(key, value) for key, value in _flatten(provenance)]
    table = Table("Hashes and versions", ["key", "value"], rows,
                  caption="SHA-256 digests identify the exact files evaluated.")
    text = json.dumps(jsonable(config, "run config"), indent=2, sort_keys=True, ensure_ascii=False)
    return Section(title, intro="Everything needed to reproduce these numbers.",
                   tables=[table], preformatted=[Preformatted("Run config (JSON)", text, collapsed=True)])


def render_index(rows: Sequence[Mapping[str, Any]], columns: Sequence[str],
                 links: Mapping[Any, str], title: str = "Runs", key: str | None = None,
                 intro: str = "", generated: str | None = None,
                 meta: Mapping[str, Any] | None = None, flagged: Collection[Any] = (),
                 multiline: Collection[str] = (), notes: Sequence[Note] = ()) -> str:
    """A page comparing all runs in one sortable table, each run linking to its report.

    The table fits the page's width (headers and cells wrap; nothing scrolls sideways), so
    every column is in view on a laptop screen.

    Parameters
    ----------
    rows : sequence of dict
        One dict per run; a column missing from a row shows as "–".
    columns : sequence of str
        Columns to show, in order.
    links : dict
        Value of the key column -> href (relative, e.g. ``"run_a/report.html"``).
    title : str
        Page title and heading.
    key : str, optional
        The column whose cell is the link; default the first column (the run name).
    intro : str
        Text under the heading (e.g. which split and metric to compare).
    generated : str, optional
        A date to print in the footer.
    meta : dict, optional
        Facts for one line under the title (date, versions, config hash).
    flagged : collection
        Key-column values whose rows are marked (``class="loses"``: shaded red).
    multiline : collection of str
        Columns whose text keeps its line breaks (one item per line).
    notes : sequence of Note
        Statements set apart under the title.

    Returns
    -------
    str
        The HTML text.

    Raises
    ------
    TrainsetError
        ``columns`` empty or ``key`` not among them.
    """
    if not columns:
        raise TrainsetError("render_index needs at least one column")
    key = columns[0] if key is None else key
    if key not in columns:
        raise TrainsetError(f"index key column {key!r} is not among columns {list(columns)}")
    k = list(columns).index(key)
    table_rows = [_row_values(row, columns, "index") for row in rows]
    head = _head(columns, table_rows)
    body = []
    for values in table_rows:
        cells = [_cell(v, "lines" if c in multiline else "", breakable=True) for c, v in zip(columns, values)]
        name = values[k]
        if name in links:
            cells[k] = (f'<td class="key"><a href="{_esc(links[name])}">'
                        f"{_esc(format_value(name), breakable=True)}</a></td>")
        flag = ' class="loses"' if name in flagged else ""
        body.append(f"<tr{flag}>" + "".join(cells) + "</tr>")
    table = (f'<div class="table-wrap fit"><table class="sortable fit">'
             f"<caption>{len(body)} runs; click a column header to sort.</caption>\n"
             f"<thead><tr>{head}</tr></thead>\n<tbody>\n" + "\n".join(body)
             + "\n</tbody></table></div>\n")
    content = f"{_header(title, meta=meta, notes=notes)}{_paragraphs(intro)}{table}"
    return _page(title, content, generated, body_class="wide")


def write_page(page: str, path: str | os.PathLike) -> Path:
    """Write an HTML page as UTF-8, atomically (a failed write leaves no partial page)."""
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_text(page, encoding="utf-8")
    logger.info("wrote %s (%.0f kB)", path, len(page.encode("utf-8")) / 1024)
    return path
