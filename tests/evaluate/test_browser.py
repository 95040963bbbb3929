"""Open the pages in headless Chromium: they render, images decode, the sort script works.

This is the check a string-level test cannot make: that a real browser, opening the file from
disk with no server, draws the tables and decodes every inline PNG. The page's own script marks
each ``<img>`` with ``data-loaded`` (its natural width, 0 when it failed to decode) on load,
and ``--dump-dom`` serialises the DOM after the load event, so the dump says what rendered.
"""

from __future__ import annotations

import io
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from matplotlib.image import imread

from trainset.evaluate import figures as F
from trainset.evaluate.html import (Figure, Section, Table, provenance_section, render_index,
                                    render_report, write_page)

CHROMIUM = shutil.which("chromium")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="headless browser check needs Debian's `chromium` on PATH "
                             "(apt-get install chromium)")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
         "--no-first-run", "--disable-background-networking", "--disable-component-update",
         "--disable-sync"]
WIDTH, HEIGHT = 1200, 2000
SORTS = ((1, 2), (2, 1), (0, 1))  # (header index, clicks)


def _chromium(tmp_path: Path, page: Path, *args: str) -> subprocess.CompletedProcess:
    profile = tmp_path / f"profile-{page.stem}-{args[0].strip('-').split('=')[0]}"
    cmd = [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args, page.resolve().as_uri()]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, f"chromium failed ({result.returncode}): {result.stderr[-2000:]}"
    return result


def _screenshot(tmp_path: Path, page: Path) -> np.ndarray:
    shot = tmp_path / f"{page.stem}.png"
    _chromium(tmp_path, page, f"--window-size={WIDTH},{HEIGHT}", f"--screenshot={shot}")
    assert shot.is_file() and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    return imread(io.BytesIO(shot.read_bytes()), format="png")[..., :3]


def _dom(tmp_path: Path, page: Path) -> "Dom":
    dom = Dom()
    dom.feed(_chromium(tmp_path, page, "--dump-dom").stdout)
    return dom


class Dom(HTMLParser):
    """Rows per table (cell texts), image attributes and the body's attributes."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tables: list[list[list[str]]] = []
        self.images: list[dict] = []
        self.body: dict = {}
        self._cell: list[str] | None = None
        self._section = ""

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "body":
            self.body = attrs
        elif tag == "table":
            self.tables.append([])
        elif tag in ("thead", "tbody"):
            self._section = tag
        elif tag == "tr" and self._section == "tbody":
            self.tables[-1].append([])
        elif tag == "td":
            self._cell = []
        elif tag == "img":
            self.images.append(attrs)

    def handle_endtag(self, tag):
        if tag == "td" and self._cell is not None:
            self.tables[-1][-1].append("".join(self._cell).strip())
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


@pytest.fixture(scope="module")
def pages(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("pages")
    history = [{"epoch": e, "train_loss": 1 / e, "val_loss": 1 / e + 0.01 * max(0, e - 5) ** 2,
                "lr": 1e-3 * 0.8 ** e} for e in range(1, 11)]
    matrix = [[40, 3, 1], [5, 33, 2], [1, 4, 38]]
    report = render_report("Run <alpha> report", [
        Section("Training", "Loss per epoch.", figures=[
            Figure("Learning curves", F.learning_curves(history), "Best epoch starred.")],
            tables=[Table("Summary", ["metric", "value"],
                          [["val loss", 0.0423], ["epochs", 10], ["auc", None]])]),
        Section("Classes", figures=[Figure("Confusion", F.confusion_matrix(matrix, "abc"))],
                tables=[Table("Recall", ["class", "recall"], [["a", 0.9], ["b", 0.825]])]),
        provenance_section({"model": {"name": "mlp"}}, {"checkpoint_sha256": "f" * 64}),
    ])
    rows = [{"run": "run_10", "val_loss": 0.5, "auc": 0.91},
            {"run": "run_2", "val_loss": float("nan"), "auc": 0.95},
            {"run": "run_1", "val_loss": 0.05, "auc": None},
            {"run": "run_3", "val_loss": 1.5, "auc": 0.7}]
    index = render_index(rows, ["run", "val_loss", "auc"],
                         {r["run"]: f"{r['run']}/report.html" for r in rows})
    broken = render_report("broken", [Section("s", figures=[
        Figure("corrupt", b"\x89PNG\r\n\x1a\n" + b"\x00garbage" * 20)])])
    out = {"report": write_page(report, root / "run" / "report.html"),
           "index": write_page(index, root / "index.html"),
           "broken": write_page(broken, root / "broken.html")}
    # Click headers as a user would, after the page's own script has run.
    for column, clicks in SORTS:
        click = (f"<script>var th = document.querySelectorAll('thead th')[{column}];"
                 + "th.click();" * clicks + "</script></body>")
        out[f"sorted-{column}-{clicks}"] = write_page(index.replace("</body>", click),
                                                      root / f"sorted-{column}-{clicks}.html")
    return out


def test_report_screenshot_is_rendered(pages, tmp_path) -> None:
    image = _screenshot(tmp_path, pages["report"])
    assert image.shape[:2] == (HEIGHT, WIDTH)
    rgb = (image.reshape(-1, 3) * 255).astype(np.uint8)
    colours = len(np.unique(rgb, axis=0))
    assert colours > 500, f"only {colours} distinct colours: figures not drawn"
    ink = (rgb.astype(int).sum(axis=1) < 600).mean()
    assert 0.01 < ink < 0.6, f"{ink:.1%} non-white pixels: blank or broken page"
    # Figure colours (the learning-curve blue and red) reached the screen.
    assert (np.abs(rgb.astype(int) - [31, 119, 180]).sum(axis=1) < 40).sum() > 200
    assert (np.abs(rgb.astype(int) - [214, 39, 40]).sum(axis=1) < 40).sum() > 200


def test_report_dom_tables_and_decoded_images(pages, tmp_path) -> None:
    dom = _dom(tmp_path, pages["report"])
    assert dom.body.get("data-ready") == "1", "load handler did not run"
    assert [len(t) for t in dom.tables] == [3, 2, 1]
    assert dom.tables[0][0] == ["val loss", "0.0423"] and dom.tables[0][2] == ["auc", "–"]
    assert len(dom.images) == 2
    for img in dom.images:
        assert img["src"].startswith("data:image/png;base64,")
        assert int(img["data-loaded"]) > 100, f"image {img['alt']!r} did not decode"


def test_corrupt_image_is_flagged(pages, tmp_path) -> None:
    (img,) = _dom(tmp_path, pages["broken"]).images
    assert img["data-loaded"] == "0" and "broken" in img.get("class", "")


def test_index_renders_with_links(pages, tmp_path) -> None:
    image = _screenshot(tmp_path, pages["index"])
    rgb = (image.reshape(-1, 3) * 255).astype(int)
    assert (rgb.sum(axis=1) < 600).mean() > 0.001, "index page is blank"
    dom = _dom(tmp_path, pages["index"])
    assert [row[0] for row in dom.tables[0]] == ["run_10", "run_2", "run_1", "run_3"]


@pytest.mark.parametrize("column, clicks, expected", [
    (1, 2, ["run_3", "run_10", "run_1", "run_2"]),  # val_loss descending, NaN last
    (2, 1, ["run_3", "run_10", "run_2", "run_1"]),  # auc ascending, None last
    (0, 1, ["run_1", "run_2", "run_3", "run_10"]),  # names: run_10 after run_3
])
def test_sort_script_numeric_aware_missing_last(pages, tmp_path, column, clicks,
                                                expected) -> None:
    dom = _dom(tmp_path, pages[f"sorted-{column}-{clicks}"])
    assert [row[0] for row in dom.tables[0]] == expected
