"""Reading the training text: files of several kinds, folders and globs of them, a saved
Hugging Face dataset, or the embedded default.

    --data notes.txt             the file's text (any suffix but the two below: UTF-8 text)
    --data chats.jsonl           one JSON object a line; the string in field --data-field
    --data shard.parquet         the string column --data-field (needs pyarrow)
    --data books/                every .txt, .jsonl and .parquet file below it, sorted
    --data 'shards/*.parquet'    the files a glob matches, sorted (quote it for the shell)
    --data saved_dataset/        a `datasets` dataset saved with `save_to_disk` (needs
                                 `pip install datasets`; every split, in sorted order)

Documents (files, lines, rows) are joined with a blank line. A record without text is one
sentence naming the file and line (or row) and the fix. The embedded default is Python's own
documentation (`pydoc_data.topics`, about 465 KB of English that ships with every CPython),
so `glassformer train` needs no download.
"""

import glob
import json
from collections.abc import Iterator
from pathlib import Path

from glassformer.core.checked_paths import check_input_file
from glassformer.errors import UserError

SUFFIXES = (".txt", ".jsonl", ".parquet")  # what a folder contributes


def embedded_corpus() -> str:
    """Python's documentation topics, joined in a fixed order."""
    from pydoc_data.topics import topics

    return "\n\n".join(topics[name] for name in sorted(topics))


def _read_text(path: Path) -> str:
    data = check_input_file(path, "--data").read_bytes()  # a FIFO or a device is never opened
    if b"\x00" in data:
        raise UserError(f"{path} looks like a binary file, not text; pass a UTF-8 .txt file")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise UserError(
            f"{path} is not UTF-8 text (bad byte at offset {e.start}); "
            "convert it to UTF-8 or pass another file"
        ) from None


def _jsonl_records(path: Path, field: str) -> Iterator[str]:
    """The `field` string of each line; blank lines are skipped.

    >>> # {"text": "a"}\\n{"text": "b"}  ->  "a", "b"
    """
    for n, line in enumerate(_read_text(path).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as e:
            raise UserError(
                f"{path} line {n} is not valid JSON ({e.msg}); fix or remove that line"
            ) from None
        text = record.get(field) if isinstance(record, dict) else None
        if not isinstance(text, str):
            raise UserError(
                f"{path} line {n} has no string field {field!r}; pass --data-field the field "
                "that holds the text"
            )
        yield text


def _column_records(columns: list[str], column, where: str, field: str) -> Iterator[str]:
    """The strings of column `field` of a table (parquet, or a `datasets` split).

    `column(field)` gives the column's values, read only once `field` is known to exist.
    """
    if field not in columns:
        raise UserError(
            f"{where} has no column {field!r} (it has {', '.join(columns)}); pass "
            "--data-field the column that holds the text"
        )
    for n, text in enumerate(column(field)):
        if not isinstance(text, str):
            raise UserError(
                f"{where} row {n} has no text in column {field!r} (found "
                f"{type(text).__name__}); drop that row or pass another --data-field"
            )
        yield text


def _parquet_records(path: Path, field: str) -> Iterator[str]:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise UserError(f"reading {path} needs pyarrow; pip install pyarrow") from None
    try:
        table = pq.read_table(path)
    except Exception as e:  # pyarrow's errors have no common base besides ArrowException
        raise UserError(f"{path} is not a readable parquet file ({e}); pass another file") from None
    yield from _column_records(table.column_names, lambda f: table[f].to_pylist(), str(path), field)


def _is_saved_dataset(p: Path) -> bool:
    """A folder written by `datasets`' `save_to_disk` (one split, or a dict of them)."""
    return (p / "dataset_dict.json").is_file() or (
        (p / "state.json").is_file() and (p / "dataset_info.json").is_file()
    )


def _dataset_records(path: Path, field: str) -> Iterator[str]:
    try:
        import datasets
    except ImportError:
        raise UserError(f"{path} is a saved Hugging Face dataset; pip install datasets") from None
    loaded = datasets.load_from_disk(str(path))
    splits = loaded if isinstance(loaded, datasets.DatasetDict) else {"": loaded}
    for name in sorted(splits):
        where = f"{path} (split {name})" if name else str(path)
        split = splits[name]
        yield from _column_records(split.column_names, split.__getitem__, where, field)


def _documents(p: Path, field: str) -> Iterator[str]:
    if p.suffix == ".jsonl":
        yield from _jsonl_records(p, field)
    elif p.suffix == ".parquet":
        yield from _parquet_records(p, field)
    else:
        yield _read_text(p)


def _files(path: str) -> list[Path]:
    """The files `path` names: one file, a folder's files, or a glob's matches."""
    if glob.has_magic(path):
        files = sorted(Path(f) for f in glob.glob(str(Path(path).expanduser()), recursive=True))
        files = [f for f in files if f.is_file()]
        if not files:
            raise UserError(
                f"the pattern {path} matches no file; check it (quote it for the shell)"
            )
        return files
    p = Path(path).expanduser()
    if not p.exists():
        raise UserError(f"no such file or folder: {path}; pass --data a .txt file or a folder")
    if p.is_dir():
        files = sorted(f for f in p.rglob("*") if f.suffix in SUFFIXES and f.is_file())
        if not files:
            raise UserError(
                f"the folder {path} holds no .txt, .jsonl or .parquet files; add some or pass "
                "a file"
            )
        return files
    return [p]


def read_corpus(path: str, field: str = "text") -> str:
    """The text at `path` ('' = embedded default); see the module docstring for the kinds.

    `field` names the JSON field or table column that holds the text.
    """
    if not path:
        return embedded_corpus()
    p = Path(path).expanduser()
    if p.is_dir() and _is_saved_dataset(p):
        text = "\n\n".join(_dataset_records(p, field))
    else:
        text = "\n\n".join(doc for f in _files(path) for doc in _documents(f, field))
    if not text.strip():
        raise UserError(f"{path} is empty; pass a file with some text in it")
    return text
