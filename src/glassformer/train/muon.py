"""Muon: momentum, then orthogonalise each weight matrix's update (Jordan et al. 2024).

AdamW scales every weight's step by its own gradient history. Muon treats a hidden weight
matrix as a whole: it keeps a momentum buffer M of the gradient, and steps along the
matrix nearest to M whose singular values are all 1 (M = U S V^T -> U V^T). All
directions of the matrix then learn at the same rate, whatever the scale of each. The
orthogonalisation runs five Newton-Schulz iterations of a quintic that pushes every
singular value of X = M / |M| toward 1, using matrix products only (no SVD):

    A = X X^T;   X <- a X + (b A + c A A) X        (a, b, c) = (3.4445, -4.7750, 2.0315)

Muon is meant for the 2-D weights inside the blocks. Embeddings, the LM head and the 1-D
gains and biases keep AdamW: `MuonWithAdamW` holds both optimizers behind one interface
(`param_groups`, `step`, `zero_grad`, `state_dict`, `load_state_dict`).

Each group may carry an `lr_scale`: the trainer sets `lr = schedule(step) * lr_scale`, so
the Muon group follows the same schedule at its own peak rate (`muon_lr`).

    >>> w = torch.nn.Parameter(torch.randn(8, 4))
    >>> opt = Muon([w], lr=0.1)
    >>> w.grad = torch.randn(8, 4)
    >>> opt.step()
    >>> opt.state[w]["momentum_buffer"].shape
    torch.Size([8, 4])
"""

import torch
from torch import nn

NS_COEFFS = (3.4445, -4.7750, 2.0315)


def orthogonalize(G: torch.Tensor, steps: int = 5, dtype: torch.dtype = torch.float32):
    """The Newton-Schulz approximation of U V^T for G = U S V^T; G: (m, n) or (k, m, n).

    Works on a stack of k matrices at once. The singular
    values of the result lie roughly in [0.7, 1.2]: enough for an update direction, and far
    cheaper than an SVD. `dtype` is what the products run in (bf16 where it is fast).

    >>> q = orthogonalize(torch.randn(6, 3), steps=10)
    >>> s = torch.linalg.svdvals(q)
    >>> bool(((s > 0.6) & (s < 1.3)).all())
    True
    """
    a, b, c = NS_COEFFS
    X = G.to(dtype)
    tall = X.size(-2) > X.size(-1)
    if tall:  # iterate on the wide orientation: A = X X^T is then the smaller square
        X = X.mT
    X = X / (X.norm(dim=(-2, -1), keepdim=True) + 1e-7)  # all singular values <= 1
    batched = X.dim() == 3
    if not batched:
        X = X.unsqueeze(0)  # (1, m, n): one batched code path
    for _ in range(steps):
        A = X @ X.mT  # (k, m, m)
        B = torch.baddbmm(A, A, A, beta=b, alpha=c)  # b A + c A A, fused: (k, m, m)
        X = torch.baddbmm(X, B, X, beta=a)  # a X + B X: (k, m, n)
    if not batched:
        X = X.squeeze(0)
    if tall:
        X = X.mT
    return X.to(G.dtype)


class Muon(torch.optim.Optimizer):
    """SGD-momentum (Nesterov) whose update is orthogonalised per weight matrix.

    update = orthogonalize(g + momentum * buf) * sqrt(max(1, rows / cols)); the last factor
    keeps the per-entry size of the step similar for tall matrices (e.g. an MLP's fc).
    Decoupled weight decay as in AdamW: w <- w * (1 - lr * weight_decay).
    Matrices of the same shape are orthogonalised together in one batched product.
    """

    def __init__(
        self,
        params,
        lr: float = 0.02,
        momentum: float = 0.95,
        nesterov: bool = True,
        weight_decay: float = 0.0,
        ns_steps: int = 5,
        ns_dtype: torch.dtype = torch.float32,
    ):
        defaults = dict(
            lr=lr,
            momentum=momentum,
            nesterov=nesterov,
            weight_decay=weight_decay,
            ns_steps=ns_steps,
        )
        super().__init__(params, defaults)
        self.ns_dtype = ns_dtype
        for group in self.param_groups:
            for p in group["params"]:
                if p.dim() != 2:
                    raise ValueError(f"Muon takes 2-D weight matrices only, got shape {p.shape}")

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            by_shape: dict[tuple, list[torch.Tensor]] = {}
            for p in group["params"]:
                if p.grad is not None:
                    by_shape.setdefault(tuple(p.shape), []).append(p)
            for shape, params in by_shape.items():
                grads = []
                for p in params:
                    state = self.state[p]
                    if "momentum_buffer" not in state:
                        state["momentum_buffer"] = torch.zeros_like(p)
                    buf = state["momentum_buffer"]
                    buf.lerp_(p.grad, 1 - group["momentum"])  # buf = m * buf + (1 - m) * g
                    grads.append(p.grad.lerp(buf, group["momentum"]) if group["nesterov"] else buf)
                updates = orthogonalize(torch.stack(grads), group["ns_steps"], self.ns_dtype)
                scale = max(1.0, shape[0] / shape[1]) ** 0.5
                if group["weight_decay"]:
                    torch._foreach_mul_(params, 1 - group["lr"] * group["weight_decay"])
                torch._foreach_add_(params, list(updates.unbind(0)), alpha=-group["lr"] * scale)
        return loss


def hidden_matrices(model: nn.Module) -> list[nn.Parameter]:
    """The 2-D weights of the Linear layers inside the model, except the LM head.

    These are what Muon trains; embeddings (including a head tied to them), the untied
    head, position tables and every 1-D gain or bias stay with AdamW.
    """
    head = getattr(model, "lm_head", None)
    embeddings = {id(m.weight) for m in model.modules() if isinstance(m, nn.Embedding)}
    out = []
    for module in model.modules():
        if isinstance(module, nn.Linear) and module is not head:
            w = module.weight
            if w.requires_grad and id(w) not in embeddings:
                out.append(w)
    return out


class MuonWithAdamW:
    """Muon for the hidden matrices, AdamW for everything else, stepped as one optimizer.

    `param_groups` lists the groups of both (the same dict objects, so setting a group's
    `lr` reaches the optimizer that owns it).
    """

    def __init__(self, muon: Muon, adamw: torch.optim.Optimizer):
        self.muon, self.adamw = muon, adamw

    @property
    def param_groups(self) -> list[dict]:
        return self.adamw.param_groups + self.muon.param_groups

    def step(self) -> None:
        self.adamw.step()
        self.muon.step()

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.adamw.zero_grad(set_to_none=set_to_none)
        self.muon.zero_grad(set_to_none=set_to_none)

    def state_dict(self) -> dict:
        return {"adamw": self.adamw.state_dict(), "muon": self.muon.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        if set(state) != {"adamw", "muon"}:
            raise ValueError("this optimizer state was not saved by Muon with AdamW")
        self.adamw.load_state_dict(state["adamw"])
        self.muon.load_state_dict(state["muon"])
