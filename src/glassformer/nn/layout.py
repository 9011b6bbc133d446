"""Weight layout for decoding one sequence: the same numbers, stored so one row reads fast.

A decode step multiplies ONE row by every weight matrix (a matrix-vector product), so its
speed is how fast the weights stream from memory. `nn.Linear` stores its weight (out, in),
row-major. For one row, PyTorch's CPU product on that layout runs on a single thread whatever
`torch.set_num_threads` says; on the same matrix stored transposed, (in, out) contiguous, it
uses every thread. Measured on a 2-core AMD EPYC, torch 2.13, 2 threads, one row
(docs/performance.md, "Real models"):

    SmolLM2 matrix (out x in)     as stored    transposed
    head   49152 x 576            9.9 ms       5.2 ms     (1.93x)
    gate/up 3072 x 576            0.63 ms      0.34 ms    (1.82x)
    qkv     960 x 576             0.20 ms      0.15 ms    (1.30x)
    down    576 x 1536            0.27 ms      0.30 ms    (0.89x: left as stored)

With 8 rows (a server's batch) the transposed layout is 0.77-0.86x everywhere, with 512 rows
(a prompt, training) 0.94-1.05x; so only single-sequence generation (`glassformer generate`,
`chat`) asks for it, and only the matrices wider than they are tall get it.

`Parameter.data` is replaced by a transposed-contiguous copy viewed back as (out, in): the
module, its name, its shape, its values and a tied embedding (which shares the Parameter)
stay what they were; only the strides change.

    >>> lin = nn.Linear(4, 8)
    >>> x = torch.randn(1, 4)
    >>> y = lin(x)
    >>> for_one_sequence(lin)
    1
    >>> lin.weight.stride(), torch.allclose(lin(x), y)
    ((1, 8), True)
"""

import torch
from torch import nn


def for_one_sequence(model: nn.Module) -> int:
    """Store every CPU Linear weight wider than tall (out > in) transposed; returns how many.

    Idempotent: a weight already stored that way is left alone. Weights on another device
    are left alone too: the measurement above is of PyTorch's CPU kernels.
    """
    changed = 0
    with torch.no_grad():
        for module in model.modules():
            if not isinstance(module, nn.Linear) or module.out_features <= module.in_features:
                continue
            w = module.weight
            if w.device.type != "cpu" or w.stride() == (1, w.size(0)):
                continue
            w.data = w.data.t().contiguous().t()  # (out, in) values, (in, out) in memory
            changed += 1
    return changed
