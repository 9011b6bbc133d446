"""The training loop: sample a batch, forward, loss, backward, clip, step — and keep records.

    for step in range(max_steps):
        lr = schedule(step)
        for each micro-batch (x, y):            gradient accumulation
            loss = cross_entropy(model(x), y) / n_micro
            loss.backward()                     gradients add up in .grad
        clip the gradient norm; optimizer.step(); zero the gradients
        every eval_interval steps: measure train/val loss on fixed batches, checkpoint

Each step draws its micro-batches for all processes from one seeded generator, and each
process takes its own share, so one process with `grad_accum=2` and two processes with one
micro-batch each see exactly the same data. Saving that generator's state with the weights
and the optimizer makes `--resume` continue exactly where an interrupted run stopped.
"""

import hashlib
import math
import signal
import sys
import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.nn.parallel import DistributedDataParallel
from tqdm.auto import tqdm

from glassformer.core.device import autocast, pick_device, resolve_precision
from glassformer.errors import UserError
from glassformer.models.gpt import GPT
from glassformer.models.lstm import LSTMConfig, LSTMLanguageModel
from glassformer.train import checkpoint as ckpt
from glassformer.train.config import RunConfig
from glassformer.train.corpus import read_corpus
from glassformer.train.data import Batches, cached_token_ids, split_ids
from glassformer.train.distributed import Distributed
from glassformer.train.metrics import MetricsLog, plot_loss_curve
from glassformer.train.mfu import flops_per_token, matmul_peak
from glassformer.train.optim import learning_rate, make_optimizer


@dataclass
class TrainResult:
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


class _InterruptFlag:
    """First Ctrl-C: finish the current step, checkpoint, stop. Second: stop at once."""

    def __init__(self) -> None:
        self.set = False
        self._old = None

    def __enter__(self):
        if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
            self._old = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum, frame) -> None:
        if self.set:
            raise KeyboardInterrupt
        self.set = True

    def __exit__(self, *exc) -> None:
        if self._old is not None:
            signal.signal(signal.SIGINT, self._old)


class Trainer:
    def __init__(
        self,
        cfg: RunConfig,
        out_dir: str | Path,
        resume: bool = False,
        progress: bool = True,
        log=None,
        on_eval=None,
    ):
        self.cfg, self.out_dir, self.progress = cfg, Path(out_dir), progress
        self.on_eval = on_eval  # on_eval(trainer) -> dict of extra numbers for each eval record
        self.device = pick_device(cfg.train.device)
        self.dist = Distributed.from_env(self.device.type)
        self.log = log or (lambda msg: tqdm.write(msg, file=sys.stderr))
        if cfg.train.grad_accum % self.dist.world_size:
            raise UserError(
                f"train.grad_accum ({cfg.train.grad_accum}) must be a multiple of the number "
                f"of processes ({self.dist.world_size})"
            )
        self.local_accum = cfg.train.grad_accum // self.dist.world_size
        self.precision = resolve_precision(cfg.train.precision, self.device)

        text = read_corpus(cfg.data.path)
        if resume:  # the checkpoint's own tokenizer, not a new one
            self.tokenizer, key = load_tokenizer_file(self.out_dir / "tokenizer.model")
        else:
            self.tokenizer, key = build_tokenizer(cfg.data, text)
        cfg.model.vocab_size = self.tokenizer.vocab_size
        ids = cached_token_ids(text, self.tokenizer, key)
        train_ids, val_ids = split_ids(ids, cfg.data.val_fraction, cfg.model.block_size)
        self.train_batches = Batches(train_ids, cfg.model.block_size)
        self.val_batches = Batches(val_ids, cfg.model.block_size)
        n_val = int(len(text) * cfg.data.val_fraction)
        self.val_bytes_per_token = len(text[len(text) - n_val :].encode("utf-8")) / len(val_ids)

        torch.manual_seed(cfg.train.seed)
        model_class = LSTMLanguageModel if isinstance(cfg.model, LSTMConfig) else GPT
        self.model = model_class(cfg.model).to(self.device)
        self.optimizer = make_optimizer(self.model, cfg.train, self.device)
        self.data_gen = torch.Generator().manual_seed(cfg.train.seed)
        self.step, self.elapsed = 0, 0.0
        if resume:
            self._restore()
        self.forward = self.model
        if self.dist.enabled:
            self.forward = DistributedDataParallel(self.model)
        if cfg.train.compile:
            self.forward = torch.compile(self.forward)

    # -- checkpoints -------------------------------------------------------------------------

    def _restore(self) -> None:
        ckpt.read_config(self.out_dir)
        ckpt.load_weights(self.model, self.out_dir / "model.safetensors")
        state = ckpt.load_trainer_state(self.out_dir)
        self.optimizer.load_state_dict(state["optimizer"])
        self.data_gen.set_state(state["data_rng"])
        torch.set_rng_state(state["torch_rng"])
        self.step, self.elapsed = state["step"], state["elapsed"]
        if self.step >= self.cfg.train.max_steps:
            raise UserError(
                f"the run in {self.out_dir} already finished its {self.step} steps; "
                "raise --max-steps to train further"
            )

    def save_checkpoint(self) -> None:
        if not self.dist.is_main:
            return
        state = {
            "step": self.step,
            "elapsed": self.elapsed,
            "optimizer": self.optimizer.state_dict(),
            "data_rng": self.data_gen.get_state(),
            "torch_rng": torch.get_rng_state(),
        }
        # never leave a torn checkpoint: a Ctrl-C during the write is held back until it ends
        held = []
        old = signal.signal(signal.SIGINT, lambda signum, frame: held.append(signum))
        try:
            ckpt.save_model(self.out_dir, self.model, self.cfg, self.tokenizer)
            ckpt.save_trainer_state(self.out_dir, state)
        finally:
            signal.signal(signal.SIGINT, old)
        if held and callable(old):
            old(signal.SIGINT, None)  # deliver it now (sets the trainer's stop flag)

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
        return {
            "eval_train_loss": train_loss,
            "val_loss": val_loss,
            "val_ppl": math.exp(min(val_loss, 50.0)),
            "val_bpb": val_loss / math.log(2) / self.val_bytes_per_token,
        }

    # -- the loop ----------------------------------------------------------------------------

    def train_step(self, lr: float) -> float:
        cfg = self.cfg.train
        for group in self.optimizer.param_groups:
            group["lr"] = lr * group.get("lr_scale", 1.0)  # Muon's group has its own peak
        # all micro-batches of this step, for all processes; this process takes its share
        x_all, y_all = self.train_batches.sample(cfg.grad_accum * cfg.batch_size, self.data_gen)
        first = self.dist.rank * self.local_accum
        total = torch.zeros((), device=self.device)
        for i in range(first, first + self.local_accum):
            rows = slice(i * cfg.batch_size, (i + 1) * cfg.batch_size)
            x, y = x_all[rows].to(self.device), y_all[rows].to(self.device)  # (B, T) each
            last = i == first + self.local_accum - 1
            sync = self.forward.no_sync() if self.dist.enabled and not last else nullcontext()
            with sync, autocast(self.precision, self.device):
                _, loss = self.forward(x, y)
            (loss / self.local_accum).backward()
            total += loss.detach()
        if cfg.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.grad_clip, foreach=True)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        return self.dist.mean(total / self.local_accum).item()

    def run(self, stop_after: int | None = None) -> TrainResult:
        """Train until max_steps, the time budget, `stop_after` steps of this run, or Ctrl-C."""
        cfg = self.cfg.train
        metrics = None
        if self.dist.is_main:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            metrics = MetricsLog(self.out_dir / "metrics.jsonl", self.step or None)
        tokens_per_step = cfg.grad_accum * cfg.batch_size * self.cfg.model.block_size
        show = self.progress and self.dist.is_main
        bar = tqdm(
            total=cfg.max_steps,
            initial=self.step,
            unit="step",
            dynamic_ncols=True,
            disable=None if show else True,
            file=sys.stderr,
        )
        start_step, train_time = self.step, 0.0
        loss, val_loss, interrupted = float("nan"), None, False
        self.model.train()
        with _InterruptFlag() as interrupt:
            while self.step < cfg.max_steps and not (
                cfg.time_budget and self.elapsed >= cfg.time_budget
            ):
                progress = self.step / cfg.max_steps
                if cfg.time_budget:
                    progress = max(progress, self.elapsed / cfg.time_budget)
                t0 = time.perf_counter()
                loss = self.train_step(learning_rate(cfg, self.step, progress))
                dt = time.perf_counter() - t0
                train_time += dt
                self.elapsed += dt
                self.step += 1
                if not math.isfinite(loss):
                    raise UserError(
                        f"the loss became {loss} at step {self.step}: training diverged; "
                        "lower --train.lr or raise --train.warmup_steps"
                    )
                tok_s = tokens_per_step * (self.step - start_step) / train_time
                record = {
                    "step": self.step,
                    "train_loss": loss,
                    "lr": self.optimizer.param_groups[0]["lr"],
                    "tokens_per_s": round(tok_s, 1),
                    "elapsed_s": round(self.elapsed, 3),
                }
                bar.update(1)
                bar.set_postfix(loss=f"{loss:.4f}", tok_s=f"{tok_s / 1000:.1f}k", refresh=False)
                interrupted = interrupt.set
                stopping = (
                    interrupted
                    or self.step == cfg.max_steps
                    or bool(cfg.time_budget and self.elapsed >= cfg.time_budget)
                    or (stop_after is not None and self.step - start_step >= stop_after)
                )
                if stopping or self.step % cfg.eval_interval == 0:
                    record.update(self._eval_and_save(tok_s))
                    val_loss = record["val_loss"]
                if metrics:
                    metrics.write(record)
                if stopping:
                    break
        bar.close()
        tok_s = tokens_per_step * (self.step - start_step) / train_time if train_time else 0.0
        sample = None
        if metrics:
            metrics.close()
            plot_loss_curve(self.out_dir / "metrics.jsonl", self.out_dir / "loss.png")
            finished = self.step >= cfg.max_steps or (
                cfg.time_budget and self.elapsed >= cfg.time_budget
            )
            if cfg.sample_tokens and finished:
                sample = self.sample(cfg.sample_tokens)
        self.dist.barrier()
        return TrainResult(self.step, loss, val_loss, tok_s, interrupted, sample)

    def _eval_and_save(self, tokens_per_s: float) -> dict:
        results = self.evaluate()
        if self.on_eval is not None:
            results.update(self.on_eval(self))
        mfu = ""
        if isinstance(self.model, GPT):  # model FLOPs / the measured matmul peak (mfu.py)
            dtype = torch.bfloat16 if self.precision == "bf16" else torch.float32
            peak = matmul_peak(dtype, self.device)
            results["mfu"] = flops_per_token(self.model) * tokens_per_s / peak
            mfu = f" | MFU {100 * results['mfu']:.1f}%"
        self.save_checkpoint()
        self.dist.barrier()
        self.log(
            f"step {self.step}/{self.cfg.train.max_steps} | train {results['eval_train_loss']:.4f} "
            f"| val {results['val_loss']:.4f} | ppl {results['val_ppl']:.2f} "
            f"| {results['val_bpb']:.3f} bits/byte | {tokens_per_s / 1000:.1f}k tok/s{mfu}"
        )
        return results

    @torch.no_grad()
    def sample(self, n_tokens: int) -> str:
        from glassformer.generate.sampling import generate_ids

        gen = torch.Generator(device=self.device).manual_seed(self.cfg.train.seed)
        start = self.val_batches.ids[:1].astype("int64")
        idx = torch.tensor(start, device=self.device)[None, :]  # (1, 1)
        self.model.eval()
        new = list(
            generate_ids(
                self.model,
                idx,
                n_tokens,
                temperature=0.8,
                top_k=200,
                eot_id=self.tokenizer.eot_id,
                generator=gen,
            )
        )
        return self.tokenizer.decode(torch.cat([idx] + new, dim=1)[0].tolist())
