"""Shared fixtures: a private cache per test session, the shared corpus, tiny runs."""

import os
from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
SHAKESPEARE = SHARED_DATA / "tinyshakespeare.txt"


@pytest.fixture(autouse=True, scope="session")
def _private_cache(tmp_path_factory):
    """Keep token caches and downloads of the tests out of the user's ~/.cache."""
    os.environ["GLASSFORMER_CACHE"] = str(tmp_path_factory.mktemp("cache"))
    yield


@pytest.fixture
def shakespeare() -> Path:
    if not SHAKESPEARE.exists():
        pytest.skip(f"tinyshakespeare is not at {SHAKESPEARE} (../shared/data beside the repo)")
    return SHAKESPEARE


@pytest.fixture
def small_corpus(tmp_path) -> Path:
    """A few KB of varied English text, made here (no download)."""
    from glassformer.train.corpus import embedded_corpus

    path = tmp_path / "corpus.txt"
    path.write_text(embedded_corpus()[:20_000], encoding="utf-8")
    return path
