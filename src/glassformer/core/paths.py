"""Where glassformer keeps what it can recompute (token caches, measured matmul peaks)."""

import os
from pathlib import Path


def cache_dir() -> Path:
    """`$GLASSFORMER_CACHE`, else `~/.cache/glassformer`."""
    return Path(os.environ.get("GLASSFORMER_CACHE", Path.home() / ".cache" / "glassformer"))
