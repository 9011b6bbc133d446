"""The notebooks in notebooks/ run end to end in a Jupyter kernel (nbclient, a tiny training
budget) and are kept in git without outputs."""

import json
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


@pytest.mark.parametrize("path", sorted(NOTEBOOKS.glob("*.ipynb")), ids=lambda p: p.name)
def test_outputs_are_stripped(path):
    nb = json.loads(path.read_text(encoding="utf-8"))
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            assert cell["outputs"] == [] and cell["execution_count"] is None, path.name


def run(name: str, tmp_path: Path, monkeypatch) -> nbformat.NotebookNode:
    monkeypatch.setenv("GLASSFORMER_NOTEBOOK_STEPS", "20")
    monkeypatch.setenv("TMPDIR", str(tmp_path))  # the tour's run folder lands here
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    NotebookClient(
        nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()
    return nb


def outputs(nb) -> str:
    return "\n".join(
        o.get("text", "") or json.dumps(o.get("data", {}).get("text/plain", ""))
        for cell in nb.cells
        if cell.cell_type == "code"
        for o in cell.outputs
    )


@pytest.mark.slow
def test_the_tour_notebook_runs(tmp_path, monkeypatch):
    nb = run("tour.ipynb", tmp_path, monkeypatch)
    out = outputs(nb)
    assert "'def add(a, b):'" in out  # the tokenizer round trip
    assert "model.safetensors" in out and "metrics.jsonl" in out
    assert "blocks.1.attn.pattern (1, 2, 19, 19)" in out
    assert "layer 0 head 1 zeroed: loss" in out
    assert any(o.get("data", {}).get("image/png") for c in nb.cells for o in c.get("outputs", []))


@pytest.mark.slow
def test_the_smollm2_notebook_runs(tmp_path, monkeypatch):
    nb = run("smollm2.ipynb", tmp_path, monkeypatch)
    out = outputs(nb)
    assert "135M parameters, 30 layers" in out
    assert "Paris" in out
