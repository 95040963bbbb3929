"""Open the pages in headless Chromium: they render, images decode, the sort script works.

Pages are checked at 1400 px, a laptop screen: the index must show every column without
scrolling sideways (a table that scrolls hides the verdict column the page exists for).

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
WIDTH, HEIGHT = 1400, 2000
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
    dom.feed(_chromium(tmp_path, page, f"--window-size={WIDTH},{HEIGHT}", "--dump-dom").stdout)
    return dom


# After layout, record on <body> how wide the page and its tables really are.
MEASURE = """<script>window.addEventListener("load", function () {
  var root = document.documentElement, right = 0, inner = 0;
  document.querySelectorAll("th, td").forEach(function (c) {
    right = Math.max(right, c.getBoundingClientRect().right); });
  document.querySelectorAll(".table-wrap").forEach(function (w) {
    inner = Math.max(inner, w.scrollWidth - w.clientWidth); });
  document.body.setAttribute("data-scroll-width", root.scrollWidth);
  document.body.setAttribute("data-client-width", root.clientWidth);
  document.body.setAttribute("data-cells-right", Math.ceil(right));
  document.body.setAttribute("data-wrap-overflow", inner);
});</script></body>"""


class Dom(HTMLParser):
    """Rows per table (cell texts), image attributes and the body's attributes."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tables: list[list[list[str]]] = []
        self.images: list[dict] = []
        self.body: dict = {}
        self.row_classes: list[str] = []
        self.headings: list[str] = []
        self.details: list[dict] = []
        self.notes: list[str] = []
        self._cell: list[str] | None = None
        self._text: list[str] | None = None
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
            self.row_classes.append(attrs.get("class") or "")
        elif tag == "td":
            self._cell = []
        elif tag == "img":
            self.images.append(attrs)
        elif tag == "details":
            self.details.append(attrs)
        elif tag == "h2" or (tag == "p" and "note" in (attrs.get("class") or "")):
            self._text = []

    def handle_endtag(self, tag):
        if tag == "td" and self._cell is not None:
            self.tables[-1][-1].append("".join(self._cell).strip())
            self._cell = None
        elif tag in ("h2", "p") and self._text is not None:
            (self.headings if tag == "h2" else self.notes).append("".join(self._text).strip())
            self._text = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)
        if self._text is not None:
            self._text.append(data)


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


# ----------------------------------------------------------------------------- real pages
RUN = {"name": "stats", "model": {"name": "mlp", "params": {"hidden": [16]}},
       "training": {"losses": [{"name": "mse"}], "epochs": 2, "batch_size": 32}}
OTHERS = {  # run -> (task, headline, baseline name, dataset): one per task family, long names
    "flight_thresholds_deep_cross_network_with_site_embedding": (
        "thresholds", {"pooled_auc": 0.71, "pooled_brier": 0.2, "pooled_ece": 0.03,
                       "monotonicity_violation_rate": 0.01, "baseline_auc": 0.69},
        "logistic regression", "TS_T_FLIGHTS_WITH_A_LONG_DATASET_NAME-wds"),
    "macro_world_mlp_loses": ("irf", {"nrmse": 0.4, "rmse": 0.2, "sign_agreement_impact": 0.9,
                                      "baseline_nrmse": 0.3}, "linear (ridge)", "TS_T_MACRO.zarr"),
    "t_diffusion": ("frames", {"ks_peak_size": 0.31, "ks_peak_week": 0.2,
                               "wasserstein_national": 1234.5}, None, "TS_MIX_70S30M.nc"),
    "classify_seq2seq": ("seq2seq_classification", {"accuracy": 0.8, "macro_f1": 0.7, "log_loss": 0.5,
                                                    "baseline_accuracy": 0.6},
                         "logistic regression", "TS_sequences_classification_seq2seq.h5"),
}


@pytest.fixture(scope="module")
def real(tmp_path_factory) -> dict[str, Path]:
    """A report from a trained run, and the index of it beside one run of every other task."""
    import json

    from tests.conftest import stored_sequences
    from trainset.evaluate.stage import evaluate_run, write_index
    from trainset.scalers import fit_dataset_scalers
    from trainset.train.config import TrainingConfig
    from trainset.train.run import train_run

    root = tmp_path_factory.mktemp("real")
    data = stored_sequences(root / "data", "statistics", 200, seed=3, length=16)
    fit_dataset_scalers(data, root / "scalers.json")
    train_run(TrainingConfig.from_dict(RUN), data, root / "run", root / "scalers.json")
    reports = root / "reports"
    evaluate_run(RUN, root / "run", data, root / "scalers.json", reports / "stats")
    record = json.loads((reports / "stats/metrics.json").read_text())
    for run, (task, headline, baseline, dataset) in OTHERS.items():
        other = {**record, "run": run, "task": task,
                 "metrics": {"headline": headline, "baseline_name": baseline},
                 "provenance": {**record["provenance"], "run": run, "task": task, "dataset": f"/d/{dataset}"}}
        (reports / run).mkdir()
        (reports / run / "metrics.json").write_text(json.dumps(other))
    write_index(sorted(reports.glob("*/metrics.json")), reports / "index.html")
    index = (reports / "index.html").read_text()
    measured = reports / "measured.html"
    measured.write_text(index.replace("</body>", MEASURE))
    return {"report": reports / "stats/report.html", "index": reports / "index.html",
            "measured": measured, "record": record}


def test_index_fits_1400px_without_horizontal_scroll(real, tmp_path) -> None:
    dom = _dom(tmp_path, real["measured"])
    body = dom.body
    assert body.get("data-ready") == "1"
    assert int(body["data-client-width"]) <= WIDTH
    assert int(body["data-scroll-width"]) <= int(body["data-client-width"]), body
    assert int(body["data-cells-right"]) <= int(body["data-client-width"]), body
    assert int(body["data-wrap-overflow"]) == 0, "the table scrolls inside its box"
    assert len(dom.tables[0]) == 1 + len(OTHERS) and len(dom.tables[0][0]) == 10


def test_index_names_direction_baseline_and_flags_losers(real, tmp_path) -> None:
    from trainset.evaluate.verdict import verdict
    from trainset.tasks import TASKS

    dom = _dom(tmp_path, real["index"])
    rows = {row[0]: (row, cls) for row, cls in zip(dom.tables[0], dom.row_classes)}
    row, cls = rows["macro_world_mlp_loses"]
    assert row[4] == "nrmse ↓ lower is better" and row[6] == "linear (ridge)"
    assert row[8] == "worse by 0.1 (33.3%)" and "loses" in cls
    row, cls = rows["flight_thresholds_deep_cross_network_with_site_embedding"]
    assert row[4] == "pooled_auc ↑ higher is better" and row[8].startswith("better by 0.02")
    assert "loses" not in cls
    assert rows["t_diffusion"][0][8] == "no baseline" and "loses" not in rows["t_diffusion"][1]
    stats = verdict(TASKS["seq2static_regression"], real["record"]["metrics"])
    assert ("loses" in rows["stats"][1]) == (stats.outcome == "worse")
    losers = ["macro_world_mlp_loses"] + (["stats"] if stats.outcome == "worse" else [])
    assert dom.notes == [f"{len(losers)} of 5 runs lose to their best baseline (shaded): " + ", ".join(losers)]
    page = real["index"].read_text()
    assert f"evaluated: <b>{real['record']['provenance']['date']}</b>" in page
    assert "trainset: <b>" in page and "config sha256 (all runs): <b>" in page


def test_index_screenshot_shades_the_losing_rows(real, tmp_path) -> None:
    image = _screenshot(tmp_path, real["index"])
    rgb = (image.reshape(-1, 3) * 255).round().astype(int)
    shaded = (np.abs(rgb - [253, 236, 234]).sum(axis=1) < 6).mean()
    assert shaded > 0.01, f"{shaded:.2%} of the screen in the losing rows' shade"


def test_report_puts_results_first_and_the_config_last_collapsed(real, tmp_path) -> None:
    dom = _dom(tmp_path, real["report"])
    assert dom.headings == ["Regression", "Learning curves", "Provenance"]
    (note,) = dom.notes
    assert note.startswith("rmse ") and "(lower is better)" in note and "the best baseline, " in note
    assert [d.get("open") for d in dom.details] == [None]
    assert all(int(img["data-loaded"]) > 100 for img in dom.images)
    page = real["report"].read_text()
    assert page.index('<p class="note') < page.index("<h2>") < page.index("<details")
    digest = real["record"]["provenance"]["config_sha256"][:12]
    assert f"config sha256: <b>{digest}</b>" in page
