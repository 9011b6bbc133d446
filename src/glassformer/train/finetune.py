"""Fine-tuning: `glassformer train --init-from MODEL` starts from a pretrained model.

    MODEL (a checkpoint folder, a Hugging Face GPT-2 or Llama folder, a .gguf, "smollm2")
        ──checkpoint.load──▶ its GPT (architecture + weights) and its own tokenizer
        ──(with --lora-rank R) nn/lora.py: weights frozen, adapters on every block's Linears
        ──▶ the same LanguageModelRun and Trainer as training from scratch, on your text

What changes against a run from scratch: the model and the tokenizer come from MODEL (the
preset's model settings do not apply), the training window is `context` tokens (a pretrained
model's context is often far longer than a CPU can afford to train on; the model keeps its
own), and a LoRA run saves its adapters merged into the weights (nn/lora.py: `merged_copy`),
so the folder is an ordinary checkpoint that generate, chat, inspect and export read as is.
A merged folder cannot resume its adapters; fine-tune it further with `--init-from` it.

The folder's config.json records where the run started in its "finetune" section.
"""

import hashlib
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from torch import nn

from glassformer import checkpoint
from glassformer.core.fields import option
from glassformer.errors import UserError
from glassformer.nn.lora import add_lora


@dataclass
class FinetuneConfig:
    init_from: str = option("", "the pretrained model to start from")
    lora_rank: int = option(0, "LoRA rank r (0: full fine-tune, every weight trains)")
    lora_alpha: float = option(16.0, "LoRA alpha: the update is scaled by alpha / r")
    context: int = option(0, "training window in tokens (0: 256, or the model's context if less)")

    @property
    def lora(self) -> bool:
        return self.lora_rank != 0

    def to_dict(self) -> dict:
        return asdict(self)


def read_finetune(meta: dict) -> FinetuneConfig | None:
    """The "finetune" section of a checkpoint's config.json (None for a run from scratch)."""
    section = meta.get("finetune")
    if not isinstance(section, dict):
        return None
    try:
        return FinetuneConfig(**section)
    except TypeError as e:
        raise UserError(f"the finetune section of config.json is invalid ({e}); retrain") from None


def load_pretrained(ft: FinetuneConfig) -> tuple[nn.Module, object]:
    """The model (in train mode, with adapters when `ft.lora`) and tokenizer of `ft.init_from`.

    Every problem is one sentence (`UserError`): a path that holds no model, a model that is
    not a language model, a LoRA rank outside 1 .. the model's width.
    """
    if ft.lora_rank < 0:
        raise UserError(f"--lora-rank must be a positive integer, got {ft.lora_rank}")
    if ft.lora and not ft.lora_alpha > 0:
        raise UserError(f"--lora-alpha must be > 0, got {ft.lora_alpha}")
    if ft.context < 0:
        raise UserError(f"--context must be a positive number of tokens, got {ft.context}")
    model, tokenizer = checkpoint.load(ft.init_from, family="gpt")
    block_size = model.config.block_size
    if ft.context > block_size:
        raise UserError(
            f"--context {ft.context} is longer than {ft.init_from}'s context of {block_size} "
            "tokens; pass at most that"
        )
    ft.context = ft.context or min(256, block_size)
    if ft.lora:
        try:
            add_lora(model, ft.lora_rank, ft.lora_alpha)
        except ValueError as e:
            raise UserError(f"--lora-rank {ft.lora_rank}: {e}") from None
    return model.train(), tokenizer


def tokenizer_key(tokenizer) -> str:
    """A key naming `tokenizer` for the token cache: a digest of its saved file."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "tokenizer.model"
        tokenizer.save(path)
        return "file-" + hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def trainable_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
