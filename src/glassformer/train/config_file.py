"""`glassformer train --config FILE`: a run configuration from a JSON or YAML file.

The file has the shape of a run's own `config.json` (which is itself a valid file), and may
give only the settings it changes; they are laid over the preset:

    # small.yaml
    model: {n_layer: 4, n_head: 4, n_embd: 128}
    train: {lr: 1e-3, max_steps: 500}
    data: {path: notes.jsonl, field: body}

Flags given beside `--config` override the file. A setting that does not exist, or a value
of the wrong kind, is one sentence naming the file and the setting. YAML needs PyYAML
(`pip install pyyaml`), imported only for a .yaml / .yml file.
"""

import json
from dataclasses import fields
from pathlib import Path

from glassformer.errors import UserError
from glassformer.models.registry import FAMILIES
from glassformer.train.config import RunConfig

IGNORED = ("format_version", "finetune")  # what else a run's config.json holds


def _read(path: Path) -> dict:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise UserError(f"cannot read the config file {path} ({e}); pass --config a file") from None
    if path.suffix in (".yaml", ".yml"):
        try:
            import yaml
        except ImportError:
            raise UserError(f"reading {path} needs PyYAML; pip install pyyaml") from None
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as e:
            raise UserError(f"{path} is not valid YAML ({' '.join(str(e).split())})") from None
    else:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise UserError(
                f"{path} is not valid JSON ({e.msg} at line {e.lineno}); a .yaml file is read "
                "as YAML"
            ) from None
    if not isinstance(data, dict):
        raise UserError(f"{path} must hold a mapping of sections (model, train, data)")
    return data


def _value(path: Path, key: str, value, default):
    """`value` as the kind of `default` (YAML reads 1e-3 as text; 3 may stand for 3.0)."""
    kind = type(default)
    if kind is float and isinstance(value, int | str) and not isinstance(value, bool):
        try:
            return float(value)
        except ValueError:
            pass
    if kind is float and isinstance(value, float):
        return value
    if isinstance(value, kind) and not (kind is int and isinstance(value, bool)):
        return value
    raise UserError(
        f"{path}: {key} must be {kind.__name__}, got {value!r}; see `glassformer train --help`"
    )


def read_config_file(path: str | Path, base: RunConfig) -> RunConfig:
    """`base` (the preset) with every setting of the file at `path` laid over it."""
    path = Path(path).expanduser()
    data = _read(path)
    for key in data:
        if key not in (*RunConfig.SECTIONS, "family", *IGNORED):
            raise UserError(
                f"{path}: {key!r} is not a section; use model, train and data (as in a run's "
                "config.json)"
            )
    family = data.get("family", base.family)
    if family not in FAMILIES or family not in ("gpt", "lstm"):
        raise UserError(f"{path}: family {family!r} is not a language model; use gpt or lstm")
    merged = base.to_dict()
    if family != base.family:  # another family's model: its own defaults, not the preset's
        merged["model"] = {}
    for section in RunConfig.SECTIONS:
        given = data.get(section, {})
        if not isinstance(given, dict):
            raise UserError(f"{path}: {section} must be a mapping of settings")
        defaults = (
            {f.name: f.default for f in fields(FAMILIES[family].config_class)}
            if section == "model"
            else {f.name: f.default for f in fields(getattr(base, section))}
        )
        for key, value in given.items():
            if key not in defaults:
                raise UserError(
                    f"{path}: {section}.{key} is not a setting; see `glassformer train --help`"
                )
            merged[section][key] = _value(path, f"{section}.{key}", value, defaults[key])
    try:
        return RunConfig.from_dict({"family": family, **merged})
    except (ValueError, TypeError) as e:
        raise UserError(f"{path}: invalid setting: {e}") from None
