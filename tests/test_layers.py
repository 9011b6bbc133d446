"""The layer order of docs/DESIGN.md, checked on every import of every module.

A module may import from its own unit (the top-level package it lives in, e.g. `nn`) and from
units of lower layers, never from a unit of its own layer (sideways) or of a higher one (up),
and the imports between modules must not form a cycle. Imports inside functions count too:
a deferred import hides a dependency, it does not remove it.
"""

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "glassformer"

# bottom to top; each set is one layer of units (a unit = a top-level module or package)
LAYERS: list[set[str]] = [
    {"errors"},
    {"core"},  # atomic files, device, config fields, weights IO: no model code
    {"tokenizers", "datasets"},  # text <-> ids; corpus downloads
    {"nn"},  # one concept a file: attention, MLP, norm, block, positions, hooks
    {"models"},  # GPT / Llama, encoder, seq2seq, LSTM, and the family registry
    {"interop"},  # foreign formats in and out: Hugging Face folders, GGUF
    {"checkpoint"},  # one folder format for every family; load(anything)
    {"generate"},  # strategies, Session, streaming
    {"train"},  # one model-agnostic training loop
    {"inspect"},  # run_with_cache, views
    {"tasks"},  # the families' tasks
    {"experiments"},  # the lecture's questions, measured
    {"serve"},  # HTTP API and the live explorer
    {"commands"},  # one file per CLI verb
    {"cli"},  # the console script
    {"__main__", "__init__"},  # `python -m glassformer` and the public API
]


def layer_of(unit: str, layers: list[set[str]]) -> int:
    for i, layer in enumerate(layers):
        if unit in layer:
            return i
    raise KeyError(unit)


def module_name(path: Path, root: Path) -> str:
    """src/glassformer/nn/attention.py -> glassformer.nn.attention."""
    parts = path.relative_to(root.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def unit_of(module: str, package: str) -> str:
    """glassformer.nn.attention -> nn; glassformer (the package itself) -> __init__."""
    rest = module.split(".")[1:]
    return rest[0] if rest else "__init__"


def imports_of(path: Path, module: str, package: str):
    """(line, imported module) for every import of `package` in file `path`, at any depth."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    is_pkg = path.name == "__init__.py"
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == package:
                    yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against this module's package
                base = module.split(".") if is_pkg else module.split(".")[:-1]
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != package:
                continue
            for alias in node.names:  # a name may be a submodule: violations() trims it
                yield node.lineno, f"{target}.{alias.name}"


def violations(root: Path, layers: list[set[str]]) -> list[str]:
    """Every upward or sideways import under package folder `root`, and every cycle."""
    package = root.name
    problems, graph = [], {}
    files = sorted(root.rglob("*.py"))
    modules = {module_name(f, root) for f in files}
    for path in files:
        module = module_name(path, root)
        unit = unit_of(module, package)
        here = layer_of(unit, layers)
        edges = graph.setdefault(module, set())
        for line, target in imports_of(path, module, package):
            # `from pkg.x import name` may name a submodule: take the longest known module
            while target not in modules and "." in target:
                target = target.rsplit(".", 1)[0]
            edges.add(target)
            other = unit_of(target, package)
            if other == unit:
                continue
            there = layer_of(other, layers)
            where = f"{path.relative_to(root.parent)}:{line}"
            if there > here:
                problems.append(f"{where}: {unit} imports {target} from a higher layer")
            elif there == here:
                problems.append(f"{where}: {unit} imports {target} from its own layer")
    problems += [f"import cycle: {' -> '.join(c)}" for c in cycles(graph)]
    return problems


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle per strongly connected component of more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in graph:
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component) + [min(component)])

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_every_unit_has_a_layer():
    units = {p.stem if p.is_file() else p.name for p in SRC.iterdir()}
    units = {u for u in units if not u.startswith((".", "_")) or u in ("__init__", "__main__")}
    units -= {"py"}
    missing = [u for u in sorted(units) if (SRC / u).is_dir() or (SRC / f"{u}.py").is_file()]
    missing = [u for u in missing if not any(u in layer for layer in LAYERS)]
    assert not missing, f"add these to LAYERS (and docs/DESIGN.md): {missing}"


def test_imports_point_down():
    problems = violations(SRC, LAYERS)
    assert not problems, "\n".join(problems)


def _package(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "pkg"
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


SYNTHETIC_LAYERS = [{"low"}, {"mid", "side"}, {"high"}]


def test_an_upward_import_is_named(tmp_path):
    root = _package(
        tmp_path,
        {
            "__init__.py": "",
            "low/__init__.py": "",
            "low/a.py": "def f():\n    from pkg.high import b\n",  # deferred, still counted
            "mid.py": "",
            "side.py": "",
            "high/__init__.py": "",
            "high/b.py": "import pkg.low.a\n",
        },
    )
    problems = violations(root, SYNTHETIC_LAYERS + [{"__init__"}])
    assert any("pkg/low/a.py:2: low imports pkg.high" in p for p in problems), problems
    assert any(p.startswith("import cycle: pkg.high.b -> pkg.low.a") for p in problems), problems


def test_a_sideways_and_a_relative_import_are_named(tmp_path):
    root = _package(
        tmp_path,
        {
            "__init__.py": "",
            "low/__init__.py": "",
            "mid.py": "from .side import x\n",
            "side.py": "x = 1\n",
            "high/__init__.py": "from pkg import mid\nfrom pkg.low import y\n",
        },
    )
    problems = violations(root, SYNTHETIC_LAYERS + [{"__init__"}])
    assert problems == ["pkg/mid.py:1: mid imports pkg.side from its own layer"], problems


def test_a_clean_package_passes(tmp_path):
    root = _package(
        tmp_path,
        {
            "__init__.py": "",
            "low/__init__.py": "",
            "low/a.py": "from . import b\n",
            "low/b.py": "",
            "mid.py": "from pkg.low.a import thing\n",
            "high/__init__.py": "from pkg import mid, side\n",
            "side.py": "",
        },
    )
    assert violations(root, SYNTHETIC_LAYERS + [{"__init__"}]) == []


def documented_layers(design: str) -> list[set[str]]:
    """The layer list of docs/DESIGN.md: the lines between the two `<!-- layers -->` marks,
    top layer first, each `unit, unit    comment`."""
    block = design.split("<!-- layers -->")[1]
    rows = [line.split("  ")[0].strip() for line in block.strip().strip("`").splitlines()]
    layers = [{u.strip().strip("`") for u in row.split(",")} for row in rows if row]
    return layers[::-1]


def test_layers_are_ordered_as_documented():
    design = (SRC.parents[1] / "docs" / "DESIGN.md").read_text(encoding="utf-8")
    assert documented_layers(design) == LAYERS


def test_serve_imports_only_what_generate_exports():
    """The server drives the generation engine through `glassformer.generate`'s exported names
    (its __all__), never through generate's inner modules."""
    import importlib

    generate = importlib.import_module("glassformer.generate")  # the package, not the function
    found = []
    for path in sorted((SRC / "serve").rglob("*.py")):
        module = "glassformer." + ".".join(path.relative_to(SRC).with_suffix("").parts)
        for line, name in imports_of(path, module, "glassformer"):
            if name.startswith("glassformer.generate."):
                rest = name.removeprefix("glassformer.generate.")
                if rest not in generate.__all__:
                    found.append(f"{path.relative_to(SRC)}:{line} imports {name}")
    assert found == []


def reachable(root: Path, start: str) -> set[str]:
    """Every module that the modules under `start` (e.g. pkg.serve) import, at any depth."""
    files = {module_name(f, root): f for f in sorted(root.rglob("*.py"))}
    seen, todo = set(), [m for m in files if m == start or m.startswith(start + ".")]
    while todo:
        module = todo.pop()
        if module in seen or module not in files:
            continue
        seen.add(module)
        for _, target in imports_of(files[module], module, root.name):
            while target not in files and "." in target:
                target = target.rsplit(".", 1)[0]
            todo.append(target)
    return seen


def test_the_server_and_the_views_never_import_the_trainer():
    # inspect sits above train, but the explorer serves its views: a server that loads a
    # model must not pull in the training loop (metrics.jsonl is read through core/metrics.py)
    for unit in ("inspect", "serve"):
        modules = reachable(SRC, f"glassformer.{unit}")
        pulled = sorted(m for m in modules if unit_of(m, "glassformer") == "train")
        assert not pulled, f"{unit} imports the trainer: {pulled}"
