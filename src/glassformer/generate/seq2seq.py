"""An encoder-decoder's greedy translation, by the engine: "March 3, 2021" -> "2021-03-03".

The encoder reads each source once; its output (the memory) goes with the row through every
decode step, where the decoder's cross-attention reads it. The decoder itself runs like any
GPT in the engine (engine.py): a KV cache for its self-attention, one batched forward per
step for all the sources, a row that writes [EOS] leaves the batch.

    >>> translate_tokens(model, src, src_mask, max_len=12)   # (B, S) -> (B, <= 12)
    ...                                                       # doctest: +SKIP
"""

import torch

from glassformer.generate.engine import Engine, Generation
from glassformer.generate.options import GenerationOptions


@torch.no_grad()
def translate_tokens(
    model: torch.nn.Module,
    src: torch.Tensor,
    src_mask: torch.Tensor | None = None,
    max_len: int | None = None,
) -> torch.Tensor:
    """Greedy decoding of a Seq2Seq: sources (B, S) (src_mask 1 = real token) -> the ids
    after [BOS] (B, <= max_len), each row up to its [EOS], then [PAD]."""
    c = model.config
    max_len = max_len or c.block_size - 1
    if src_mask is None:
        src_mask = torch.ones_like(src)
    was_training = model.training
    model.eval()
    try:
        memory = model.encode(src, src_mask)  # (B, S, C)
    finally:
        model.train(was_training)
    opts = GenerationOptions(max_new_tokens=max_len, strategy="greedy", stop_ids=(c.eos_id,))
    start = torch.tensor([c.bos_id], device=src.device)  # (1,)
    gens = [
        Generation(start, opts, inputs={"memory": memory[b], "memory_mask": src_mask[b]})
        for b in range(src.size(0))
    ]
    for _ in Engine(model.decoder_lm(), room=max_len).stream(gens):
        pass
    width = max(len(g.new) for g in gens)
    out = torch.full((len(gens), width), c.pad_id, dtype=torch.long, device=src.device)
    for b, g in enumerate(gens):
        out[b, : len(g.new)] = torch.tensor(g.new, device=src.device)
    return out
