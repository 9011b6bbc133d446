"""`glassformer export MODEL --format hf --out OUT`: a folder `transformers` loads.

    glassformer export runs/ft --format hf --out hf/ft
    python -c "from transformers import pipeline; print(pipeline('text-generation', 'hf/ft')('Hi'))"

MODEL is anything `glassformer.load` reads (a checkpoint folder, a Hugging Face folder, a
.gguf file, smollm2); the mapping is interop/export.py.
"""

import argparse
import sys
from pathlib import Path

from glassformer import checkpoint
from glassformer.errors import UserError
from glassformer.interop.export import export_hf
from glassformer.interop.folder import is_hf_folder

FORMATS = ("hf",)


def add_parser(sub) -> None:
    p = sub.add_parser(
        "export",
        help="write a model as a Hugging Face folder (transformers loads it)",
        description="Write MODEL as a Hugging Face folder: config.json, model.safetensors, "
        "tokenizer.json, tokenizer_config.json, generation_config.json and a model card. A "
        "GPT-2-shaped model becomes GPT2LMHeadModel, a Llama-shaped one LlamaForCausalLM.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("model", metavar="MODEL", help="a checkpoint folder, HF folder, .gguf or name")
    p.add_argument("--format", choices=FORMATS, default="hf", help="the folder layout to write")
    p.add_argument("--out", metavar="DIR", required=True, help="the folder to write")
    p.add_argument(
        "--force", action="store_true", help="replace --out if it exists and is not empty"
    )
    p.set_defaults(func=run)


def check_out(out: Path, source: str, force: bool) -> None:
    """Refuse an --out that is a file, the model itself, or a non-empty folder without force."""
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file; pass a folder path")
    if out.exists() and Path(source).exists() and out.resolve() == Path(source).resolve():
        raise UserError(f"--out {out} is the model being exported; pass another folder")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise UserError(
            f"--out {out} exists and is not empty; pass --force to replace it or choose "
            "another folder"
        )


def run(args: argparse.Namespace) -> int:
    out = Path(args.out)
    check_out(out, args.model, args.force)
    model, tokenizer = checkpoint.load(args.model, family="gpt")
    source = Path(args.model)
    ours = source.is_dir() and not is_hf_folder(source)  # a checkpoint: its card's facts
    meta = checkpoint.read_meta(source) if ours else {}
    export_hf(model, tokenizer, out, meta, args.model)
    print(
        f'wrote {out}  (try: python -c "from transformers import pipeline; '
        f"print(pipeline('text-generation', '{out}')('Hello'))\")",
        file=sys.stderr,
    )
    return 0
