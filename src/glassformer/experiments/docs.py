"""Build docs/experiments.md from finished experiment folders (nothing typed by hand).

    python -m glassformer.experiments.docs RESULTS_ROOT [--docs DOCS_DIR]

RESULTS_ROOT holds one folder per experiment, as `glassformer experiment NAME --out
RESULTS_ROOT/NAME` writes them. Each report.md goes into the page in the order of `NAMES`,
each curves.png is copied to DOCS_DIR/experiments/NAME.png, and the command that reproduces
the run is read back from its results.json. A section of the existing page whose folder is
not in RESULTS_ROOT is kept as it is, so one rerun experiment regenerates its section only:

    glassformer experiment positions --out new/positions
    python -m glassformer.experiments.docs new    # the positions section is replaced
"""

import argparse
import json
import os
import platform
import re
import shutil
from pathlib import Path

import torch

from glassformer.core.files import atomic_write
from glassformer.experiments import NAMES, get_experiment

INTRO = """# Experiments: the lecture's questions, measured

Each section answers one question a transformer lecture asks by measuring its variants side
by side. Most sections train them: same data, same budget, several seeds each, through the
project's own trainer (the loop `glassformer train` uses). `decoding` trains nothing when
SmolLM2-135M is installed: it runs every decoding strategy on one pretrained model and the
same prompts (without SmolLM2, or given `--budget`, `--steps` or `--data`, it first trains a
small char model under that budget). Everything below — tables, numbers, plots and the
sentences under "Measured answer" — was written by `glassformer experiment` and assembled by
`python -m glassformer.experiments.docs`; nothing is typed in by hand.

How to read the numbers:

- *val loss* is the cross-entropy in nats per character on the held-out last 10% of the
  corpus (Python's own documentation, embedded in every CPython, unless a section names
  other data), averaged over the seeds; `±` is the standard deviation over seeds in tables,
  and the standard error of a difference of means in the comparisons.
- A difference is called *measurable* when it exceeds two standard errors (over seeds;
  `decoding`: over prompts); otherwise the honest reading is "no measurable difference at
  this scale". With 2–3 seeds this is a rough test: treat differences near the threshold as
  hints, not findings.
- The trained models are tiny (0.1 M parameters: 2 layers, width 64, context 64; 0.3 M at
  depth 6), trained on one CPU thread, and the runs short (a few hundred to a thousand
  steps), so these are answers about the *start* of training a small model; several effects
  in the literature only appear at scale or after longer training.
- Each section that trains states its budget. Most documented runs use a **step budget**
  (`--steps N`: every run gets the same number of optimizer steps) because the machine they
  ran on was shared with other work while they ran, which makes wall-time budgets unfair
  between variants; the wall-time axis of each plot is still measured, so the cost per step
  can be compared. A **time budget** (the default, or `--budget SECONDS`) asks what a fixed
  amount of compute buys: variants that step faster get more steps. Without `--steps` an
  experiment runs under its default time budget and finishes within 5 minutes on 2 cores;
  `decoding` on SmolLM2 has no budget and takes far longer (its section states its wall
  time).

Run one yourself (it writes `experiments/NAME/curves.png`, `results.json`, `report.md`):

```sh
glassformer experiment heads                    # default time budget and seeds
glassformer experiment heads --steps 400        # every run exactly 400 steps
glassformer experiment positions --seeds 5 --data path/to/tinyshakespeare.txt
python -m glassformer.experiments.docs experiments   # rebuild this page from the folders
```

"""


def reproduce_command(results: dict) -> str:
    budget = results["budget"]
    flag = f" --steps {budget['steps']}" if "steps" in budget else ""
    flag = f" --budget {budget['seconds']:g}" if "seconds" in budget else flag
    cmd = f"glassformer experiment {results['experiment']}{flag} --seeds {results['seeds']}"
    generated = get_experiment(results["experiment"]).data is not None
    trained = bool(budget)  # no budget: nothing trained (decoding on SmolLM2), no --data
    if results["data"] != "embedded Python documentation" and trained and not generated:
        cmd += f" --data {results['data']}"
    return cmd


def machine() -> str:
    """`Intel(R) Xeon(R) ... (2 cores), torch 2.x`: the CPU the page was measured on."""
    cpuinfo = Path("/proc/cpuinfo")
    lines = cpuinfo.read_text().splitlines() if cpuinfo.exists() else []
    names = [ln.split(":", 1)[1].strip() for ln in lines if ln.startswith("model name")]
    cpu = names[0] if names else platform.processor() or platform.machine()
    return f"{cpu} ({os.cpu_count()} cores), torch {torch.__version__}"


def experiment_table() -> str:
    """The experiments with their default budgets, read from their definitions."""
    rows = [
        "| experiment | question | default budget | seeds | variants |",
        "|---|---|---|---|---|",
    ]
    for name in NAMES:
        exp = get_experiment(name)
        rows.append(
            f"| `{name}` | {exp.question} | {exp.budget_text or f'{exp.default_budget:g} s'} "
            f"| {exp.default_seeds} "
            f"| {len(exp.variants)} |"
        )
    return "\n".join(rows) + "\n"


def result_folders(root: Path) -> list[Path]:
    """`root`/NAME, then `root`/NAME-SUFFIX (a second run of NAME, e.g. under another budget),
    for each experiment in the order of `NAMES`, where results.json exists."""
    folders = []
    for name in NAMES:
        runs = [root / name, *sorted(root.glob(f"{name}-*"))]
        folders += [f for f in runs if (f / "results.json").exists()]
    return folders


def section_name(section: str) -> str | None:
    """The folder a section of the page was built from: its plot is experiments/NAME.png."""
    m = re.search(r"\]\(experiments/([^)/]+)\.png\)", section)
    return m.group(1) if m else None


def page_sections(page: str) -> dict[str, str]:
    """The sections of a built page by folder name (each starts at a `## ` heading)."""
    parts = re.split(r"(?m)^(?=## `)", page)[1:]
    return {section_name(p): p.rstrip() + "\n" for p in parts if section_name(p)}


def order_key(name: str) -> tuple[int, int, str]:
    """NAME before NAME-SUFFIX, experiments in the order of `NAMES`."""
    base = next((n for n in NAMES if name == n or name.startswith(n + "-")), None)
    return (NAMES.index(base) if base else len(NAMES), name != base, name)


def build(root: Path, docs: Path) -> Path:
    """Write docs/experiments.md and docs/experiments/*.png from `root`/NAME[-SUFFIX] folders,
    keeping the existing page's sections of folders that `root` does not have."""
    path = docs / "experiments.md"
    (docs / "experiments").mkdir(parents=True, exist_ok=True)
    sections = page_sections(path.read_text(encoding="utf-8")) if path.exists() else {}
    for folder in result_folders(root):
        name = folder.name
        results = json.loads((folder / "results.json").read_text(encoding="utf-8"))
        shutil.copyfile(folder / "curves.png", docs / "experiments" / f"{name}.png")
        report = (folder / "report.md").read_text(encoding="utf-8").rstrip()
        if name != results["experiment"]:  # a second run: say how it differs in its heading
            b = results["budget"]
            kind = f"step budget, {b['steps']} steps" if "steps" in b else "time budget"
            heading = f"## `{results['experiment']}`"
            report = report.replace(heading, f"{heading} ({kind})", 1)
        sections[name] = (
            f"{report}\n\n![{name}: {get_experiment(results['experiment']).plot_caption}]"
            f"(experiments/{name}.png)\n\nReproduce:\n\n```sh\n"
            f"{reproduce_command(results)}\n```\n"
        )
    missing = [n for n in NAMES if n not in sections]
    text = INTRO + experiment_table() + f"\nMeasured on: {machine()}.\n\n"
    if missing:
        text += f"Not run for this page: {', '.join(missing)}.\n\n"
    text += "\n".join(sections[n] for n in sorted(sections, key=order_key))
    atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))
    return path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", type=Path, help="folder with one subfolder per experiment")
    parser.add_argument("--docs", type=Path, default=Path("docs"), help="the docs folder")
    parser.add_argument(
        "--refresh",
        action="store_true",
        help="first rewrite each report and plot from its results.json with the current code",
    )
    args = parser.parse_args(argv)
    if args.refresh:
        from glassformer.experiments.runner import refresh

        for folder in result_folders(args.root):
            refresh(folder)
    print(f"wrote {build(args.root, args.docs)}")


if __name__ == "__main__":
    main()
