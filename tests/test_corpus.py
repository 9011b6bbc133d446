"""Training text from .txt, .jsonl, .parquet, folders and globs of them, and a saved Hugging
Face dataset: the same documents give the same text (hence the same token cache); a bad
record is one sentence naming the file and line."""

import json
from pathlib import Path

import datasets
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from glassformer.errors import UserError
from glassformer.tokenizers import CharTokenizer
from glassformer.train.corpus import read_corpus
from glassformer.train.data import cached_token_ids

DOCS = ["To be, or not to be:", "that is the question.", "Whether 'tis nobler in the mind"]
JOINED = "\n\n".join(DOCS)


def write_jsonl(path: Path, docs, field="text") -> Path:
    path.write_text("".join(json.dumps({field: d, "id": i}) + "\n" for i, d in enumerate(docs)))
    return path


def write_parquet(path: Path, docs, field="text") -> Path:
    pq.write_table(pa.table({field: docs, "id": list(range(len(docs)))}), path)
    return path


def test_every_kind_gives_the_same_text(tmp_path):
    (tmp_path / "a.txt").write_text(JOINED)
    kinds = {
        "txt": tmp_path / "a.txt",
        "jsonl": write_jsonl(tmp_path / "a.jsonl", DOCS),
        "parquet": write_parquet(tmp_path / "a.parquet", DOCS),
    }
    for kind, path in kinds.items():
        assert read_corpus(str(path)) == JOINED, kind
    body = write_jsonl(tmp_path / "body.jsonl", DOCS, field="body")
    assert read_corpus(str(body), field="body") == JOINED
    tok = CharTokenizer.train(JOINED)
    caches = {cached_token_ids(read_corpus(str(p)), tok, "char").filename for p in kinds.values()}
    assert len(caches) == 1  # one memmapped token file for the three


def test_folders_and_globs_read_their_files_sorted(tmp_path):
    books = tmp_path / "books"
    (books / "deep").mkdir(parents=True)
    (books / "1.txt").write_text(DOCS[0])
    write_jsonl(books / "2.jsonl", DOCS[1:2])
    write_parquet(books / "deep" / "3.parquet", DOCS[2:])
    (books / "skip.md").write_text("not read: a folder gives .txt, .jsonl and .parquet only")
    assert read_corpus(str(books)) == JOINED
    assert read_corpus(str(books / "**" / "*.parquet")) == DOCS[2]
    assert read_corpus(str(books / "[12].*")) == "\n\n".join(DOCS[:2])
    with pytest.raises(UserError, match="matches no file"):
        read_corpus(str(tmp_path / "*.nothing"))


def test_a_saved_hugging_face_dataset(tmp_path):
    datasets.Dataset.from_dict({"text": DOCS}).save_to_disk(str(tmp_path / "one"))
    assert read_corpus(str(tmp_path / "one")) == JOINED
    splits = datasets.DatasetDict(
        {
            "validation": datasets.Dataset.from_dict({"text": DOCS[2:]}),
            "train": datasets.Dataset.from_dict({"text": DOCS[:2]}),
        }
    )
    splits.save_to_disk(str(tmp_path / "dict"))
    assert read_corpus(str(tmp_path / "dict")) == JOINED  # splits in sorted order
    with pytest.raises(UserError, match=r"has no column 'body' \(it has text\)"):
        read_corpus(str(tmp_path / "one"), field="body")


@pytest.mark.parametrize(
    "lines, message",
    [
        (['{"text": "fine"}', "{not json"], r"bad\.jsonl line 2 is not valid JSON"),
        (
            ['{"text": "fine"}', "", '{"body": "x"}'],
            r"bad\.jsonl line 3 has no string field 'text'",
        ),
        (['{"text": 7}'], r"bad\.jsonl line 1 has no string field 'text'; pass --data-field"),
        (["[1, 2]"], r"bad\.jsonl line 1 has no string field"),
    ],
)
def test_a_bad_jsonl_record_names_file_and_line(tmp_path, lines, message):
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(UserError, match=message):
        read_corpus(str(path))


def test_a_bad_parquet_row_or_column_is_named(tmp_path):
    path = tmp_path / "bad.parquet"
    pq.write_table(pa.table({"text": ["fine", None]}), path)
    with pytest.raises(UserError, match=r"bad\.parquet row 1 has no text in column 'text'"):
        read_corpus(str(path))
    with pytest.raises(UserError, match=r"has no column 'body' \(it has text\); pass --data-field"):
        read_corpus(str(path), field="body")
    broken = tmp_path / "broken.parquet"
    broken.write_text("not parquet")
    with pytest.raises(UserError, match="is not a readable parquet file"):
        read_corpus(str(broken))
