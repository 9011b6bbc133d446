"""Hook points: named places in the forward pass where activations can be read or replaced.

A `HookPoint` is an identity module. Every model puts one wherever a lecture would point at
a tensor ("the residual stream after block 2", "the attention pattern of head 3"), and the
module's dotted name (e.g. ``blocks.0.attn.hook_pattern``) becomes the name of that tensor.
With no hook attached a HookPoint just returns its input, so it costs one function call.

    >>> hp = HookPoint()
    >>> seen = []
    >>> handle = hp.add_hook(lambda x, name: seen.append(x.shape) or x)
    >>> _ = hp(torch.zeros(2, 3)); seen
    [torch.Size([2, 3])]
    >>> handle.remove()
"""

from collections.abc import Callable

import torch
from torch import nn

HookFn = Callable[[torch.Tensor, str], torch.Tensor | None]


class _Handle:
    def __init__(self, hooks: list, fn: HookFn):
        self._hooks, self._fn = hooks, fn

    def remove(self) -> None:
        if self._fn in self._hooks:
            self._hooks.remove(self._fn)


class HookPoint(nn.Module):
    """Identity module; hooks added with `add_hook(fn)` see (and may replace) the tensor.

    `fn(tensor, name)` returns None to leave the tensor as it is, or a tensor to use instead.
    """

    def __init__(self) -> None:
        super().__init__()
        self.name = ""  # set by `name_hook_points` once the model is built
        self.hooks: list[HookFn] = []

    def add_hook(self, fn: HookFn) -> _Handle:
        self.hooks.append(fn)
        return _Handle(self.hooks, fn)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        # With no hook attached, skip nn.Module's call machinery (~0.7 us a call, a few % of
        # a small model's generation step): benchmarks/hook_overhead.py measures the cost.
        if not self.hooks:
            return x
        return super().__call__(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for fn in self.hooks:
            out = fn(x, self.name)
            if out is not None:
                x = out
        return x


def name_hook_points(model: nn.Module) -> dict[str, HookPoint]:
    """Give every HookPoint in `model` its dotted module name and return them by name.

    Each HookPoint is also put in its parent's instance dict, so `self.hook_x` is a plain
    attribute read instead of a call to nn.Module.__getattr__ (which costs more than the
    hook point itself; assigning a new module to the name still replaces it, as usual).
    """
    points = {}
    for name, module in model.named_modules():
        for child_name, child in module._modules.items():
            if isinstance(child, HookPoint):
                module.__dict__[child_name] = child
        if isinstance(module, HookPoint):
            module.name = name
            points[name] = module
    return points
