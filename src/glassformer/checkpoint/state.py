"""A trainer state read from disk, checked before anything uses it.

`torch.load(..., weights_only=True)` runs no code from the file, but what it returns can
still be anything: a list instead of a dict, a negative step, an optimizer state whose
tensors have other shapes than the parameters. PyTorch's optimizers trust their state (a
misshapen `exp_avg` can crash the fused AdamW kernel: a segfault, not an exception), so
every tensor is checked against the parameter it belongs to first:

    >>> opt = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(2, 3))])
    >>> saved = opt.state_dict()
    >>> saved["state"] = {0: {"step": torch.tensor(1.0), "exp_avg": torch.zeros(5),
    ...                       "exp_avg_sq": torch.zeros(2, 3)}}
    >>> check_optimizer_state(opt, saved, "ckpt")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    glassformer.errors.UserError: ckpt: the optimizer state of parameter 0 ('exp_avg') ...
"""

import math

import torch

from glassformer.errors import UserError

FIX = "the trainer state does not belong to this model; train without --resume"


def check_trainer_state(state, source) -> dict:
    """`state` is a dict of named parts with a non-negative integer "step"."""
    if not isinstance(state, dict) or not all(isinstance(k, str) for k in state):
        raise UserError(f"{source} does not hold a trainer state (a dict of named parts); {FIX}")
    step = state.get("step")
    if type(step) is not int or step < 0:
        raise UserError(f"{source} has step {step!r}, not a count of steps >= 0; {FIX}")
    return state


def check_number(value, name: str, source) -> float:
    """A finite, non-negative float or int (e.g. the elapsed seconds of a run)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise UserError(f"{source}: {name} is {value!r}, not a number; {FIX}")
    if value < 0:
        raise UserError(f"{source}: {name} is {value!r}, below 0; {FIX}")
    return value


def check_rng_state(value, like: torch.Tensor, name: str, source) -> torch.Tensor:
    """A random generator's state: a uint8 tensor shaped like the current one (`like`)."""
    if (
        not isinstance(value, torch.Tensor)
        or value.dtype != torch.uint8
        or value.shape != like.shape
    ):
        raise UserError(f"{source}: {name} is not a random generator state; {FIX}")
    return value


def check_optimizer_state(optimizer, saved, source) -> None:
    """Check `saved` against `optimizer` before `optimizer.load_state_dict(saved)`.

    A torch optimizer: the same number of groups and of parameters per group, the same
    hyperparameter types, and each state tensor shaped like its parameter (or a scalar such
    as AdamW's `step`). An optimizer made of several (Muon with AdamW) saves
    `{name: part.state_dict()}` with each part as the attribute `name`; each is checked.
    """
    if not isinstance(optimizer, torch.optim.Optimizer):
        parts = optimizer.state_dict()
        if not isinstance(saved, dict) or set(saved) != set(parts):
            raise UserError(
                f"{source}: the optimizer state has other parts than {sorted(parts)}; {FIX}"
            )
        for name in parts:
            check_optimizer_state(getattr(optimizer, name), saved[name], source)
        return
    if not isinstance(saved, dict) or set(saved) != {"state", "param_groups"}:
        raise UserError(f"{source}: the optimizer state is not a torch optimizer's; {FIX}")
    groups, state = saved["param_groups"], saved["state"]
    if not isinstance(groups, list) or len(groups) != len(optimizer.param_groups):
        raise UserError(f"{source}: the optimizer state has another number of groups; {FIX}")
    params = {}  # saved id -> the parameter it stands for (torch matches them by order)
    for group, current in zip(groups, optimizer.param_groups, strict=True):
        if not isinstance(group, dict) or not isinstance(group.get("params"), list):
            raise UserError(f"{source}: an optimizer group is not a dict with params; {FIX}")
        if len(group["params"]) != len(current["params"]):
            raise UserError(f"{source}: an optimizer group has another number of parameters; {FIX}")
        for key, value in current.items():
            if key != "params" and not _same_kind(group.get(key, _MISSING), value):
                raise UserError(
                    f"{source}: the optimizer setting {key!r} is {group.get(key)!r}; {FIX}"
                )
        for saved_id, p in zip(group["params"], current["params"], strict=True):
            if isinstance(saved_id, bool) or not isinstance(saved_id, int) or saved_id in params:
                raise UserError(f"{source}: the optimizer's parameter ids are damaged; {FIX}")
            params[saved_id] = p
    if not isinstance(state, dict):
        raise UserError(f"{source}: the optimizer state is not a dict; {FIX}")
    for saved_id, values in state.items():
        if saved_id not in params or not isinstance(values, dict):
            raise UserError(f"{source}: the optimizer state names parameter {saved_id!r}; {FIX}")
        p = params[saved_id]
        for key, value in values.items():
            if not isinstance(value, torch.Tensor):
                if isinstance(value, bool) or not isinstance(value, int | float):
                    raise UserError(f"{source}: optimizer state {key!r} is {value!r}; {FIX}")
                continue
            shape = tuple(value.shape)
            if shape not in ((), tuple(p.shape)):
                raise UserError(
                    f"{source}: the optimizer state of parameter {saved_id} ({key!r}) has "
                    f"shape {shape}, the parameter has {tuple(p.shape)}; {FIX}"
                )
            if not value.is_floating_point() or (shape and value.dtype != p.dtype):
                raise UserError(
                    f"{source}: the optimizer state of parameter {saved_id} ({key!r}) is "
                    f"{value.dtype}, the parameter is {p.dtype}; {FIX}"
                )


_MISSING = object()


def _same_kind(saved, current) -> bool:
    """A saved hyperparameter has the type (and, for a tuple, the length) of the current one."""
    if isinstance(current, bool) or current is None:  # switches such as fused, foreach
        return saved is None or isinstance(saved, bool)
    if isinstance(current, int | float):
        return (
            not isinstance(saved, bool) and isinstance(saved, int | float) and math.isfinite(saved)
        )
    if isinstance(current, tuple | list):
        return (
            isinstance(saved, tuple | list)
            and len(saved) == len(current)
            and all(_same_kind(s, c) for s, c in zip(saved, current, strict=True))
        )
    if isinstance(current, torch.Tensor):
        return isinstance(saved, torch.Tensor) and saved.shape == current.shape
    return type(saved) is type(current)
