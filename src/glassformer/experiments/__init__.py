"""Ablation experiments: the lecture's questions answered by training the variants.

Each module holds one `Experiment` (see runner.py); `glassformer experiment NAME` runs it.
"""

from importlib import import_module

from glassformer.errors import UserError

NAMES = (
    "heads",
    "positions",
    "scaling",
    "norm",
    "mask",
    "activation",
    "residual",
    "rnn",
    "cross-attention",
    "decoding",
)


def get_experiment(name: str):
    """The `Experiment` called `name`; a UserError listing the valid names otherwise."""
    if name not in NAMES:
        raise UserError(f"unknown experiment {name!r}; choose one of: {', '.join(NAMES)}")
    return import_module(f"glassformer.experiments.{name.replace('-', '_')}").EXPERIMENT
