"""`glassformer experiment` shows one progress bar over all its runs, with the time left."""

import io
import re
import sys

from glassformer.cli import main
from glassformer.experiments import get_experiment


class Terminal(io.StringIO):
    """A stderr that says it is a terminal, so the bar is drawn."""

    def isatty(self) -> bool:
        return True


def test_one_bar_over_all_runs_with_eta(tmp_path, small_corpus, monkeypatch, capsys):
    err = Terminal()
    monkeypatch.setattr(sys, "stderr", err)
    argv = ["experiment", "heads", "--steps", "2", "--seeds", "2", "--data", str(small_corpus)]
    assert main([*argv, "--out", str(tmp_path / "heads")]) == 0
    n = len(get_experiment("heads").variants) * 2
    text = err.getvalue()
    assert re.search(rf"heads: 100%\|[^|]*\| {n}/{n} \[\d\d:\d\d<00:00", text), text[-500:]
    assert re.search(rf"heads: +\d+%\|[^|]*\| 1/{n} \[\d\d:\d\d<\d\d:\d\d", text)  # an ETA
    assert "[heads] " in text  # each run's line still printed, above the bar
