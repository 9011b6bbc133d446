"""The language-model run: what `glassformer train` trains, driven by the one Trainer.

    corpus (corpus.py) ──tokenizer──▶ token ids, cached as a memmap (data.py)
        ──▶ first 90% train windows, last 10% validation windows
    model: GPT or LSTM from the family registry (`cfg.model` is its config)
    Trainer (trainer.py): the loop, with loss = cross-entropy of the next token
    each evaluation: loss on fixed train / val batches, perplexity, bits per byte, MFU
    at the end: a sample from the model

    >>> run = LanguageModelRun(get_preset("tiny"), "runs/tiny")   # doctest: +SKIP
    >>> run.run().val_loss                                         # doctest: +SKIP
    1.93

Bits per byte divide the validation loss by the bytes a token covers, so runs with
different tokenizers compare on one scale.
"""

import hashlib
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from glassformer import checkpoint
from glassformer.core.device import autocast
from glassformer.errors import UserError
from glassformer.models.gpt import GPT
from glassformer.models.registry import build
from glassformer.nn.lora import merged_copy
from glassformer.train.config import RunConfig
from glassformer.train.corpus import read_corpus
from glassformer.train.data import (
    Batches,
    cached_token_ids,
    check_batch_fits,
    machine_memory,
    split_ids,
)
from glassformer.train.finetune import FinetuneConfig, load_pretrained, tokenizer_key
from glassformer.train.mfu import flops_per_token, matmul_peak
from glassformer.train.trainer import Trainer


@dataclass
class LMResult:
    step: int
    train_loss: float
    val_loss: float | None
    tokens_per_second: float
    interrupted: bool
    sample: str | None


def build_tokenizer(data_cfg, text: str):
    """The tokenizer named by `data.tokenizer`, and a key that identifies it for the cache."""
    from glassformer.tokenizers import BPETokenizer, CharTokenizer

    if data_cfg.tokenizer == "char":
        return CharTokenizer.train(text), "char"
    if data_cfg.tokenizer == "bpe":
        return BPETokenizer.train(text, data_cfg.vocab_size), f"bpe-{data_cfg.vocab_size}"
    path = Path(data_cfg.tokenizer)
    if not path.is_file():
        raise UserError(f"--tokenizer must be char, bpe or a tokenizer file; {path} does not exist")
    return load_tokenizer_file(path)


def load_tokenizer_file(path: Path):
    """A saved tokenizer and its cache key (a digest of the file)."""
    from glassformer.tokenizers import load_tokenizer

    return load_tokenizer(path), "file-" + hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def read_run_config(out_dir: str | Path) -> RunConfig:
    """The RunConfig saved in the checkpoint folder of a language-model run (for --resume)."""
    meta = checkpoint.read_meta(out_dir)
    if meta["family"] not in ("gpt", "lstm"):
        raise UserError(
            f"{out_dir} holds a {meta['family']!r} model, not a language model; "
            "resume a task with glassformer train --task NAME --resume"
        )
    try:
        return RunConfig.from_dict(meta)
    except (ValueError, KeyError, TypeError) as e:
        raise UserError(f"{out_dir}/config.json is not a valid run config ({e}); retrain") from None


def lm_loss(model: torch.nn.Module, batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
    x, y = batch  # (B, T) each: y is x shifted by one
    return model(x, y)[1]


class LanguageModelRun:
    """Data, model and Trainer of one run; `resume` continues the run saved in `out_dir`
    (`cfg` is then that run's config, read once by the caller: `read_run_config`).

    `on_eval(run) -> dict` adds numbers to each evaluation; `model_config(cfg)` replaces
    `cfg.model` once the vocabulary is known (the rnn experiment: an LSTM as big as the GPT).
    `finetune` starts from a pretrained model and its tokenizer instead (finetune.py); the
    windows are then `finetune.context` tokens long. `vocab_size`, where the user asked for
    one, must be the tokenizer's (it is set from the tokenizer, never silently replaced).
    """

    def __init__(
        self,
        cfg: RunConfig,
        out_dir: str | Path,
        resume: bool = False,
        progress: bool = True,
        log: Callable[[str], None] | None = None,
        on_eval: Callable[["LanguageModelRun"], dict] | None = None,
        model_config: Callable[[RunConfig], object] | None = None,
        finetune: FinetuneConfig | None = None,
        vocab_size: int | None = None,
    ):
        self.cfg, self.out_dir, self.on_eval = cfg, Path(out_dir), on_eval
        self.finetune = finetune
        text = read_corpus(cfg.data.path, cfg.data.field)
        torch.manual_seed(cfg.train.seed)
        pretrained = None
        if resume:  # the checkpoint's own tokenizer, not a new one
            self.tokenizer, key = load_tokenizer_file(self.out_dir / "tokenizer.model")
        elif finetune is not None:  # the pretrained model's architecture and tokenizer
            pretrained, self.tokenizer = load_pretrained(finetune)
            cfg.model, key = pretrained.config, tokenizer_key(self.tokenizer)
        else:
            self.tokenizer, key = build_tokenizer(cfg.data, text)
        if vocab_size is not None and vocab_size != self.tokenizer.vocab_size:
            raise UserError(
                f"--model.vocab_size {vocab_size} contradicts the tokenizer, which has "
                f"{self.tokenizer.vocab_size} tokens: the model's vocabulary is the tokenizer's; "
                "drop --model.vocab_size (a BPE tokenizer's size is --vocab-size)"
            )
        if pretrained is None:
            cfg.model.vocab_size = self.tokenizer.vocab_size
        if model_config is not None:
            cfg.model = model_config(cfg)
        window = finetune.context if finetune is not None else cfg.model.block_size
        rows = cfg.train.grad_accum * cfg.train.batch_size  # every process draws a whole step
        itemsize = 2 if self.tokenizer.vocab_size <= 2**16 else 4
        check_batch_fits(rows, window, itemsize, machine_memory())  # before any allocation
        try:
            ids = cached_token_ids(text, self.tokenizer, key)
        except UserError:
            if not resume:
                raise
            # the run's char tokenizer lacks a character of this corpus: never quote it
            raise UserError(
                f"{cfg.data.path or 'the corpus'} holds characters that the tokenizer of the "
                f"run in {self.out_dir} does not know, so it is not the corpus the run trained "
                "on; pass --data that corpus"
            ) from None
        train_ids, val_ids = split_ids(ids, cfg.data.val_fraction, window)
        self.train_batches = Batches(train_ids, window)
        self.val_batches = Batches(val_ids, window)
        n_val = int(len(text) * cfg.data.val_fraction)
        self.val_bytes_per_token = len(text[len(text) - n_val :].encode("utf-8")) / len(val_ids)

        model = pretrained if pretrained is not None else build(cfg.family, cfg.model.to_dict())
        state = checkpoint.resume(self.out_dir, model, log) if resume else None
        self.trainer = Trainer(
            model,
            cfg.train,
            self.train_batches.sample,
            lm_loss,
            self.out_dir,
            evaluate=self.evaluate,
            save=self.save,
            describe=self.describe,
            state=state,
            progress=progress,
            log=log,
        )
        self.model, self.device, self.precision = model, self.trainer.device, self.trainer.precision

    def save(self, trainer_state: dict) -> None:
        meta, model = self.cfg.to_dict(), self.trainer.whole_model  # unsharded (fsdp, tp)
        if self.finetune is not None:
            meta["finetune"] = self.finetune.to_dict()
            if self.finetune.lora:  # adapters merged in: an ordinary checkpoint (nn/lora.py)
                model, trainer_state = merged_copy(model), None
        checkpoint.save(self.out_dir, model, self.tokenizer, meta, trainer_state)

    # -- evaluation --------------------------------------------------------------------------

    @torch.no_grad()
    def estimate_loss(self, batches: Batches, seed_offset: int) -> float:
        """Mean loss over `eval_iters` batches that are the same at every evaluation."""
        gen = torch.Generator().manual_seed(self.cfg.train.seed + seed_offset)
        self.model.eval()
        losses = []
        for _ in range(self.cfg.train.eval_iters):
            x, y = batches.sample(self.cfg.train.batch_size, gen)
            with autocast(self.precision, self.device):
                _, loss = self.model(x.to(self.device), y.to(self.device))
            losses.append(loss.item())
        self.model.train()
        return sum(losses) / len(losses)

    def evaluate(self) -> dict:
        train_loss = self.estimate_loss(self.train_batches, 1)
        val_loss = self.estimate_loss(self.val_batches, 2)
        results = {
            "eval_train_loss": train_loss,
            "val_loss": val_loss,
            "val_ppl": math.exp(min(val_loss, 50.0)),
            "val_bpb": val_loss / math.log(2) / self.val_bytes_per_token,
        }
        if self.on_eval is not None:
            results.update(self.on_eval(self))
        if isinstance(self.model, GPT):  # model FLOPs / the measured matmul peak (mfu.py)
            dtype = torch.bfloat16 if self.precision == "bf16" else torch.float32
            peak = matmul_peak(dtype, self.device)
            results["mfu"] = flops_per_token(self.model) * self.trainer.tokens_per_s / peak
        return results

    def describe(self, r: dict) -> str:
        mfu = f" | MFU {100 * r['mfu']:.1f}%" if "mfu" in r else ""
        return (
            f"train {r['eval_train_loss']:.4f} | val {r['val_loss']:.4f} "
            f"| ppl {r['val_ppl']:.2f} | {r['val_bpb']:.3f} bits/byte "
            f"| {r['tokens_per_s'] / 1000:.1f}k tok/s{mfu}"
        )

    # -- the run -----------------------------------------------------------------------------

    def run(self, stop_after: int | None = None) -> LMResult:
        """Train (see `Trainer.run`); a finished run ends with a sample on the main process."""
        r = self.trainer.run(stop_after)
        sample = None
        if self.cfg.train.sample_tokens and r.finished and self.trainer.dist.is_main:
            sample = self.sample(self.cfg.train.sample_tokens)
        val_loss = r.evaluation.get("val_loss")
        return LMResult(r.step, r.train_loss, val_loss, r.tokens_per_second, r.interrupted, sample)

    @torch.no_grad()
    def sample(self, n_tokens: int) -> str:
        from glassformer.generate import GenerationOptions, generate_tokens

        model = self.trainer.whole_model  # the last checkpoint's; unsharded (fsdp, tp)
        start = self.val_batches.ids[:1].astype("int64")
        idx = torch.tensor(start, device=next(model.parameters()).device)[None, :]  # (1, 1)
        eot = self.tokenizer.eot_id
        opts = GenerationOptions(
            n_tokens, "sample", temperature=0.8, top_k=200, seed=self.cfg.train.seed,
            stop_ids=() if eot is None else (eot,),
        )  # fmt: skip
        return self.tokenizer.decode(generate_tokens(model, idx, opts)[0].tolist())
