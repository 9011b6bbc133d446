"""Config fields that carry their own `--help` text, allowed values and range.

    @dataclass
    class TrainConfig:
        lr: float = option(1e-3, "peak learning rate", range="(0, 10]")
        schedule: str = option("cosine", "the LR schedule", ("cosine", "wsd", "constant"))

        def __post_init__(self):
            check_fields(self, "train")

The CLI builds one `--section.field` flag per field from this metadata; `check_fields`
refuses, in one sentence, a value of the wrong type (`n_layer: 2.5`, `norm_eps: "tiny"`,
`true` for a number), a NaN or infinite float, a value outside `choices` or outside
`range`. A range is written as an interval: `"[0, 1)"` includes 0 and excludes 1, `"(0, inf)"`
is any positive number.
"""

import math
import re
from dataclasses import field, fields

INTERVAL = re.compile(r"^([\[(])\s*(\S+)\s*,\s*(\S+)\s*([\])])$")


def option(default, help: str, choices: tuple | None = None, range: str | None = None):
    """A dataclass field that carries its `--help` text, its allowed values and its range."""
    if range is not None:
        _interval(range)  # a malformed range fails where it is written
    return field(default=default, metadata={"help": help, "choices": choices, "range": range})


def _number(text: str) -> float:
    return int(text) if re.fullmatch(r"-?\d+", text) else float(text)


def _interval(spec: str) -> tuple[float, bool, float, bool]:
    """`"[0, 1)"` -> `(0, True, 1, False)`: low, low included, high, high included."""
    m = INTERVAL.match(spec)
    if not m:
        raise ValueError(f"a range is written like '[0, 1)' or '(0, inf)', not {spec!r}")
    return _number(m.group(2)), m.group(1) == "[", _number(m.group(3)), m.group(4) == "]"


def in_range(value: float, spec: str) -> bool:
    """`in_range(0.5, "[0, 1)") -> True`, `in_range(1, "[0, 1)") -> False`."""
    low, low_in, high, high_in = _interval(spec)
    above = value >= low if low_in else value > low
    below = value <= high if high_in else value < high
    return above and below


def check_fields(obj, prefix: str) -> None:
    """Raise ValueError naming the first field of dataclass `obj` whose value has the wrong
    type (judged by the field's default), is not finite, or is outside its choices or range."""
    for f in fields(obj):
        value, name = getattr(obj, f.name), f"{prefix}.{f.name}"
        kind = type(f.default)
        if kind is bool and not isinstance(value, bool):
            raise ValueError(f"{name} must be true or false, got {value!r}")
        if kind is int and (isinstance(value, bool) or not isinstance(value, int)):
            raise ValueError(f"{name} must be an integer, got {value!r}")
        if kind is float:
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"{name} must be a number, got {value!r}")
            if not math.isfinite(value):
                raise ValueError(f"{name} must be a finite number, got {value!r}")
        if kind is str and not isinstance(value, str):
            raise ValueError(f"{name} must be a text, got {value!r}")
        choices = f.metadata.get("choices")
        if choices and value not in choices:
            raise ValueError(f"{name} must be one of {', '.join(map(str, choices))}; got {value!r}")
        spec = f.metadata.get("range")
        if spec is not None and not in_range(value, spec):
            raise ValueError(f"{name} must be in {spec}, got {value!r}")
