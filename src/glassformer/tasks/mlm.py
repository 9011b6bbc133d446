"""Task `mlm`: masked-language-model pretraining of the encoder (BERT's objective) on a text.

Pick 15% of the positions of a window of text; replace 80% of those by `[MASK]`, 10% by a
random character, leave 10% as they are; train the encoder to predict the original character
at exactly those positions (every other target is -1, ignored). Because the encoder sees both
sides of a gap, it can use the letters after it too, which a left-to-right model cannot.

Character-level on the corpus given with `--data` (default: Python's own documentation, as
`glassformer train`). The last 10% of the corpus is held out; reported: masked-character
accuracy and loss there, beside the accuracy of always guessing the most frequent character.
"""

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from glassformer.models.encoder import Encoder, EncoderConfig
from glassformer.tasks.run import train_task
from glassformer.tokenizers.symbols import MASK, SPECIALS, SymbolVocab
from glassformer.train.config import TrainConfig
from glassformer.train.corpus import read_corpus
from glassformer.train.data import split_ids


def mask_tokens(
    ids: torch.Tensor, vocab_size: int, gen: torch.Generator, rate: float = 0.15
) -> tuple[torch.Tensor, torch.Tensor]:
    """BERT's 80/10/10 masking: (B, T) ids -> (inputs, targets), targets -1 where not chosen."""
    chosen = torch.rand(ids.shape, generator=gen) < rate
    targets = ids.masked_fill(~chosen, -1)
    roll = torch.rand(ids.shape, generator=gen)
    inputs = ids.masked_fill(chosen & (roll < 0.8), MASK)
    random_ids = torch.randint(len(SPECIALS), vocab_size, ids.shape, generator=gen)
    swap = chosen & (roll >= 0.8) & (roll < 0.9)
    inputs = torch.where(swap, random_ids, inputs)
    return inputs, targets


@dataclass
class MLMTask:
    max_steps: int = 800
    batch_size: int = 32
    block_size: int = 64
    n_embd: int = 128
    n_layer: int = 2
    n_head: int = 4
    eval_batches: int = 20
    lr: float = 1e-3
    data: str = ""

    def model(self, vocab: SymbolVocab) -> Encoder:
        cfg = EncoderConfig(
            vocab_size=vocab.vocab_size,
            block_size=self.block_size,
            n_layer=self.n_layer,
            n_head=self.n_head,
            n_embd=self.n_embd,
            dropout=0.0,
            type_vocab_size=0,
            mlm_head=True,
        )
        return Encoder(cfg)


def windows(ids: np.ndarray, B: int, T: int, gen: torch.Generator) -> torch.Tensor:
    """B random windows of T consecutive ids: (B, T)."""
    starts = torch.randint(len(ids) - T, (B,), generator=gen).numpy()
    return torch.from_numpy(ids[starts[:, None] + np.arange(T)].astype(np.int64))


def masked_lm_loss(model: Encoder, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    inputs, targets = batch
    return model(inputs, targets)[1]


def train(task: MLMTask, cfg: TrainConfig, out_dir: Path, **run) -> dict:
    """Pretrain with masked-LM on the corpus; report held-out masked-character accuracy.
    `run`: log, progress, resume, stop_after (`tasks/run.py: train_task`)."""
    torch.manual_seed(cfg.seed)
    text = read_corpus(task.data)
    vocab = SymbolVocab.of_chars(text)
    ids = np.asarray(vocab.encode(text), dtype=np.int64)
    train_ids, val_ids = split_ids(ids, 0.1, task.block_size)
    model = task.model(vocab)
    counts = np.bincount(train_ids, minlength=vocab.vocab_size)
    majority = int(counts.argmax())

    def batches(n: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        x = windows(train_ids, n, task.block_size, gen)
        return mask_tokens(x, vocab.vocab_size, gen)  # inputs, targets: (n, T) each

    def evaluate() -> dict:
        eval_gen = torch.Generator().manual_seed(cfg.seed + 1)  # the same batches every time
        losses, right, guess, total = [], 0, 0, 0
        for _ in range(task.eval_batches):
            x = windows(val_ids, task.batch_size, task.block_size, eval_gen)
            inputs, targets = mask_tokens(x, vocab.vocab_size, eval_gen)
            logits, loss = model(inputs, targets)
            chosen = targets >= 0
            losses.append(loss.item())
            right += (logits.argmax(-1)[chosen] == targets[chosen]).sum().item()
            guess += (targets[chosen] == majority).sum().item()
            total += chosen.sum().item()
        return {
            "heldout_masked_loss": sum(losses) / len(losses),
            "heldout_masked_accuracy": right / total,
            "majority_baseline_accuracy": guess / total,
        }

    return train_task("mlm", model, vocab, cfg, out_dir, batches, masked_lm_loss, evaluate, **run)
