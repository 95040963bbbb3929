"""Report and index pages: structure, escaping, number formatting, links, atomic writes."""

from __future__ import annotations

import base64
import json
from html.parser import HTMLParser

import pytest

from trainset.errors import TrainsetError
from trainset.evaluate import figures as F
from trainset.evaluate.html import (Figure, Section, Table, format_value, provenance_section,
                                    render_index, render_report, write_page)

VOID = {"meta", "img", "br", "hr", "link", "input", "col", "wbr", "source"}


class Page(HTMLParser):
    """Collects tables (rows of cell texts), images, links and scripts; checks tag nesting."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.tables: list[dict] = []
        self.images: list[dict] = []
        self.links: list[tuple[str, str]] = []
        self.scripts: list[str] = []
        self.pre: list[str] = []
        self.title = ""
        self.text: list[str] = []
        self._cell: list[str] | None = None
        self._href: str | None = None
        self._href_text = ""
        self._in = ""

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag not in VOID:
            self.stack.append(tag)
        if tag == "table":
            self.tables.append({"head": [], "rows": [], "classes": attrs.get("class", "")})
        elif tag == "tr":
            self.tables[-1]["rows"].append([])
        elif tag in ("td", "th"):
            self._cell = []
        elif tag == "img":
            self.images.append(attrs)
        elif tag == "a":
            self._href, self._href_text = attrs.get("href"), ""
        elif tag in ("script", "title", "pre"):
            self._in = tag
            if tag == "pre":
                self.pre.append("")

    def handle_endtag(self, tag):
        assert self.stack and self.stack[-1] == tag, f"</{tag}> closes <{self.stack[-1:]}>"
        self.stack.pop()
        if tag in ("td", "th"):
            self.tables[-1]["rows"][-1].append("".join(self._cell).strip())
            self._cell = None
        elif tag == "tr" and "thead" in self.stack:
            self.tables[-1]["head"] = self.tables[-1]["rows"].pop()
        elif tag == "a":
            self.links.append((self._href, self._href_text))
        if tag == self._in:
            self._in = ""

    def handle_data(self, data):
        self.text.append(data)
        if self._cell is not None:
            self._cell.append(data)
        if self._href is not None:
            self._href_text += data
        if self._in == "script":
            self.scripts.append(data)
        elif self._in == "title":
            self.title += data
        elif self._in == "pre":
            self.pre[-1] += data


def parse(page: str) -> Page:
    parser = Page()
    parser.feed(page)
    parser.close()
    assert parser.stack == [], f"unclosed tags {parser.stack}"
    return parser


@pytest.fixture(scope="module")
def pngs() -> list[bytes]:
    return [F.per_step_metric({"model": [0.5, 0.7, 0.8]}, "accuracy"),
            F.confusion_matrix([[5, 1], [2, 7]], ["a", "b"])]


def _report(pngs: list[bytes], title: str = "Run r1") -> str:
    sections = [
        Section("Scores", "Test split.\n\nSecond paragraph.",
                tables=[Table("Summary", ["metric", "value", "n"],
                              [["loss", 0.0123456, 100], ["auc", float("nan"), None],
                               {"metric": "rows", "value": 1234567.0, "n": 12}],
                              caption="Lower loss is better.")],
                figures=[Figure("Accuracy", pngs[0], "Per step.")]),
        Section("Errors", tables=[Table("Per class", ["class", "recall"], [["a", 0.8], ["b", 0.7]])],
                figures=[Figure("Confusion", pngs[1])]),
    ]
    return render_report(title, sections, subtitle="seq2seq")


def test_report_structure_tables_and_figures(pngs) -> None:
    page = parse(_report(pngs))
    assert page.title == "Run r1"
    assert [len(t["rows"]) for t in page.tables] == [3, 2]
    assert page.tables[0]["head"] == ["metric", "value", "n"]
    assert page.tables[0]["rows"][0] == ["loss", "0.01235", "100"]
    assert page.tables[0]["rows"][1] == ["auc", "–", "–"]
    assert page.tables[0]["rows"][2] == ["rows", "1.235e+06", "12"]
    assert len(page.images) == 2
    for img, png in zip(page.images, pngs):
        assert img["src"].startswith("data:image/png;base64,")
        assert base64.b64decode(img["src"].split(",", 1)[1]) == png
        assert img["alt"]
    assert "Lower loss is better." in "".join(page.text)


def test_report_escapes_text(pngs) -> None:
    evil = '<script>alert("x")</script> & co'
    sections = [Section(evil, evil, tables=[Table(evil, [evil], [[evil]], caption=evil)],
                        figures=[Figure(evil, pngs[0], evil)])]
    html = render_report(evil, sections)
    assert "<script>alert" not in html
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; co" in html
    page = parse(html)
    assert page.title == evil
    assert page.tables[0]["head"] == [evil] and page.tables[0]["rows"] == [[evil]]
    assert page.images[0]["alt"].startswith(evil)
    assert all("alert" not in s for s in page.scripts)


def test_report_is_deterministic(pngs) -> None:
    assert _report(pngs) == _report(pngs)
    assert "Generated by trainset on 2024-01-02" in render_report("t", [], generated="2024-01-02")
    assert " on " not in render_report("t", []).split("<footer>")[1].split("</footer>")[0]


def test_format_value() -> None:
    import numpy as np

    assert format_value(0.000123456) == "0.0001235"
    assert format_value(np.float32(2.5)) == "2.5"
    assert format_value(np.int64(123456789)) == "123456789"
    assert format_value(float("nan")) == format_value(None) == "–"
    assert format_value(float("inf")) == "inf"
    assert format_value(True) == "yes"
    assert format_value("text") == "text"


def test_bad_rows_and_figures_raise(pngs) -> None:
    with pytest.raises(TrainsetError, match="2 values but there are 3 columns"):
        render_report("t", [Section("s", tables=[Table("x", ["a", "b", "c"], [[1, 2]])])])
    with pytest.raises(TrainsetError, match="PNG bytes"):
        render_report("t", [Section("s", figures=[Figure("x", b"GIF89a....")])])


def test_provenance_section(pngs) -> None:
    config = {"training": {"lr": 0.001, "epochs": 5}, "model": {"name": "mlp<b>"}}
    prov = {"dataset_sha256": "a" * 64, "scaler_sha256": "b" * 64,
            "checkpoint": {"path": "best.pt", "sha256": "c" * 64},
            "code_version": "0.1.0", "split": "test", "worlds": ["nk", "var"]}
    section = provenance_section(config, prov)
    page = parse(render_report("r", [section]))
    rows = dict(page.tables[0]["rows"])
    assert rows["dataset_sha256"] == "a" * 64
    assert rows["checkpoint.sha256"] == "c" * 64
    assert rows["split"] == "test" and rows["code_version"] == "0.1.0"
    assert rows["worlds"] == '["nk", "var"]'
    assert json.loads(page.pre[0]) == config
    assert 'class="mono">' + "a" * 64 in render_report("r", [section])


def _index() -> str:
    rows = [{"run": "run_10", "val_loss": 0.1, "auc": 0.9},
            {"run": "run_2", "val_loss": float("nan"), "auc": 0.95},
            {"run": "b<i>", "val_loss": 1.5}]
    links = {"run_10": "run_10/report.html", "run_2": "run_2/report.html",
             "b<i>": "b<i>/report.html"}
    return render_index(rows, ["run", "val_loss", "auc"], links, title="All runs")


def test_index_table_links_and_sort_script() -> None:
    html = _index()
    page = parse(html)
    (table,) = page.tables
    assert "sortable" in table["classes"]
    assert table["head"] == ["run", "val_loss", "auc"]
    assert table["rows"] == [["run_10", "0.1", "0.9"], ["run_2", "–", "0.95"],
                             ["b<i>", "1.5", "–"]]
    assert page.links == [("run_10/report.html", "run_10"), ("run_2/report.html", "run_2"),
                          ("b<i>/report.html", "b<i>")]
    script = "".join(page.scripts)
    assert "addEventListener" in script and "data-v" in script and "localeCompare" in script
    assert 'data-v="0.1"' in html and 'data-v="1.5"' in html
    assert "http://" not in html and "https://" not in html and "<link" not in html
    assert html == _index()


def test_index_rejects_unknown_key() -> None:
    with pytest.raises(TrainsetError, match="not among columns"):
        render_index([], ["run"], {}, key="name")


def test_write_page_atomic_utf8(tmp_path, pngs) -> None:
    target = tmp_path / "deep" / "report.html"
    html = _report(pngs, title="Ünïcode – run")
    assert write_page(html, target) == target
    assert target.read_text(encoding="utf-8") == html
    assert [p.name for p in target.parent.iterdir()] == ["report.html"]


def test_index_flags_rows_wraps_names_and_states_facts() -> None:
    from trainset.evaluate.html import Cell, Note

    rows = [{"run": "long_run_name", "vs": Cell("worse by 0.1 (20.0%)", -0.2, "verdict worse"), "other": "a 1\nb 2"},
            {"run": "ok", "vs": Cell("no baseline"), "other": ""}]
    html = render_index(rows, ["run", "vs", "other"], {"ok": "ok/report.html"}, flagged={"long_run_name"},
                        multiline={"other"}, meta={"evaluated": "2024-01-02", "config sha256": "abc<d>"},
                        notes=[Note("1 of 2 runs <lose>", "bad")])
    page = parse(html)
    assert page.tables[0]["rows"] == [["long_run_name", "worse by 0.1 (20.0%)", "a 1\nb 2"],
                                      ["ok", "no baseline", ""]]
    assert '<tr class="loses"><td>long_<wbr>run_<wbr>name</td>' in html  # wraps after "_", not mid-word
    assert 'class="verdict worse" data-v="-0.2"' in html and 'class="verdict" data-last' not in html
    assert "<td data-last>no baseline</td>" in html  # no sort value: sorts after every value
    assert '<td class="lines">a 1\nb 2</td>' in html
    assert "evaluated: <b>2024-01-02</b>" in html and "abc&lt;d&gt;" in html
    assert '<p class="note bad">1 of 2 runs &lt;lose&gt;</p>' in html
    assert '<body class="wide">' in html and 'class="sortable fit"' in html
    assert html == render_index(rows, ["run", "vs", "other"], {"ok": "ok/report.html"}, flagged={"long_run_name"},
                                multiline={"other"}, meta={"evaluated": "2024-01-02", "config sha256": "abc<d>"},
                                notes=[Note("1 of 2 runs <lose>", "bad")])


def test_report_notes_facts_and_collapsed_config_after_results(pngs) -> None:
    from trainset.evaluate.html import Note

    sections = [Section("Scores", tables=[Table("t", ["a"], [[1]])]),
                provenance_section({"lr": 1}, {"split": "test"})]
    html = render_report("r", sections, meta={"trainset": "0.1.0"}, notes=[Note("rmse 0.6: worse", "bad")])
    assert html.index('<p class="note bad">rmse 0.6: worse</p>') < html.index("<h2>Scores</h2>")
    assert html.index("<h2>Scores</h2>") < html.index('<details class="raw"><summary>Run config (JSON)</summary><pre>')
    assert "<details open" not in html and "trainset: <b>0.1.0</b>" in html
