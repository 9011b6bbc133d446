"""The training loop: sample a batch, forward, loss, backward, clip, step — and keep records.

    for step in range(max_steps):
        lr = schedule(step)
        for each micro-batch:                   gradient accumulation
            loss = loss_fn(model, batch) / n_micro
            loss.backward()                     gradients add up in .grad
        clip the gradient norm; optimizer.step(); zero the gradients
        every eval_interval steps: evaluate(), save a checkpoint, log one line

The loop knows nothing of the model it trains (as minGPT's trainer knows nothing of GPT):
it is given a model, a batch source and a loss, and optionally an `evaluate` and a `save`.

    trainer = Trainer(model, TrainConfig(max_steps=100), batches=data.sample,
                      loss=lambda model, batch: model(*batch)[1], out_dir="runs/x")
    trainer.run()

`batches(n, generator)` returns a tuple of tensors with `n` rows each. Every step draws its
micro-batches for all processes from one seeded generator, and each process takes its own
share of the rows, so one process with `grad_accum=2` and two processes with one micro-batch
each see exactly the same data (`torchrun`: a step is grad_accum x batch_size sequences
whatever the number of processes; with more processes than micro-batches each takes part of
one). Saving that generator's state with the weights and the
optimizer (`state_dict`) makes a resumed run continue exactly where the interrupted one
stopped. The language-model run that drives this loop for `glassformer train` is lm.py.
"""

import math
import signal
import statistics
import sys
import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from tqdm.auto import tqdm

from glassformer.checkpoint.state import (
    FIX,
    check_number,
    check_optimizer_state,
    check_rng_state,
)
from glassformer.core.device import autocast, pick_device, resolve_precision
from glassformer.core.files import fsync_file
from glassformer.errors import UserError
from glassformer.train.config import TrainConfig
from glassformer.train.distributed import Distributed
from glassformer.train.loggers import logger_names, open_loggers
from glassformer.train.metrics import MetricsLog, plot_loss_curve
from glassformer.train.optim import learning_rate, make_optimizer

Batch = tuple[torch.Tensor, ...]
STEP_KEYS = ("step", "train_loss", "lr", "tokens_per_s", "elapsed_s")  # in every record
# the divergence guard (besides train.diverge_factor and train.diverge_evals)
DIVERGE_WINDOW = 50  # steps whose training losses give the running median
DIVERGE_GROWTH = 1.5  # how much the loss must have grown over diverge_evals rising evaluations


@dataclass
class TrainResult:
    step: int
    train_loss: float
    evaluation: dict  # the numbers of the last evaluate() ({} if there was none)
    tokens_per_second: float
    interrupted: bool
    finished: bool  # max_steps or the time budget reached (not a Ctrl-C or `stop_after`)
    skipped: int = 0  # steps skipped for a NaN / infinite loss (train.skip_nonfinite)


def describe(record: dict) -> str:
    """The default eval log line: `train loss 1.2345 | heldout_accuracy 0.9100`."""
    shown = [f"train loss {record['train_loss']:.4f}"]
    shown += [
        f"{k} {v:.4f}" for k, v in record.items() if k not in STEP_KEYS and isinstance(v, float)
    ]
    return " | ".join(shown)


def _out_of_memory(e: RuntimeError) -> bool:
    """An allocation that failed: torch's OutOfMemoryError (CUDA, MPS) or the CPU allocator's."""
    text = str(e)
    return isinstance(e, torch.OutOfMemoryError) or "can't allocate memory" in text


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
    """Train `model` on `batches` with `loss(model, batch) -> scalar tensor`.

    evaluate() -> dict   numbers recorded and logged at each evaluation (model in eval mode)
    save(state)          write a checkpoint; `state` is `state_dict()`, to pass back as
                         `state=` when resuming. Called on the main process only, with
                         Ctrl-C held back until it returns
    describe(record)     the eval log line after `step N/M | `
    """

    def __init__(
        self,
        model: torch.nn.Module,
        cfg: TrainConfig,
        batches: Callable[[int, torch.Generator], Batch],
        loss: Callable[[torch.nn.Module, Batch], torch.Tensor],
        out_dir: str | Path,
        evaluate: Callable[[], dict] | None = None,
        save: Callable[[dict], None] | None = None,
        describe: Callable[[dict], str] = describe,
        state: dict | None = None,
        progress: bool = True,
        log: Callable[[str], None] | None = None,
    ):
        self.cfg, self.batches, self.loss = cfg, batches, loss
        self.out_dir, self.progress = Path(out_dir), progress
        self.evaluate, self.save, self.describe = evaluate, save, describe
        self.log = log or (lambda msg: tqdm.write(msg, file=sys.stderr))
        self.device = pick_device(cfg.device)
        self.dist = Distributed.from_env(self.device.type, cfg.parallel)
        # a step is grad_accum x batch_size sequences whatever the number of processes: each
        # process takes an equal share, in micro-batches of at most batch_size (tensor
        # parallelism: every process the whole step, each computing part of the model)
        rows, shares = cfg.grad_accum * cfg.batch_size, self.dist.data_world
        if rows % shares:
            raise UserError(
                f"a step of {rows} sequences (train.grad_accum {cfg.grad_accum} x "
                f"train.batch_size {cfg.batch_size}) does not split evenly over "
                f"{shares} processes; make it a multiple of {shares}"
            )
        self.share = rows // shares  # sequences per process and step
        logger_names(cfg.log)  # a wrong --log is refused before anything is written
        self.precision = resolve_precision(cfg.precision, self.device)
        self.model = self.dist.shard(model.to(self.device), cfg.optimizer)
        self.optimizer = make_optimizer(self.model, cfg, self.device)
        self.data_gen = torch.Generator().manual_seed(cfg.seed)
        self.step, self.elapsed, self.tokens_per_s = 0, 0.0, 0.0
        self.evaluation: dict = {}  # the numbers of the last evaluate()
        # the divergence guard: recent losses, the first one, the losses since the last
        # evaluation and the means of the last evaluations; steps skipped (skip_nonfinite)
        self._recent: deque[float] = deque(maxlen=DIVERGE_WINDOW)
        self._first_loss: float | None = None
        self._since_eval: list[float] = []
        self._eval_means: deque[float] = deque(maxlen=cfg.diverge_evals + 1)
        self.skipped = 0
        self._recorded = 0  # metrics lines this run wrote
        self.saved_step: int | None = None  # the step of the last checkpoint
        if state is not None:
            self.load_state_dict(state)
            self.saved_step = self.step
        self.forward = self.dist.forward_module(self.model)
        # the model as one process holds it, as of the last checkpoint (fsdp, tp: an unsharded
        # copy, on the main process only)
        self.whole_model = None if self.dist.sharded else self.model
        if cfg.compile:
            self.forward = torch.compile(self.forward)

    # -- checkpoints -------------------------------------------------------------------------

    def state_dict(self) -> dict:
        """Everything besides the weights that an exact resume needs."""
        return {
            "step": self.step,
            "elapsed": self.elapsed,
            "optimizer": self.dist.optimizer_state(self.optimizer),
            "data_rng": self.data_gen.get_state(),
            "torch_rng": torch.get_rng_state(),
        }

    def load_state_dict(self, state: dict) -> None:
        """Continue from `state_dict()` (each part checked first: a damaged file is a
        UserError, never a crash inside the optimizer)."""
        source = self.out_dir / "trainer_state.pt"
        missing = [
            k for k in ("step", "elapsed", "optimizer", "data_rng", "torch_rng") if k not in state
        ]
        if missing:
            raise UserError(f"{source} lacks {', '.join(missing)}; {FIX}")
        check_optimizer_state(self.optimizer, state["optimizer"], source)
        self.dist.load_optimizer_state(self.optimizer, state["optimizer"])
        self.data_gen.set_state(
            check_rng_state(state["data_rng"], self.data_gen.get_state(), "data_rng", source)
        )
        torch.set_rng_state(
            check_rng_state(state["torch_rng"], torch.get_rng_state(), "torch_rng", source)
        )
        self.step = state["step"]
        self.elapsed = check_number(state["elapsed"], "elapsed", source)
        if self.step >= self.cfg.max_steps:
            raise UserError(
                f"the run in {self.out_dir} already finished its {self.step} steps; "
                "raise --max-steps to train further"
            )

    def save_checkpoint(self) -> None:
        if self.save is None:
            return
        state = self.state_dict()  # fsdp, tp: every process sends its shards
        self.whole_model = self.dist.whole_model(self.model)
        if not self.dist.is_main:
            return
        # never leave a torn checkpoint: a Ctrl-C during the write is held back until it ends
        held = []
        old = signal.signal(signal.SIGINT, lambda signum, frame: held.append(signum))
        try:
            self.save(state)
            self.saved_step = self.step
        finally:
            signal.signal(signal.SIGINT, old)
        if held and callable(old):
            old(signal.SIGINT, None)  # deliver it now (sets the trainer's stop flag)

    # -- the loop ----------------------------------------------------------------------------

    def train_step(self, lr: float) -> float:
        cfg = self.cfg
        for group in self.optimizer.param_groups:
            group["lr"] = lr * group.get("lr_scale", 1.0)  # Muon's group has its own peak
        # all micro-batches of this step, for all processes; this process takes its share
        batch_all = self.batches(cfg.grad_accum * cfg.batch_size, self.data_gen)
        first = self.dist.data_rank * self.share
        end = first + self.share
        total = torch.zeros((), device=self.device)
        for lo in range(first, end, cfg.batch_size):
            hi = min(lo + cfg.batch_size, end)
            batch = tuple(t[lo:hi].to(self.device) for t in batch_all)  # (B, ...) each
            sync = self.dist.gradient_sync(self.forward, last=hi == end)
            with sync, autocast(self.precision, self.device):
                loss = self.loss(self.forward, batch)
            weight = (hi - lo) / self.share  # a mean over the share's sequences
            (loss * weight).backward()
            total += loss.detach() * weight
        self._tokens_per_step = batch_all[0].numel()  # all processes, all micro-batches
        mean = None
        if cfg.skip_nonfinite:  # the loss decides before the update (the same on every process)
            mean = self.dist.mean(total).item()
            if not math.isfinite(mean):
                self.optimizer.zero_grad(set_to_none=True)  # skipped: no update
                return mean
        if cfg.grad_clip > 0:
            self.dist.clip_grad_norm(list(self.model.parameters()), cfg.grad_clip)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        return self.dist.mean(total).item() if mean is None else mean

    # -- the divergence guard -----------------------------------------------------------------

    def _weights_finite(self) -> bool:
        """One reduction over the trained parameters (a NaN or infinity anywhere makes the norm
        one); frozen ones, such as a LoRA run's 134 M base weights, the update never touches."""
        return self.dist.weights_finite([p for p in self.model.parameters() if p.requires_grad])

    def _diverged(self, what: str) -> UserError:
        """Stop the run in one sentence; the last checkpoint (written before) stays as it was."""
        lr = self.optimizer.param_groups[0]["lr"]
        kept = "no checkpoint was written"
        if self.saved_step is not None:
            kept = f"the checkpoint of step {self.saved_step} in {self.out_dir} is left as it was"
        return UserError(
            f"training diverged at step {self.step}: {what}, most likely because the learning "
            f"rate {lr:.3g} is too high; {kept}; lower --train.lr or raise --train.warmup_steps"
        )

    def _guard_step(self, loss: float) -> None:
        """A finite step loss against the running median of the last DIVERGE_WINDOW steps.

        Armed from the second step of a run: a learning rate far too high blows the loss up
        within the first steps (lr 10 on the tiny preset: 3.4, then 285), inside any warm-up.
        The loss must also exceed the run's first loss, so a loss near zero (a classifier's)
        that jumps to a small value is not taken for a divergence.
        """
        self._guard_loss(loss, f"the training loss {loss:.4g}")
        if self._first_loss is None:
            self._first_loss = loss
        self._recent.append(loss)
        self._since_eval.append(loss)

    def _guard_loss(self, loss: float, what: str) -> None:
        """Stop if `loss` (a step's, or an evaluation's: the weights after the update) exceeds
        diverge_factor times the running median of the training loss and the first loss."""
        k = self.cfg.diverge_factor
        if k and self._recent:
            median = statistics.median(self._recent)
            if loss > k * median and loss > self._first_loss:
                raise self._diverged(
                    f"{what} is over {k:g} times the training loss's running median {median:.4g}"
                )

    def _guard_evaluation(self) -> None:
        """The mean training loss since the last evaluation, against the last evaluations'."""
        n = self.cfg.diverge_evals
        if not self._since_eval:
            return
        means = self._eval_means
        means.append(sum(self._since_eval) / len(self._since_eval))
        self._since_eval = []
        rising = all(b > a for a, b in zip(means, list(means)[1:], strict=False))
        if n and len(means) == n + 1 and rising and means[-1] > DIVERGE_GROWTH * means[0]:
            raise self._diverged(
                f"the mean training loss grew at {n} evaluations in a row, from {means[0]:.4g} "
                f"to {means[-1]:.4g}"
            )

    def _out_of_time(self) -> bool:
        return bool(self.cfg.time_budget and self.elapsed >= self.cfg.time_budget)

    def run(self, stop_after: int | None = None) -> TrainResult:
        """Train until max_steps, the time budget, `stop_after` steps of this run, or Ctrl-C."""
        cfg = self.cfg
        metrics = None
        if self.dist.is_main:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            resume_step = self.step or None
            loggers = open_loggers(cfg.log, self.out_dir, {"train": asdict(cfg)}, resume_step)
            metrics = MetricsLog(self.out_dir / "metrics.jsonl", resume_step, loggers)
        show = self.progress and self.dist.is_main
        bar = tqdm(
            total=cfg.max_steps,
            initial=self.step,
            unit="step",
            dynamic_ncols=True,
            disable=None if show else True,
            file=sys.stderr,
        )
        try:
            result = self._loop(metrics, bar, stop_after)
        except BaseException:
            bar.close()
            if metrics:
                metrics.close()
                if self.saved_step is None and not self._recorded:  # failed in its first step
                    metrics.path.unlink(missing_ok=True)  # a new run leaves no empty records
            raise
        bar.close()
        if metrics:
            metrics.close()
            plot_loss_curve(self.out_dir / "metrics.jsonl", self.out_dir / "loss.png")
        self.dist.barrier()
        return result

    def _loop(self, metrics, bar, stop_after: int | None) -> TrainResult:
        cfg = self.cfg
        start_step, train_time, tokens = self.step, 0.0, 0
        loss, interrupted = float("nan"), False
        self.model.train()
        with _InterruptFlag() as interrupt:
            while self.step < cfg.max_steps and not self._out_of_time():
                progress = self.step / cfg.max_steps
                if cfg.time_budget:
                    progress = max(progress, self.elapsed / cfg.time_budget)
                t0 = time.perf_counter()
                try:
                    loss = self.train_step(learning_rate(cfg, self.step, progress))
                except RuntimeError as e:  # torch.OutOfMemoryError is one too
                    if not _out_of_memory(e):
                        raise
                    raise UserError(
                        f"step {self.step + 1} ran out of memory (train.batch_size "
                        f"{cfg.batch_size} x train.grad_accum {cfg.grad_accum} sequences); "
                        "lower --train.batch_size"
                    ) from None
                dt = time.perf_counter() - t0
                train_time += dt
                self.elapsed += dt
                self.step += 1
                if math.isfinite(loss):
                    self._guard_step(loss)
                elif cfg.skip_nonfinite:
                    self.skipped += 1
                    self.log(
                        f"step {self.step}: skipped, its training loss was {loss} "
                        f"(--train.skip_nonfinite; {self.skipped} skipped so far)"
                    )
                else:
                    raise self._diverged(f"the training loss became {loss}")
                if not self._weights_finite():
                    raise self._diverged("the update made weights NaN or infinite")
                tokens += self._tokens_per_step
                self.tokens_per_s = tokens / train_time
                record = {
                    "step": self.step,
                    "train_loss": loss,
                    "lr": self.optimizer.param_groups[0]["lr"],
                    "tokens_per_s": round(self.tokens_per_s, 1),
                    "elapsed_s": round(self.elapsed, 3),
                }
                if self.skipped:
                    record["skipped_steps"] = self.skipped
                bar.update(1)
                tok_s = f"{self.tokens_per_s / 1000:.1f}k"
                bar.set_postfix(loss=f"{loss:.4f}", tok_s=tok_s, refresh=False)
                interrupted = interrupt.set
                stopping = (
                    interrupted
                    or self.step == cfg.max_steps
                    or self._out_of_time()
                    or (stop_after is not None and self.step - start_step >= stop_after)
                )
                if stopping or self.step % cfg.eval_interval == 0:
                    self._guard_evaluation()  # before anything is saved
                    self._evaluate_and_save(record, metrics)
                else:
                    self._write_record(record, metrics)
                if stopping:
                    break
        finished = self.step >= cfg.max_steps or self._out_of_time()
        tok_s = tokens / train_time if train_time else 0.0
        return TrainResult(
            self.step, loss, self.evaluation, tok_s, interrupted, finished, self.skipped
        )

    def _write_record(self, record: dict, metrics: MetricsLog | None, durable=False) -> None:
        if metrics:
            metrics.write(record)
            if durable:  # on disk before the save's commit (fsync: not lost with the power)
                fsync_file(metrics.path)
            self._recorded += 1

    def _evaluate_and_save(self, record: dict, metrics: MetricsLog | None = None) -> None:
        """Evaluate (the numbers also go into `record`), record, checkpoint, log one line.

        The step's metrics line is written before the checkpoint's commit, so a kill between
        the two never loses the line of a saved step; a line past the saved step (a kill
        before the commit) is dropped when the run resumes (MetricsLog keeps the records up
        to the checkpoint's step), so the manifest's commit decides both.
        """
        self.model.eval()
        self.evaluation = self.evaluate() if self.evaluate is not None else {}
        self.model.train()
        for name, value in self.evaluation.items():  # never save a diverged model
            if isinstance(value, float) and not math.isfinite(value):
                raise self._diverged(f"the evaluation's {name} became {value}")
            if name.endswith("loss") and isinstance(value, float):
                self._guard_loss(value, f"the evaluation's {name} {value:.4g}")
        record.update(self.evaluation)
        self._write_record(record, metrics, durable=True)
        self.save_checkpoint()
        self.dist.barrier()
        if self.dist.is_main:
            self.log(f"step {self.step}/{self.cfg.max_steps} | {self.describe(record)}")
