"""Reading the training text: a file, a folder of .txt files, or the embedded default.

The embedded default is Python's own documentation (`pydoc_data.topics`, about 465 KB of
English that ships with every CPython), so `glassformer train` needs no download.
"""

from pathlib import Path

from glassformer.errors import UserError


def embedded_corpus() -> str:
    """Python's documentation topics, joined in a fixed order."""
    from pydoc_data.topics import topics

    return "\n\n".join(topics[name] for name in sorted(topics))


def _read_text(path: Path) -> str:
    data = path.read_bytes()
    if b"\x00" in data:
        raise UserError(f"{path} looks like a binary file, not text; pass a UTF-8 .txt file")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise UserError(
            f"{path} is not UTF-8 text (bad byte at offset {e.start}); "
            "convert it to UTF-8 or pass another file"
        ) from None


def read_corpus(path: str) -> str:
    """The text at `path` ('' = embedded default); a folder means all its .txt files, sorted."""
    if not path:
        return embedded_corpus()
    p = Path(path).expanduser()
    if not p.exists():
        raise UserError(f"no such file or folder: {path}; pass --data a .txt file or a folder")
    if p.is_dir():
        files = sorted(f for f in p.rglob("*.txt") if f.is_file())
        if not files:
            raise UserError(f"the folder {path} holds no .txt files; add some or pass a file")
        text = "\n\n".join(_read_text(f) for f in files)
    else:
        text = _read_text(p)
    if not text.strip():
        raise UserError(f"{path} is empty; pass a file with some text in it")
    return text
