"""Nothing lost, nothing half-written, never a traceback (docs/reliability.md).

1. A table of bad inputs over every verb, run in-process through `glassformer.cli.main`:
   each ends with exit status 2, one line on stderr, no traceback, and nothing written (the
   fixture files, the checkpoint folders and the working folder are byte-for-byte unchanged).
2. Checkpoint folders killed (SIGKILL) at random points of training load, agree on their
   step, and resume to exactly the losses and weights of an uninterrupted run.
3. Divergence, two runs on one folder, crafted trainer states.
"""

import contextlib
import json
import math
import multiprocessing
import os
import random
import shutil
import signal
import struct
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from glassformer import checkpoint
from glassformer.checkpoint.manifest import MANIFEST, STAGING, Snapshot, describe_files
from glassformer.cli import main
from glassformer.core.weights import stored_weights
from glassformer.models.registry import build
from glassformer.tokenizers import CharTokenizer

TEXT = "".join(
    f"{w} the quick brown fox jumps over the lazy dog, said {n}.\n"
    for n, w in enumerate(["First", "Second", "Third", "Fourth"] * 60)
)
GPT = {"vocab_size": 0, "block_size": 16, "n_layer": 1, "n_head": 2, "n_embd": 16}

# -- the fixture world: one folder holding every kind of path a case names ------------------


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> dict[str, str]:
    """Paths by name: a good checkpoint, a corpus, special files, and damaged checkpoints."""
    base = tmp_path_factory.mktemp("robust")
    tok = CharTokenizer.train(TEXT)
    torch.manual_seed(0)
    model = build("gpt", {**GPT, "vocab_size": tok.vocab_size})
    ckpt = base / "ckpt"
    checkpoint.save(ckpt, model, tok, meta={"data": {"path": str(base / "secret.txt")}})
    p = {
        "ckpt": ckpt,
        "corpus": base / "corpus.txt",
        "tok": base / "tok.model",
        "fifo": base / "fifo",
        "file": base / "file.txt",
        "emptydir": base / "emptydir",
        "dangling": base / "dangling",
        "binary": base / "binary.txt",
        "empty": base / "empty.txt",
        "latin1": base / "latin1.txt",
        "secret": base / "secret.txt",
        "badjson": base / "bad.json",
        "cwd": base / "cwd",
        "missing": base / "missing",
    }
    p["corpus"].write_text(TEXT)
    tok.save(p["tok"])
    os.mkfifo(p["fifo"])
    p["file"].write_text("hello")
    p["emptydir"].mkdir()
    p["dangling"].symlink_to(base / "nowhere")
    p["binary"].write_bytes(b"abc\x00def" * 10)
    p["empty"].write_text("")
    p["latin1"].write_bytes("café au lait, naïve\n".encode("latin-1") * 10)
    p["secret"].write_text("the secret the checkpoint must not make us read\n")
    p["badjson"].write_text("{not json")
    p["cwd"].mkdir()
    for name, damage in DAMAGES.items():
        folder = base / "bad" / name
        shutil.copytree(ckpt, folder)
        damage(folder, model)
        p[f"bad:{name}"] = folder
    return {k: str(v) for k, v in p.items()}


def _reseal(folder: Path) -> None:
    """Rewrite the manifest after a damage, so the damaged content itself is what is read."""
    (folder / MANIFEST).write_text(json.dumps(describe_files(folder, None)))


def _config(**changes):
    def damage(folder: Path, model) -> None:
        meta = json.loads((folder / "config.json").read_text())
        for key, value in changes.items():
            section, _, field = key.partition(".")
            if field:
                meta[section][field] = value
            else:
                meta[section] = value
        (folder / "config.json").write_text(json.dumps(meta))
        _reseal(folder)

    return damage


def _file(name: str, data: bytes | None, reseal: bool = True):
    def damage(folder: Path, model) -> None:
        if data is None:
            (folder / name).unlink()
        else:
            (folder / name).write_bytes(data)
        if reseal:
            _reseal(folder)

    return damage


def _special(name: str, kind: str):
    def damage(folder: Path, model) -> None:
        (folder / name).unlink()
        if kind == "fifo":
            os.mkfifo(folder / name)
        else:
            (folder / name).mkdir()
        _reseal(folder)

    return damage


def _weights(change):
    def damage(folder: Path, model) -> None:
        tensors = {k: v.clone() for k, v in stored_weights(model).items()}
        change(tensors)
        save_file(tensors, str(folder / "model.safetensors"))
        _reseal(folder)

    return damage


def _relabel_as_i32(folder: Path, model) -> None:
    """Rewrite the safetensors header so every F32 tensor claims to be I32 (same bytes)."""
    data = (folder / "model.safetensors").read_bytes()
    n = struct.unpack("<Q", data[:8])[0]
    header = data[8 : 8 + n].decode().replace('"F32"', '"I32"').encode()
    (folder / "model.safetensors").write_bytes(
        struct.pack("<Q", len(header)) + header + data[8 + n :]
    )
    _reseal(folder)


def _truncate(folder: Path, model) -> None:
    data = (folder / "model.safetensors").read_bytes()
    (folder / "model.safetensors").write_bytes(data[: len(data) // 2])
    _reseal(folder)


def _deep(folder: Path, model) -> None:
    (folder / "config.json").write_text("[" * 100_000 + "]" * 100_000)
    _reseal(folder)


def _unsealed(folder: Path, model) -> None:
    """Weights of another model written after the save, manifest left as it was."""
    torch.manual_seed(1)
    other = build("gpt", model.config.to_dict())
    save_file(stored_weights(other), str(folder / "model.safetensors"))


def _staged_garbage(folder: Path, model) -> None:
    """A committed save whose staged weights are damaged (a disk error, not a kill)."""
    (folder / STAGING).mkdir()
    shutil.copy(folder / "model.safetensors", folder / STAGING / "model.safetensors")
    manifest = describe_files(folder / STAGING, 2)
    (folder / STAGING / "model.safetensors").write_bytes(b"garbage")
    (folder / STAGING / MANIFEST).write_text(json.dumps(manifest))


DAMAGES = {
    "config-null": _file("config.json", b"null"),
    "config-list": _file("config.json", b"[1, 2, 3]"),
    "config-string": _file("config.json", b'"gpt"'),
    "config-number": _file("config.json", b"42"),
    "config-not-json": _file("config.json", b"{not json"),
    "config-empty": _file("config.json", b""),
    "config-not-utf8": _file("config.json", b"\xff\xfe{}"),
    "config-deep": _deep,
    "config-missing": _file("config.json", None),
    "format-99": _config(format_version=99),
    "format-text": _config(format_version="1"),
    "format-true": _config(format_version=True),
    "format-missing": _config(format_version=None),
    "family-bogus": _config(family="transformerxl"),
    "family-list": _config(family=["gpt"]),
    "model-null": _config(model=None),
    "model-list": _config(model=[1, 2]),
    "model-text": _config(model="gpt"),
    "n_layer-2.5": _config(**{"model.n_layer": 2.5}),
    "n_layer-text": _config(**{"model.n_layer": "4"}),
    "n_layer-negative": _config(**{"model.n_layer": -1}),
    "n_layer-true": _config(**{"model.n_layer": True}),
    "n_layer-huge": _config(**{"model.n_layer": 10**30}),
    "n_head-0": _config(**{"model.n_head": 0}),
    "n_head-null": _config(**{"model.n_head": None}),
    "n_embd-odd": _config(**{"model.n_embd": 17}),
    "norm_eps-tiny": _config(**{"model.norm_eps": "tiny"}),
    "norm_eps-nan": _config(**{"model.norm_eps": math.nan}),
    "dropout-inf": _config(**{"model.dropout": math.inf}),
    "dropout-1.5": _config(**{"model.dropout": 1.5}),
    "mlp_ratio-nan": _config(**{"model.mlp_ratio": math.nan}),
    "vocab-wrong": _config(**{"model.vocab_size": 7}),
    "block-wrong": _config(**{"model.block_size": 99}),
    "width-wrong": _config(**{"model.n_embd": 32}),
    "unknown-field": _config(**{"model.n_wings": 2}),
    "pos_emb-bogus": _config(**{"model.pos_emb": "spiral"}),
    "activation-list": _config(**{"model.activation": ["gelu"]}),
    "bias-text": _config(**{"model.bias": "yes"}),
    "train-list": _config(train=[1]),
    "data-text": _config(data="corpus.txt"),
    "results-list": _config(results=[0.5]),
    "hf-model-type": _config(model_type="bert"),
    "weights-missing": _file("model.safetensors", None),
    "weights-empty": _file("model.safetensors", b""),
    "weights-garbage": _file("model.safetensors", b"\x08\x00\x00\x00\x00\x00\x00\x00{garbage"),
    "weights-huge-header": _file("model.safetensors", struct.pack("<Q", 2**60) + b"{}"),
    "weights-truncated": _truncate,
    "weights-as-i32": _relabel_as_i32,
    "weights-nan": _weights(lambda t: t["tok_emb.weight"].fill_(math.nan)),
    "weights-inf": _weights(lambda t: t[sorted(t)[-1]].fill_(math.inf)),
    "weights-one-missing": _weights(lambda t: t.pop(sorted(t)[0])),
    "weights-one-extra": _weights(lambda t: t.update(extra=torch.zeros(3))),
    "weights-misshapen": _weights(lambda t: t.update({sorted(t)[0]: torch.zeros(3)})),
    "weights-float64": _weights(lambda t: t.update({k: v.double() for k, v in t.items()}) or None),
    "weights-fifo": _special("model.safetensors", "fifo"),
    "weights-dir": _special("model.safetensors", "dir"),
    "config-fifo": _special("config.json", "fifo"),
    "config-dir": _special("config.json", "dir"),
    "tokenizer-missing": _file("tokenizer.model", None),
    "tokenizer-garbage": _file("tokenizer.model", b"\x00\x01garbage"),
    "tokenizer-wrong-kind": _file("tokenizer.model", b"glassformer-tokenizer zzz v1\n"),
    "tokenizer-fifo": _special("tokenizer.model", "fifo"),
    "manifest-unsealed": _unsealed,
    "manifest-garbage": _file(MANIFEST, b"{not json", reseal=False),
    "manifest-list": _file(MANIFEST, b"[]", reseal=False),
    "manifest-names-missing": _file("README.md", None, reseal=False),
    "staged-garbage": _staged_garbage,
}
# float64 weights are fine to load into an fp32 model (a cast); every other damage is refused
LOADABLE_DAMAGES = {"weights-float64", "manifest-names-missing"}

# -- the cases -------------------------------------------------------------------------------

GEN_OPTIONS = [
    ["--max-new-tokens", "-1"],
    ["--max-new-tokens", "x"],
    ["--max-new-tokens", "1.5"],
    ["--temperature", "nan"],
    ["--temperature", "inf"],
    ["--temperature", "-1"],
    ["--temperature", "x"],
    ["--top-k", "-1"],
    ["--top-k", "1.5"],
    ["--top-p", "0"],
    ["--top-p", "1.5"],
    ["--top-p", "nan"],
    ["--min-p", "-0.1"],
    ["--min-p", "2"],
    ["--min-p", "nan"],
    ["--repetition-penalty", "0"],
    ["--repetition-penalty", "-1"],
    ["--repetition-penalty", "nan"],
    ["--repetition-penalty", "inf"],
    ["--num-beams", "0"],
    ["--num-beams", "-3"],
    ["--strategy", "beam", "--length-penalty", "nan"],
    ["--strategy", "contrastive", "--penalty-alpha", "-1"],
    ["--strategy", "contrastive", "--penalty-alpha", "nan"],
    ["--seed", str(2**64)],
    ["--seed", "-1"],
    ["--seed", "x"],
    ["--strategy", "telepathy"],
    ["--decode-dtype", "float8"],
    ["--device", "bogus"],
    ["--device", "cuda"],
    ["--device", "mps"],
    ["--device", "cuda:7"],
    ["--device", ""],
    ["--no-such-flag"],
]
MODEL_PATHS = ["missing", "file", "fifo", "/dev/zero", "emptydir", "dangling", "binary"]
BAD_OUTPUT_FILES = ["fifo", "/dev/null", "emptydir/x/y", "file/x", "dangling", "/proc/self/x/y"]
BAD_OUTPUT_DIRS = ["fifo", "/dev/null", "file", "file/x", "dangling", "binary"]
BAD_CORPORA = ["missing", "fifo", "/dev/zero", "emptydir", "empty", "binary", "latin1", "dangling"]
TRAIN = ["train", "--preset", "tiny", "--data", "{corpus}", "--quiet"]
TRAIN_BAD_VALUES = [
    ("train.lr", ["nan", "inf", "-1", "0", "1e30x"]),
    ("train.min_lr", ["nan", "inf", "-1"]),
    ("train.warmup_steps", ["-5", "1.5"]),
    ("train.decay_frac", ["-1", "nan", "5"]),
    ("train.grad_clip", ["-1", "nan", "inf"]),
    ("train.weight_decay", ["-1", "nan"]),
    ("train.muon_lr", ["-1", "nan"]),
    ("train.muon_momentum", ["5", "-0.1", "nan"]),
    ("train.beta1", ["2", "-0.5", "1", "nan"]),
    ("train.beta2", ["1.5", "nan"]),
    ("train.batch_size", ["0", "-1", "x"]),
    ("train.grad_accum", ["0"]),
    ("train.max_steps", ["0", "-2"]),
    ("train.time_budget", ["-1", "nan", "inf"]),
    ("train.eval_interval", ["0"]),
    ("train.eval_iters", ["0"]),
    ("train.seed", [str(2**64), "-1", "x"]),
    ("train.sample_tokens", ["-1"]),
    ("train.schedule", ["linear"]),
    ("train.optimizer", ["sgd"]),
    ("train.device", ["bogus", "cuda", "mps"]),
    ("train.precision", ["fp8"]),
    ("train.compile", ["maybe"]),
    ("model.n_head", ["0", "-2", "3"]),
    ("model.n_layer", ["0", "-1", "2.5"]),
    ("model.n_embd", ["0"]),
    ("model.block_size", ["0"]),
    ("model.mlp_ratio", ["nan", "0", "-1", "inf"]),
    ("model.mlp_hidden", ["-1"]),
    ("model.dropout", ["1.5", "-0.1", "nan"]),
    ("model.norm_eps", ["nan", "0", "-1", "tiny"]),
    ("model.logit_softcap", ["nan", "-1", "inf"]),
    ("model.rope_theta", ["nan", "0", "-1"]),
    ("model.n_kv_head", ["-1", "3"]),
    ("model.pos_emb", ["spiral"]),
    ("model.norm", ["batchnorm"]),
    ("model.activation", ["tanh"]),
    ("model.bias", ["perhaps"]),
    ("data.val_fraction", ["0", "1", "nan", "-0.5"]),
    ("data.vocab_size", ["10", "-1"]),
]


def _cases() -> list[tuple[str, list[str]]]:
    cases: list[tuple[str, list[str]]] = []

    def add(name: str, argv: list[str]) -> None:
        cases.append((name, argv))

    # usage errors of every verb
    add("no-verb", [])
    add("unknown-verb", ["fly"])
    for verb in ["train", "generate", "chat", "data", "embed", "tokenize", "inspect", "tour",
                 "experiment", "tokenizer"]:  # fmt: skip
        add(f"{verb}-unknown-flag", [verb, "--no-such-flag", "1"])
    add("tokenizer-no-verb", ["tokenizer"])
    add("tokenizer-train-no-args", ["tokenizer", "train"])
    add("inspect-no-view", ["inspect"])
    add("inspect-bad-view", ["inspect", "x-ray"])
    add("data-no-name", ["data"])
    add("data-unknown", ["data", "wikipedia"])
    add("embed-no-text", ["embed"])
    add("tokenize-no-text", ["tokenize"])
    add("experiment-no-name", ["experiment"])

    # generate and chat: bad options, bad model folders, damaged checkpoints
    for verb in ["generate", "chat"]:
        prompt = ["--prompt", "the fox"] if verb == "generate" else []
        for opts in GEN_OPTIONS:
            add(f"{verb}{'='.join(opts)}", [verb, "--model", "{ckpt}", *prompt, *opts])
        for path in MODEL_PATHS:
            add(f"{verb}-model-{path}", [verb, "--model", _path(path), *prompt])
        add(f"{verb}-no-model", [verb, *prompt])
        for damage in DAMAGES:
            if damage not in LOADABLE_DAMAGES:
                add(f"{verb}-{damage}", [verb, "--model", "{bad:" + damage + "}", *prompt])
    add("generate-unknown-char", ["generate", "--model", "{ckpt}", "--prompt", "ZQX~"])

    # inspect: views, options, outputs, damaged checkpoints
    views = ["attention", "logit-lens", "next-token", "embeddings", "neurons"]
    for view in views:
        add(f"inspect-{view}-no-model", ["inspect", view, "--text", "the fox"])
        for path in ["missing", "file", "fifo", "/dev/zero", "emptydir"]:
            add(f"inspect-{view}-model-{path}", ["inspect", view, "--model", _path(path),
                                                 "--text", "the fox"])  # fmt: skip
    for view in ["attention", "logit-lens", "next-token"]:
        add(f"inspect-{view}-no-text", ["inspect", view, "--model", "{ckpt}"])
    add("inspect-neurons-no-text", ["inspect", "neurons", "--model", "{ckpt}"])
    for path in ["fifo", "/dev/zero", "missing", "emptydir"]:
        add(f"inspect-neurons-data-{path}",
            ["inspect", "neurons", "--model", "{ckpt}", "--data", _path(path)])  # fmt: skip
    add("inspect-data-not-neurons", ["inspect", "attention", "--model", "{ckpt}", "--text", "a",
                                     "--data", "{corpus}"])  # fmt: skip
    inspect_opts = [
        ("attention", ["--layer", "5"]),
        ("attention", ["--layer", "-3"]),
        ("attention", ["--head", "9"]),
        ("attention", ["--head", "-5"]),
        ("attention", ["--layer", "x"]),
        ("neurons", ["--neuron", "99999"]),
        ("neurons", ["--neuron", "-99999"]),
        ("neurons", ["--layer", "3"]),
        ("logit-lens", ["--top", "0"]),
        ("next-token", ["--top", "-1"]),
        ("next-token", ["--temperature", "0"]),
        ("next-token", ["--temperature", "nan"]),
        ("next-token", ["--top-k", "-1"]),
        ("next-token", ["--top-p", "0"]),
        ("next-token", ["--top-p", "2"]),
        ("next-token", ["--top-p", "nan"]),
        ("attention", ["--device", "bogus"]),
        ("attention", ["--device", "cuda"]),
        ("attention", ["--html", "--png"]),
        ("tokens", ["--sentences"]),
    ]
    for view, opts in inspect_opts:
        add(f"inspect-{view}{'='.join(opts)}",
            ["inspect", view, "--model", "{ckpt}", "--text", "the fox", *opts])  # fmt: skip
    for out in [*BAD_OUTPUT_FILES, "ckpt/config.json", "ckpt/model.safetensors"]:
        add(f"inspect-out-{out}", ["inspect", "attention", "--model", "{ckpt}", "--text", "the",
                                   "--out", _path(out)])  # fmt: skip
    for damage in DAMAGES:
        if damage not in LOADABLE_DAMAGES:
            bad = "{bad:" + damage + "}"
            add(f"inspect-{damage}", ["inspect", "next-token", "--model", bad, "--text", "the"])
    for path in ["missing", "fifo", "/dev/zero", "binary", "emptydir"]:
        add(f"inspect-tokens-{path}", ["inspect", "tokens", "--model", _path(path),
                                       "--text", "a"])  # fmt: skip
    for path in ["missing", "fifo", "file", "emptydir", "badjson"]:
        add(f"inspect-curves-{path}", ["inspect", "curves", "--model", _path(path)])

    # tokenize and tokenizer train
    for path in ["missing", "fifo", "/dev/zero", "binary", "latin1", "empty", "emptydir",
                 "badjson", "dangling", "bad:tokenizer-garbage"]:  # fmt: skip
        add(f"tokenize-tokenizer-{path}", ["tokenize", "hello", "--tokenizer", _path(path)])
    tt = ["tokenizer", "train", "--kind", "char"]
    for path in BAD_CORPORA:
        add(f"tokenizer-train-data-{path}", [*tt, "--data", _path(path), "--out", "{cwd}/t"])
    for out in [*BAD_OUTPUT_FILES, "corpus"]:
        add(f"tokenizer-train-out-{out}", [*tt, "--data", "{corpus}", "--out", _path(out)])
    for size in ["0", "-1", "100", "x"]:
        argv = ["tokenizer", "train", "--data", "{corpus}", "--out", "{cwd}/t"]
        add(f"tokenizer-train-vocab-{size}", [*argv, "--vocab-size", size])
    add("tokenizer-train-kind", [*tt[:2], "--kind", "wordpiece", "--data", "{corpus}",
                                 "--out", "{cwd}/t"])  # fmt: skip

    # data
    for out in BAD_OUTPUT_DIRS:
        add(f"data-dir-{out}", ["data", "shakespeare", "--dir", _path(out)])
    for url in [
        "file:///dev/zero",
        "file:///no/such/file",
        "not a url",
        "ftp://",
        "http://127.0.0.1:9/x",
    ]:
        add(f"data-url-{url}", ["data", "shakespeare", "--dir", "{cwd}/d", "--url", url])

    # embed
    add("embed-empty-text", ["embed", ""])
    add("embed-blank-text", ["embed", "a", "   "])
    for path in ["missing", "file", "fifo", "emptydir", "ckpt", "dangling"]:
        add(f"embed-model-{path}", ["embed", "a cat", "--model", _path(path)])

    # train: flags, corpora, outputs, every config field out of its range, resume
    for flags in [["--max-steps", "0"], ["--max-steps", "-3"], ["--max-steps", "many"],
                  ["--time-budget", "-1"], ["--time-budget", "x"], ["--stop-after", "0"],
                  ["--seed", str(2**64)], ["--seed", "-1"], ["--seed", "x"],
                  ["--vocab-size", "0"], ["--preset", "huge"], ["--task", "poetry"]]:  # fmt: skip
        add(f"train{'='.join(flags)}", [*TRAIN, "--out", "{cwd}/r", *flags])
    for path in BAD_CORPORA:
        add(f"train-data-{path}", ["train", "--preset", "tiny", "--data", _path(path),
                                   "--out", "{cwd}/r"])  # fmt: skip
    for path in ["missing", "fifo", "/dev/zero", "binary", "emptydir", "badjson"]:
        add(f"train-tokenizer-{path}", [*TRAIN, "--out", "{cwd}/r", "--tokenizer",
                                        _path(path)])  # fmt: skip
    for out in [*BAD_OUTPUT_DIRS, "corpus", "/proc/self/x"]:
        add(f"train-out-{out}", [*TRAIN, "--out", _path(out)])
    for field, values in TRAIN_BAD_VALUES:
        for value in values:
            add(f"train-{field}={value}", [*TRAIN, "--out", "{cwd}/r", f"--{field}", value])
    for path in ["missing", "emptydir", "file"]:
        add(f"train-resume-{path}", [*TRAIN, "--out", _path(path), "--resume"])
    add("train-resume-no-state", [*TRAIN, "--out", "{ckpt}", "--resume"])
    for damage in DAMAGES:
        if damage not in LOADABLE_DAMAGES | {"staged-garbage"}:
            add(f"train-resume-{damage}", [*TRAIN, "--out", "{bad:" + damage + "}", "--resume"])
    for task in ["mlm", "sentiment", "dates"]:
        add(f"train-task-{task}-resume-missing",
            ["train", "--task", task, "--out", "{missing}", "--resume"])  # fmt: skip
        add(f"train-task-{task}-out-fifo", ["train", "--task", task, "--out", "{fifo}"])

    # tour and experiment
    for flags in [["--budget", "-1"], ["--budget", "x"], ["--steps", "0"], ["--steps", "-1"],
                  ["--out", "{fifo}"], ["--out", "/dev/null"], ["--out", "{file}"]]:  # fmt: skip
        add(f"tour{'='.join(flags)}", ["tour", "--yes", *flags])
    for flags in [["rockets"], ["norm", "--budget", "-1"], ["norm", "--steps", "0"],
                  ["norm", "--seeds", "0"], ["norm", "--seeds", "x"],
                  ["norm", "--budget", "5", "--steps", "5"], ["norm", "--data", "{missing}"],
                  ["norm", "--data", "{fifo}"], ["norm", "--data", "/dev/zero"],
                  ["norm", "--out", "{fifo}"], ["norm", "--out", "/dev/null"],
                  ["norm", "--out", "{file}"]]:  # fmt: skip
        add(f"experiment-{'='.join(flags)}", ["experiment", *flags])
    return cases


def _path(name: str) -> str:
    """`fifo` -> "{fifo}", `file/x` -> "{file}/x", absolute paths as they are."""
    if name.startswith("/"):
        return name
    head, _, tail = name.partition("/")
    return "{" + head + "}" + (f"/{tail}" if tail else "")


CASES = _cases()


def _fill(arg: str, world: dict[str, str]) -> str:
    for key, value in world.items():
        arg = arg.replace("{" + key + "}", value)
    assert "{" not in arg or arg.startswith("{not"), arg
    return arg


def _tree(root: Path) -> dict[str, tuple]:
    """Every entry under `root`: its kind, and for a file its size and modification time."""
    seen = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            st = path.lstat()
            is_dir = name in dirnames
            seen[str(path.relative_to(root))] = (
                (st.st_mode,) if is_dir else (st.st_mode, st.st_size, st.st_mtime_ns)
            )
    return seen


@contextlib.contextmanager
def _watchdog(seconds: int):
    """Raise in the main thread (even inside a blocking open) if the body takes too long."""

    def hung(signum, frame):
        raise TimeoutError(f"hung for {seconds} s")

    old = signal.signal(signal.SIGALRM, hung)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def test_there_are_at_least_300_cases():
    names = [name for name, _ in CASES]
    assert len(names) == len(set(names))
    assert len(CASES) >= 300, len(CASES)


@pytest.mark.parametrize("argv", [argv for _, argv in CASES], ids=[name for name, _ in CASES])
def test_bad_input_is_one_sentence_exit_2_and_writes_nothing(argv, world, capsys, monkeypatch):
    base = Path(world["ckpt"]).parent
    monkeypatch.chdir(world["cwd"])
    monkeypatch.setattr("sys.stdin", open(os.devnull))  # chat reads no prompt
    before = _tree(base)
    with _watchdog(60):  # a FIFO opened for reading would block forever: fail instead
        try:
            code = main([_fill(a, world) for a in argv])
        except SystemExit as e:  # argparse's usage errors
            code = e.code
    out, err = capsys.readouterr()
    assert code == 2, f"exit {code}; stderr: {err[-500:]}"
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("glassformer"), err
    assert "Traceback" not in err and "the secret" not in out + err
    assert _tree(base) == before  # nothing written, nothing removed, fixtures untouched


# -- killed, diverged, shared and crafted runs ------------------------------------------------

RUN = ["--train.eval_interval", "1", "--train.eval_iters", "1", "--train.sample_tokens", "0",
       "--train.precision", "fp32", "--quiet"]  # fmt: skip
STEPS = 30


def _train_argv(out: Path, corpus: str, resume: bool) -> list[str]:
    if resume:  # the corpus named again: a checkpoint never picks a file to read
        return ["train", "--out", str(out), "--resume", "--data", corpus, "--quiet"]
    return ["train", "--preset", "tiny", "--data", corpus, "--out", str(out),
            "--max-steps", str(STEPS), *RUN]  # fmt: skip


def _child(argv: list[str]) -> None:
    """A forked training process: quiet, and its exit status is main's."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    code = 1
    try:
        code = main(argv)
    finally:
        os._exit(code)


@pytest.fixture(scope="module")
def forks():
    """Processes forked from a server that imported torch and glassformer once (~0 s start)."""
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["torch", "glassformer.cli", "glassformer.train.lm"])
    return ctx


def _losses(folder: Path) -> dict[int, float]:
    records = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]
    return {r["step"]: r["train_loss"] for r in records}


def _consistent_step(folder: Path) -> int | None:
    """The step of the folder's checkpoint, checked: it loads, and manifest, weights header
    and trainer state name the same step. None if no save has completed yet."""
    if not (folder / MANIFEST).exists() and not (folder / STAGING / MANIFEST).exists():
        return None
    checkpoint.load(folder)  # raises on any disagreement
    state = checkpoint.load_trainer_state(folder)  # checks manifest and weights header
    return state["step"]


def _records(folder: Path) -> int:
    """Complete lines of metrics.jsonl (one per step done): the run's progress."""
    try:
        return (folder / "metrics.jsonl").read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0


def _kill_at_random(p, folder: Path, rng: random.Random) -> bool:
    """Let child `p` run to a random moment and SIGKILL it there; False if it finished first.

    One kill in five lands anywhere in the first second (setup, the first step); the others
    wait for the run to finish a step of its own (so every chain moves on, however slow the
    machine), then a random part of the next step, evaluation and save.
    """
    if rng.random() < 0.2:
        p.join(timeout=rng.uniform(0.0, 1.0))
    else:
        start, deadline = _records(folder), time.monotonic() + 120
        while _records(folder) == start and p.exitcode is None and time.monotonic() < deadline:
            time.sleep(0.01)
        p.join(timeout=rng.uniform(0.0, 0.6))
    if p.exitcode is not None:
        return False
    os.kill(p.pid, signal.SIGKILL)
    p.join()
    return True


@pytest.mark.slow
def test_killed_runs_leave_loadable_folders_and_resume_exactly(forks, world, tmp_path):
    """SIGKILL at random moments (during setup, steps, evaluations and saves), >= 30 times.

    Every killed folder loads with its parts at one step; each chain of killed and resumed
    runs ends with the very weights and losses of the uninterrupted run.
    """
    rng = random.Random(16)
    reference = tmp_path / "reference"
    p = forks.Process(target=_child, args=(_train_argv(reference, world["corpus"], False),))
    p.start()
    p.join()
    assert p.exitcode == 0
    want_losses = _losses(reference)
    want_weights = (reference / "model.safetensors").read_bytes()
    assert sorted(want_losses) == list(range(1, STEPS + 1))

    kills, resumes, chains, staged, committed, steps_seen = 0, 0, 0, 0, 0, set()
    while kills < 30:
        chains += 1
        folder = tmp_path / f"chain{chains}"
        while (step := _consistent_step(folder)) != STEPS:  # a kill may follow the last save
            resumes += step is not None
            argv = _train_argv(folder, world["corpus"], resume=step is not None)
            p = forks.Process(target=_child, args=(argv,))
            p.start()
            if not _kill_at_random(p, folder, rng):
                assert p.exitcode == 0, f"a resumed run failed with status {p.exitcode}"
                break
            kills += 1
            staged += (folder / STAGING).is_dir()  # killed inside a save
            committed += (folder / STAGING / MANIFEST).is_file()  # ... after its commit
            steps_seen.add(_consistent_step(folder))  # loads, one step throughout
        # the chain finished: same weights, same losses at every step it recorded
        weights = Snapshot(folder, ("model.safetensors",)).read("model.safetensors")
        assert weights == want_weights
        got = _losses(folder)
        assert got == {s: want_losses[s] for s in got}
        assert sorted(got) == list(range(1, STEPS + 1))  # no step's line lost to a kill
        if p.exitcode == 0:  # a run that ended by itself leaves nothing of its own behind
            assert not (folder / STAGING).exists() and not (folder / ".lock").exists()
            assert not [f for f in folder.iterdir() if f.name.endswith(".tmp")]
    seen = sorted(steps_seen, key=str)
    print(
        f"{kills} kills ({staged} inside a save, {committed} of them after its commit), "
        f"{resumes} resumes, {chains} chains, all exact; steps at kills: {seen}"
    )
    assert len(steps_seen) > 5  # the kills landed at many different points


def test_divergence_stops_in_one_sentence_and_keeps_the_last_checkpoint(world, tmp_path, capsys):
    out = tmp_path / "run"
    base = ["train", "--preset", "tiny", "--data", world["corpus"], "--out", str(out), *RUN]
    assert main([*base, "--max-steps", "6", "--stop-after", "2"]) == 0
    kept = {f.name: f.read_bytes() for f in out.iterdir() if f.name != "metrics.jsonl"}
    capsys.readouterr()
    resumed = ["train", "--out", str(out), "--resume", "--data", world["corpus"], "--quiet",
               "--train.lr", "1e30"]  # fmt: skip
    assert main(resumed) == 2
    err = capsys.readouterr().err
    last = err.strip().splitlines()[-1]  # after the "training a ... GPT" line
    assert (
        last.startswith("glassformer: error: training diverged at step 3")
        and "Traceback" not in err
    )
    assert "learning rate 1e+30" in last and "checkpoint of step 2" in last
    assert {f.name: f.read_bytes() for f in out.iterdir() if f.name != "metrics.jsonl"} == kept
    fresh = tmp_path / "fresh"
    code = main(["train", "--preset", "tiny", "--data", world["corpus"], "--out", str(fresh),
                 "--train.lr", "1e30", "--stop-after", "1", "--quiet"])  # fmt: skip
    assert code != 0
    assert "no checkpoint was written" in capsys.readouterr().err
    assert not (fresh / "model.safetensors").exists()


def test_a_second_run_on_the_same_folder_is_refused(forks, world, tmp_path, capsys):
    out = tmp_path / "shared"
    argv = ["train", "--preset", "tiny", "--data", world["corpus"], "--out", str(out),
            "--max-steps", "100000", *RUN]  # fmt: skip
    first = forks.Process(target=_child, args=(argv,))
    first.start()
    try:
        deadline = time.monotonic() + 60
        while not (out / MANIFEST).exists():  # the first run is training
            assert time.monotonic() < deadline and first.exitcode is None
            time.sleep(0.1)
        before = (out / MANIFEST).read_bytes()
        for second in (argv, ["train", "--out", str(out), "--resume", "--quiet"]):
            assert main(second) == 2
            err = capsys.readouterr().err.strip().splitlines()
            assert len(err) == 1 and f"process {first.pid}" in err[0], err
        assert first.exitcode is None  # the first run goes on, its folder its own
        assert json.loads((out / MANIFEST).read_bytes())["step"] >= json.loads(before)["step"]
    finally:
        os.kill(first.pid, signal.SIGKILL)
        first.join()
    resume = ["train", "--out", str(out), "--resume", "--data", world["corpus"], "--quiet"]
    assert main([*resume, "--max-steps", "1"]) == 2
    assert "already finished" in capsys.readouterr().err  # the lock went with the process


def _crafted(state: dict) -> None:
    opt = state["optimizer"]
    first = min(opt["state"])
    return {
        "exp_avg-misshapen": lambda: opt["state"][first].update(exp_avg=torch.zeros(7, 3)),
        "exp_avg-scalar-row": lambda: opt["state"][first].update(exp_avg=torch.zeros(1)),
        "exp_avg_sq-int": lambda: opt["state"][first].update(
            exp_avg_sq=torch.zeros_like(opt["state"][first]["exp_avg_sq"], dtype=torch.int32)
        ),
        "exp_avg-text": lambda: opt["state"][first].update(exp_avg="zeros"),
        "state-unknown-param": lambda: opt["state"].update({999: opt["state"][first]}),
        "state-list": lambda: opt.update(state=[1, 2]),
        "groups-fewer": lambda: opt.update(param_groups=opt["param_groups"][:1]),
        "groups-params-short": lambda: opt["param_groups"][0].update(params=[0]),
        "group-lr-text": lambda: opt["param_groups"][0].update(lr="fast"),
        "group-betas-short": lambda: opt["param_groups"][0].update(betas=(0.9,)),
        "group-lr-nan": lambda: opt["param_groups"][0].update(lr=math.nan),
        "optimizer-missing": lambda: state.pop("optimizer"),
        "optimizer-list": lambda: state.update(optimizer=[]),
        "step-negative": lambda: state.update(step=-5),
        "step-text": lambda: state.update(step="5"),
        "step-float": lambda: state.update(step=2.0),
        "step-missing": lambda: state.pop("step"),
        "elapsed-nan": lambda: state.update(elapsed=math.nan),
        "data_rng-short": lambda: state.update(data_rng=torch.zeros(3, dtype=torch.uint8)),
        "torch_rng-float": lambda: state.update(torch_rng=torch.zeros(5056)),
        "rng-missing": lambda: state.pop("torch_rng"),
    }


def _write_state(folder: Path, state) -> None:
    torch.save(state, folder / "trainer_state.pt")
    step = state.get("step") if isinstance(state, dict) else None
    (folder / MANIFEST).write_text(
        json.dumps(describe_files(folder, step if type(step) is int else None))
    )


def test_crafted_trainer_states_are_refused_before_use(world, tmp_path, capsys):
    """Each part of a trainer state is checked before the optimizer sees it (a misshapen
    optimizer tensor once crashed the process with a segfault)."""
    good = tmp_path / "good"
    base = ["train", "--preset", "tiny", "--data", world["corpus"], "--out", str(good), *RUN]
    assert main([*base, "--max-steps", "6", "--stop-after", "2"]) == 0
    names = list(_crafted(checkpoint.load_trainer_state(good)))
    for name in [*names, "not-a-dict", "pickle-with-code"]:
        folder = tmp_path / name
        shutil.copytree(good, folder)
        state = checkpoint.load_trainer_state(folder)
        if name == "not-a-dict":
            state = [state]
        elif name == "pickle-with-code":
            state = {**state, "payload": _Payload()}
        else:
            _crafted(state)[name]()
        _write_state(folder, state)
        before = _tree(folder)
        capsys.readouterr()
        with _watchdog(60):
            code = main(["train", "--out", str(folder), "--resume", "--data", world["corpus"],
                         "--quiet"])  # fmt: skip
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 2, (name, err)
        assert len(err) == 1 and "Traceback" not in err[0], (name, err)
        assert _tree(folder) == before, name
    assert not (tmp_path / "pwned").exists()


class _Payload:
    """Unpickling this would run code; weights_only=True refuses it instead."""

    def __reduce__(self):
        return (os.system, ("touch pwned",))


# -- issue 26's probe findings -----------------------------------------------------------------


def test_a_batch_that_cannot_fit_in_memory_is_refused_before_any_work(world, tmp_path, capsys):
    """D1: 10**11 sequences per step died in the allocator with a traceback and left the
    output folder behind with an empty metrics.jsonl."""
    out = tmp_path / "huge"
    argv = ["train", "--preset", "tiny", "--data", world["corpus"], "--out", str(out),
            "--train.batch_size", "100000000000", "--quiet"]  # fmt: skip
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "Traceback" not in err[0], err
    assert "100,000,000,000 sequences" in err[0] and "GiB of memory" in err[0], err
    assert "lower --train.batch_size" in err[0]
    assert not out.exists()


def test_a_step_that_runs_out_of_memory_is_one_sentence_and_leaves_nothing(tmp_path):
    """The allocator failing inside a step (a batch whose ids fit but whose activations do
    not) is one sentence, and a new run that failed so leaves no metrics.jsonl."""
    from glassformer.errors import UserError
    from glassformer.train.config import TrainConfig
    from glassformer.train.trainer import Trainer

    def loss(model, batch):
        raise RuntimeError(
            "DefaultCPUAllocator: can't allocate memory: you tried to allocate 8000000 bytes."
        )

    model = torch.nn.Linear(2, 2)
    cfg = TrainConfig(batch_size=2, max_steps=3, device="cpu", precision="fp32")
    trainer = Trainer(model, cfg, lambda n, g: (torch.zeros(n, 2),), loss, tmp_path / "r",
                      progress=False)  # fmt: skip
    with pytest.raises(UserError, match="step 1 ran out of memory .*lower --train.batch_size"):
        trainer.run()
    assert list((tmp_path / "r").iterdir()) == []


def _saved_run(world, out: Path) -> dict[str, bytes]:
    """A tiny char-level run saved at step 2 of 6; returns its files' bytes."""
    base = ["train", "--preset", "tiny", "--data", world["corpus"], "--out", str(out), *RUN]
    assert main([*base, "--max-steps", "6", "--stop-after", "2"]) == 0
    return {f.name: f.read_bytes() for f in out.iterdir()}


@pytest.mark.parametrize(
    "flags",
    [
        ["--tokenizer", "bpe"],
        ["--vocab-size", "300"],
        ["--model.n_layer", "3"],
        ["--model.vocab_size", "5"],
    ],  # fmt: skip
    ids=lambda flags: flags[0],
)
def test_a_resume_that_would_change_the_model_or_tokenizer_is_refused(
    world, tmp_path, capsys, flags
):
    """D2: `--resume --tokenizer bpe` on a char run exited 0, trained on with the char
    tokenizer and wrote data.tokenizer "bpe" into config.json."""
    out = tmp_path / "run"
    before = _saved_run(world, out)
    capsys.readouterr()
    code = main(["train", "--out", str(out), "--resume", "--data", world["corpus"], *RUN, *flags])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "Traceback" not in err[0], err
    assert f"{flags[0]} {flags[1]} differs from the run in {out}" in err[0], err
    assert {f.name: f.read_bytes() for f in out.iterdir()} == before


def test_a_vocab_size_that_contradicts_the_tokenizer_is_refused(world, tmp_path, capsys):
    """D3: `--model.vocab_size 5` was replaced by the tokenizer's size without a word."""
    out = tmp_path / "run"
    argv = ["train", "--preset", "tiny", "--data", world["corpus"], "--out", str(out), *RUN,
            "--model.vocab_size", "5"]  # fmt: skip
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--model.vocab_size 5 contradicts the tokenizer" in err[0], err
    assert not out.exists()
    chars = len(set(TEXT))  # the tokenizer's own size is accepted
    argv[-1] = str(chars)
    assert main([*argv, "--max-steps", "1"]) == 0
    assert json.loads((out / "config.json").read_text())["model"]["vocab_size"] == chars


def test_resume_reads_no_file_the_checkpoint_names_and_quotes_none(
    world, tmp_path, capsys, monkeypatch
):
    """D6: a config.json whose data.path named another file made --resume read that file
    (and its error quoted a character of it)."""
    out = tmp_path / "run"
    _saved_run(world, out)
    meta = json.loads((out / "config.json").read_text())
    meta["data"]["path"] = world["secret"]
    (out / "config.json").write_text(json.dumps(meta))
    step = json.loads((out / MANIFEST).read_text())["step"]
    (out / MANIFEST).write_text(json.dumps(describe_files(out, step)))  # resealed
    before = _tree(out)
    opened = []
    real = Path.read_bytes
    monkeypatch.setattr(Path, "read_bytes", lambda p: opened.append(str(p)) or real(p))
    capsys.readouterr()
    assert main(["train", "--out", str(out), "--resume", *RUN]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "name it with --data to resume" in err[0], err
    assert world["secret"] not in opened and "the secret" not in err[0]
    assert _tree(out) == before
    # a corpus with characters the run's tokenizer lacks: refused without quoting them
    other = tmp_path / "other.txt"
    other.write_text("§§ the quick brown fox ¶¶\n" * 40)
    assert main(["train", "--out", str(out), "--resume", "--data", str(other), *RUN]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not the corpus the run trained on" in err[0], err
    assert "§" not in err[0] and "¶" not in err[0]
    assert _tree(out) == before


@pytest.mark.parametrize("lr", ["10", "1e3"])
def test_an_exploding_loss_stops_the_run_and_saves_nothing(world, tmp_path, capsys, lr):
    """The guard caught only NaN / infinity: lr 10 on the tiny preset went 3.4 -> 285 and
    saved a model as good as random (the probe's lr 1e3: validation loss 7.2e8)."""
    fresh = tmp_path / "fresh"
    argv = ["train", "--preset", "tiny", "--data", world["corpus"], "--out", str(fresh),
            "--quiet", "--train.precision", "fp32", "--train.lr", lr]  # fmt: skip
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("glassformer: error: training diverged at step "), err
    assert "times the training loss's running median" in err, err
    assert f"learning rate {float(lr):.3g}" in err, err
    assert "no checkpoint was written" in err
    assert sorted(f.name for f in fresh.iterdir()) == ["metrics.jsonl"]  # step 1's record
    # resumed from a good checkpoint: stops at once, every file of the folder as it was
    out = tmp_path / "run"
    kept = _saved_run(world, out)
    capsys.readouterr()
    resumed = ["train", "--out", str(out), "--resume", "--data", world["corpus"], *RUN,
               "--train.lr", lr, "--train.warmup_steps", "0"]  # fmt: skip
    assert main(resumed) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "training diverged at step 3: the evaluation's eval_train_loss" in err, err
    assert "checkpoint of step 2" in err, err
    assert {f.name: f.read_bytes() for f in out.iterdir()} == kept


def _synthetic(tmp_path, losses, **cfg):
    """A Trainer whose step losses are `losses` (one parameter, so an update happens)."""
    from glassformer.train.config import TrainConfig
    from glassformer.train.trainer import Trainer

    model = torch.nn.Linear(1, 1, bias=False)
    values = iter(losses)

    def loss(model, batch):
        return model.weight.sum() * 0 + next(values)

    fixed = {"batch_size": 1, "max_steps": len(losses), "eval_interval": 1, "device": "cpu",
             "precision": "fp32", "warmup_steps": 0}  # fmt: skip
    cfg = TrainConfig(**{**fixed, **cfg})
    return Trainer(model, cfg, lambda n, g: (torch.zeros(n, 1),), loss, tmp_path / "r",
                   progress=False, log=lambda msg: None)  # fmt: skip


def test_a_loss_that_keeps_growing_stops_the_run(tmp_path):
    """diverge_evals rising evaluations, to over 1.5x: stopped; a noisy flat loss is not."""
    from glassformer.errors import UserError

    growing = [2.0 * 1.2**i for i in range(20)]  # each step 20% above the last
    with pytest.raises(UserError, match="training diverged at step 6: the mean training loss "
                       "grew at 5 evaluations in a row, from 2 to 4.977"):  # fmt: skip
        _synthetic(tmp_path / "a", growing).run()
    rng = random.Random(0)
    noisy = [2.0 + rng.uniform(-0.3, 0.3) for _ in range(400)]
    assert _synthetic(tmp_path / "b", noisy).run().step == 400  # no false alarm
    assert _synthetic(tmp_path / "c", growing, diverge_evals=0).run().step == 20  # off


def test_skip_nonfinite_skips_a_bad_batch_and_counts_it(tmp_path):
    from glassformer.errors import UserError

    losses = [1.0, 1.0, math.nan, 1.0, math.inf, 1.0]
    with pytest.raises(UserError, match="training diverged at step 3: the training loss became"):
        _synthetic(tmp_path / "a", losses).run()
    trainer = _synthetic(tmp_path / "b", losses, skip_nonfinite=True)
    logged = []
    trainer.log = logged.append
    before = trainer.model.weight.detach().clone()
    result = trainer.run()
    assert result.step == 6 and result.skipped == 2
    assert torch.isfinite(trainer.model.weight).all() and not trainer.model.weight.equal(before)
    assert [m for m in logged if "skipped" in m] == [
        "step 3: skipped, its training loss was nan (--train.skip_nonfinite; 1 skipped so far)",
        "step 5: skipped, its training loss was inf (--train.skip_nonfinite; 2 skipped so far)",
    ]
    records = [json.loads(line) for line in (tmp_path / "b" / "r" / "metrics.jsonl").open()]
    assert [r.get("skipped_steps", 0) for r in records] == [0, 0, 1, 1, 2, 2]


def _child_killed_in_save(argv: list[str], where: str, step: int) -> None:
    """A training process that dies (os._exit, as a SIGKILL would) in the save of `step`:
    `where` = "after" the save completed, or "before" its commit."""
    import glassformer.checkpoint
    import glassformer.checkpoint.write

    real_save, real_commit = glassformer.checkpoint.save, glassformer.checkpoint.write.commit

    def save(out_dir, model, tokenizer, meta=None, trainer_state=None, card=None):
        real_save(out_dir, model, tokenizer, meta, trainer_state, card)
        if where == "after" and trainer_state["step"] == step:
            os._exit(137)

    def commit(staging, at_step):
        if where == "before" and at_step == step:
            os._exit(137)
        return real_commit(staging, at_step)

    glassformer.checkpoint.save, glassformer.checkpoint.write.commit = save, commit
    _child(argv)


@pytest.mark.parametrize("where", ["after", "before"])
def test_a_kill_between_a_save_and_its_metrics_line_loses_no_line(forks, world, tmp_path, where):
    """The metrics line of a saved step is written before the manifest commits the save: a
    kill just after the save kept the checkpoint of step 3 but lost its line (2 of 30 kills
    in issue 26's probe); a kill just before the commit leaves a line past the checkpoint,
    which the resume drops and writes again."""
    out = tmp_path / "run"
    argv = ["train", "--preset", "tiny", "--data", world["corpus"], "--out", str(out),
            "--max-steps", "5", *RUN]  # fmt: skip
    p = forks.Process(target=_child_killed_in_save, args=(argv, where, 3))
    p.start()
    p.join()
    assert p.exitcode == 137
    saved = _consistent_step(out)
    assert saved == (3 if where == "after" else 2)
    steps = [r["step"] for r in map(json.loads, (out / "metrics.jsonl").read_text().splitlines())]
    assert steps == [1, 2, 3]  # the saved step's line is there (and, before the commit, too)
    resume = ["train", "--out", str(out), "--resume", "--data", world["corpus"], *RUN]
    p = forks.Process(target=_child, args=(resume,))
    p.start()
    p.join()
    assert p.exitcode == 0
    steps = [r["step"] for r in map(json.loads, (out / "metrics.jsonl").read_text().splitlines())]
    assert steps == [1, 2, 3, 4, 5]
