"""Look inside a model: cached activations, edits, and the views built on them.

- `run_with_cache(model, idx, names=...)` -> (output, {cache name: tensor}); cache names are
  hook module names without the ``hook_`` prefix (see `cache.py`).
- `hooks(model, {name: fn})`: attach editing hooks for a block of code; `zero_head`, `patch`.
- views (each a function returning plain data, rendered to PNG or one self-contained HTML
  file by `render_png.py` / `render_html.py`): attention, logit lens, next-token table,
  embedding geometry, neurons, tokens, training curves.
"""

from glassformer.inspect.cache import cache_name, hook_points, hooks, run_with_cache
from glassformer.inspect.interventions import patch, zero_head

__all__ = ["cache_name", "hook_points", "hooks", "patch", "run_with_cache", "zero_head"]
