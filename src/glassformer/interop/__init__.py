"""Hugging Face checkpoints in and out: GPT-2, BERT (and MiniLM), Marian.

    >>> model = from_hf("path/to/gpt2")          # chosen by config.json's model_type
    >>> to_hf(model, "path/to/export")           # a folder GPT2LMHeadModel.from_pretrained reads

`from_hf` returns our model in eval mode: `GPT` for `gpt2`, `Encoder` for `bert`, `Seq2Seq` for
`marian`. Each mapping is a table of renamed (and, for GPT-2's Conv1D, transposed) tensors; the
tests prove the logits equal those of the Hugging Face implementation.
"""

from glassformer.interop.convert import from_hf, to_hf

__all__ = ["from_hf", "to_hf"]
