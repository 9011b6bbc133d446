"""Foreign formats in and out: Hugging Face folders (read and written) and GGUF files (read).

    >>> model = from_hf("path/to/gpt2")          # chosen by config.json's model_type
    >>> to_hf(model, "path/to/export")           # a folder transformers' from_pretrained reads

Which families: the architecture table (architectures.py) has one entry each, GPT-2, Llama
(and Mistral, Qwen2, Qwen3), BERT (and MiniLM) and Marian today; an entry names the config keys
and the tensors (renamed, and transposed or permuted where the foreign layout differs). `from_hf`
returns our model in eval mode (`GPT`, `Encoder` or `Seq2Seq`); a GGUF file is read by
`gguf.load_gguf` through the same table. The tests prove the logits equal the foreign
implementation's.
"""

from glassformer.interop.convert import from_hf, to_hf

__all__ = ["from_hf", "to_hf"]
