"""Run configuration: what to train (`GPTConfig`, or another family's config such as
`LSTMConfig`), how (`TrainConfig`), on what (`DataConfig`).

Presets (`presets.py`) are `RunConfig`s; the CLI overrides any field with a dotted flag such
as `--model.n_layer 6` or `--train.lr 3e-4`, and `--help` lists every field with its help.
"""

from dataclasses import asdict, dataclass, field, fields

from glassformer.core.fields import check_fields, option
from glassformer.models.config import GPTConfig
from glassformer.models.lstm import LSTMConfig
from glassformer.models.registry import FAMILIES


@dataclass
class TrainConfig:
    batch_size: int = option(12, "sequences per micro-batch (per process)", range="[1, inf)")
    grad_accum: int = option(
        1, "micro-batches accumulated into one optimizer step (in total)", range="[1, inf)"
    )
    max_steps: int = option(
        2000, "optimizer steps; also the length of the LR schedule", range="[1, inf)"
    )
    time_budget: float = option(
        0.0,
        "stop after this many seconds (0: no limit); the LR schedule "
        "then ends at whichever of max_steps or the budget comes first",
        range="[0, inf)",
    )
    lr: float = option(1e-3, "peak learning rate", range="(0, inf)")
    min_lr: float = option(1e-4, "learning rate at the end of the decay", range="[0, inf)")
    warmup_steps: int = option(100, "steps of linear warmup from 0 to lr", range="[0, inf)")
    schedule: str = option(
        "cosine",
        "after warmup: cosine decay to min_lr, warmup-stable-decay (flat, then linear decay "
        "over the last decay_frac of training), or constant",
        ("cosine", "wsd", "constant"),
    )
    decay_frac: float = option(
        0.2, "fraction of training spent decaying in the wsd schedule", range="[0, 1]"
    )
    optimizer: str = option(
        "adamw",
        "adamw for every parameter, or muon: Muon for the hidden weight matrices (at muon_lr, "
        "no weight decay) and AdamW for embeddings, head, gains and biases (at lr)",
        ("adamw", "muon"),
    )
    muon_lr: float = option(
        0.02, "Muon's peak learning rate (follows the same schedule as lr)", range="(0, inf)"
    )
    muon_momentum: float = option(0.95, "Muon's (Nesterov) momentum", range="[0, 1)")
    weight_decay: float = option(
        0.1, "AdamW weight decay on matrices (not on biases or norms)", range="[0, inf)"
    )
    beta1: float = option(0.9, "AdamW beta1", range="[0, 1)")
    beta2: float = option(0.99, "AdamW beta2", range="[0, 1)")
    grad_clip: float = option(
        1.0, "clip the global gradient norm to this (0: no clipping)", range="[0, inf)"
    )
    diverge_factor: float = option(
        10.0,
        "stop (saving nothing) when a step's training loss, or an evaluation's loss, exceeds "
        "this many times the median of the last 50 steps' training losses and the run's first "
        "loss (0: off; else above 1)",
        range="[0, inf)",
    )
    diverge_evals: int = option(
        5,
        "stop (saving nothing) when the mean training loss between evaluations grew at this "
        "many evaluations in a row, to over 1.5 times its value before them (0: off)",
        range="[0, inf)",
    )
    skip_nonfinite: bool = option(
        False,
        "skip a step whose training loss is NaN or infinite (no update; each skip reported "
        "and counted) instead of stopping the run",
    )
    eval_interval: int = option(
        250, "evaluate (and checkpoint) every this many steps", range="[1, inf)"
    )
    eval_iters: int = option(20, "batches per split in each evaluation", range="[1, inf)")
    seed: int = option(
        1337,
        "seed for initialisation, batches, dropout and the final sample",
        range="[0, 18446744073709551615]",
    )
    device: str = option(
        "auto", "auto picks cuda, then mps, then cpu", ("auto", "cpu", "cuda", "mps")
    )
    precision: str = option(
        "auto",
        "auto uses bf16 autocast only where bf16 is fast (CUDA sm80+, CPUs with AMX or "
        "AVX512-BF16), fp32 elsewhere",
        ("auto", "fp32", "bf16"),
    )
    parallel: str = option(
        "ddp",
        "how the processes of a torchrun share the work: ddp (each a whole copy, the batch "
        "split), fsdp (parameters, gradients and optimizer state split, the batch too) or tp "
        "(each block's matrices split, every process the whole batch); docs/performance.md",
        ("ddp", "fsdp", "tp"),
    )
    compile: bool = option(False, "run the model through torch.compile")
    sample_tokens: int = option(
        300, "tokens to sample at the end of training (0: none)", range="[0, inf)"
    )
    log: str = option(
        "",
        "also send the metrics to these, comma-separated: tensorboard (RUN/tensorboard/), csv "
        "(RUN/metrics.csv), wandb, mlflow",
    )

    def __post_init__(self) -> None:
        check_fields(self, "train")  # types, finiteness, choices and the ranges above
        if 0 < self.diverge_factor <= 1:  # every loss would exceed it
            raise ValueError(
                f"train.diverge_factor must be 0 (off) or above 1, got {self.diverge_factor}"
            )


@dataclass
class DataConfig:
    path: str = option(
        "",
        "a .txt, .jsonl or .parquet file, a folder or glob of them, or a saved Hugging Face "
        "dataset ('': Python's own docs, embedded in every CPython)",
    )
    field: str = option("text", "the JSON field or table column that holds the text")
    tokenizer: str = option("char", "char, bpe (trained on the corpus), or a tokenizer file's path")
    vocab_size: int = option(
        512, "vocabulary size when training a BPE tokenizer", range="[257, inf)"
    )
    val_fraction: float = option(
        0.1, "the last fraction of the corpus held out for validation", range="(0, 1)"
    )

    def __post_init__(self) -> None:
        check_fields(self, "data")


@dataclass
class RunConfig:
    model: GPTConfig | LSTMConfig = field(default_factory=GPTConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    data: DataConfig = field(default_factory=DataConfig)

    SECTIONS = ("model", "train", "data")

    @property
    def family(self) -> str:
        """The model family whose config `model` is ("gpt", "lstm", ...)."""
        return next(f.name for f in FAMILIES.values() if type(self.model) is f.config_class)

    def to_dict(self) -> dict:
        return {name: asdict(getattr(self, name)) for name in self.SECTIONS}

    def validate(self) -> None:
        """Re-check every section after fields were changed in place (raises ValueError)."""
        for name in self.SECTIONS:
            getattr(self, name).__post_init__()

    @classmethod
    def from_dict(cls, d: dict) -> "RunConfig":
        """From `to_dict()`, or a checkpoint's config.json (its "family" picks the model)."""
        return cls(
            model=FAMILIES[d.get("family", "gpt")].config_class.from_dict(d["model"]),
            train=_from_dict(TrainConfig, d.get("train", {})),
            data=_from_dict(DataConfig, d.get("data", {})),
        )


def _from_dict(cls, d: dict):
    known = {f.name for f in fields(cls)}
    return cls(**{k: v for k, v in d.items() if k in known})
