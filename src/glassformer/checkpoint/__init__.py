"""The checkpoint folder: one format for every model family, written and read here.

    DIR/config.json         {"format_version": 1, "family": "gpt" | "lstm" | "encoder" |
                             "seq2seq", "model": {...the model config...}, **meta}
                            (meta: a run's "train" / "data" sections, a task's "task" /
                             "results")
    DIR/model.safetensors   the weights (tied tensors stored once)
    DIR/tokenizer.model     the tokenizer (+ tokenizer.vocab, a human-readable dump)
    DIR/README.md           a short model card
    DIR/trainer_state.pt    optimizer, step, RNG states, for resuming (loaded weights_only)
    DIR/manifest.json       each file's size and SHA-256 and the step: written last, checked
                            on every load (manifest.py)

    >>> save("runs/tiny", model, tokenizer, meta={"task": "dates"})   # doctest: +SKIP
    >>> model, tokenizer = load("runs/tiny")                          # doctest: +SKIP

`load` also reads a Hugging Face GPT-2 folder and the task folders of earlier glassformer
versions (their symbols in `vocab.json`). A save is one unit: the files are staged, committed
by the manifest and then moved in, so a kill at any moment leaves the previous save or the
new one, never a mix (docs/reliability.md); `resume` loads the weights and the trainer state
of one save, checked to be of the same step.
"""

from glassformer.checkpoint.read import load, load_trainer_state, read_meta, resume
from glassformer.checkpoint.write import RUN_FILES, save

__all__ = ["RUN_FILES", "load", "load_trainer_state", "read_meta", "resume", "save"]
