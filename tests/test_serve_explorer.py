"""The live explorer at `/`, driven in headless Chromium: tokens, next token, attention, logit
lens and a streamed generation, with no console error and no request off the page's origin.

Needs Debian's Chromium at /usr/bin/chromium and the `playwright` Python package (never
`playwright install`); skipped with a reason otherwise.
"""

import os

import httpx
import pytest
import torch

from glassformer import GPT, GPTConfig
from glassformer.serve import BackgroundServer, create_app
from glassformer.tokenizers import BPETokenizer

TEXT = "First Citizen: Before we proceed any further, hear me speak. All: Speak, speak. " * 4


@pytest.fixture(scope="module")
def served():
    tok = BPETokenizer.train(TEXT, 290)
    torch.manual_seed(0)
    cfg = GPTConfig(vocab_size=tok.vocab_size, block_size=64, n_layer=3, n_head=2, n_embd=32)
    model = GPT(cfg).eval()
    with torch.no_grad():  # larger weights than the init: patterns that differ by head
        for p in model.parameters():
            if p.dim() > 1:
                p.normal_(std=0.3)
    with BackgroundServer(create_app(model, tok, "tiny")) as url:
        yield url, tok


def test_the_explorer_shows_the_running_model(served, browser, tmp_path):
    url, tok = served
    page = browser.new_page()
    errors, requests = [], []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("request", lambda r: requests.append(r.url))
    page.goto(url + "/")
    page.wait_for_selector("body[data-ready=true]")
    assert "3 layers × 2 heads" in page.inner_text("#model")

    # type a sentence: its tokens, ids and bytes
    sentence = "Before we speak, hear me."
    page.fill("#text", sentence)
    ids = tok.encode(sentence)
    page.wait_for_function(f"() => document.querySelectorAll('#tokens .tok').length === {len(ids)}")
    shown = page.eval_on_selector_all("#tokens .tok small", "els => els.map(e => +e.textContent)")
    assert shown == ids
    assert (
        page.get_attribute("#tokens .tok", "title")
        == f"id {ids[0]} · bytes {tok.decode_bytes([ids[0]]).hex(' ')}"
    )

    # the next-token bars, and the temperature slider reshaping them
    page.wait_for_function("() => document.querySelectorAll('#next-token .bar').length === 10")
    top_p = lambda: float(page.inner_text("#next-token .bar .value"))  # noqa: E731
    before = top_p()
    page.eval_on_selector(
        "#temperature", "e => { e.value = '0.3'; e.dispatchEvent(new Event('input')); }"
    )
    page.wait_for_function(
        f"() => +document.querySelector('#next-token .bar .value').textContent > {before}"
    )
    assert page.inner_text("#temperature-value") == "0.3"

    # attention: layer 2, head 1 draws a different heatmap
    page.wait_for_selector("#heatmap[data-layer='0'][data-head='0']")
    first = page.eval_on_selector("#heatmap", "c => c.toDataURL()")
    page.select_option("#layer", "2")
    page.wait_for_selector("#heatmap[data-layer='2'][data-head='0']")
    page.select_option("#head", "1")
    page.wait_for_selector("#heatmap[data-layer='2'][data-head='1']")
    assert page.eval_on_selector("#heatmap", "c => c.toDataURL()") != first
    expected = httpx.post(
        url + "/v1/inspect", json={"view": "attention", "text": sentence, "layer": 2, "head": 1}
    ).json()["maps"][0]["heads"][0]
    page.click("#attn-tokens .tok >> nth=0")  # the first token looks only at itself
    assert page.inner_text("#attn-tokens .tok.query small") == f"{expected[0][0]:.2f}"
    assert page.locator("#attn-tokens .tok").count() == len(ids)

    # the logit lens: (embed + 3 layers) x tokens
    page.click("#lens-run")
    page.wait_for_function(f"() => document.querySelectorAll('#lens td').length === {4 * len(ids)}")

    # generate: greedy, streamed, the same text as the API gives
    page.select_option("#strategy", "greedy")
    page.fill("#max-tokens", "12")
    page.click("#generate")
    page.wait_for_selector("#finish[data-done=true]")
    reply = httpx.post(
        url + "/v1/completions",
        json={"prompt": sentence, "max_tokens": 12, "strategy": "greedy"},
    ).json()["choices"][0]["text"]
    assert page.inner_text("#output-text") == reply
    assert page.inner_text("#finish") == "finish_reason: length"

    page.screenshot(
        path=str(os.environ.get("SERVE_SHOT", tmp_path / "explorer.png")), full_page=True
    )
    assert errors == []
    assert requests and all(r.startswith(url + "/") for r in requests), requests
    page.close()
