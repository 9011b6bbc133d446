"""Checks for the layer / head / neuron a user picks, with one-sentence errors."""

from glassformer.errors import UserError


def check_layer_head(layer: int | None, head: int | None, n_layer: int, n_head: int) -> None:
    if layer is not None and not 0 <= layer < n_layer:
        raise UserError(f"--layer {layer} does not exist: this model has layers 0..{n_layer - 1}")
    if head is not None and not 0 <= head < n_head:
        raise UserError(f"--head {head} does not exist: this model has heads 0..{n_head - 1}")
