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
is any positive number, `"[0, 2**64)"` a 64-bit seed.

A field whose default is None says what None means (`none="no limit"`) and what type its
other values have (`kind=int`); `metavar` names the value in `--help` (`--top-k K`):

    top_k: int | None = option(None, "only the K most likely tokens", range="[0, inf)",
                               kind=int, none="no limit", metavar="K")

`field_problem(f, value)` is the sentence without the name, for a caller that names the field
its own way (`top_p must be in (0, 1], got 2.0`, or `--top-p ...` on the command line).
"""

import math
import re
from dataclasses import Field, field, fields

INTERVAL = re.compile(r"^([\[(])\s*(\S+)\s*,\s*(\S+)\s*([\])])$")


def option(
    default,
    help: str,
    choices=None,
    range: str | None = None,
    *,
    kind: type | None = None,
    none: str | None = None,
    metavar: str | None = None,
):
    """A dataclass field that carries its `--help` text, its allowed values and its range.

    `choices` is any container of the allowed values (a tuple, or a registry dict whose keys
    are the names); `kind` is the values' type where the default does not show it; `none`,
    what None means where None is allowed."""
    if range is not None:
        _interval(range)  # a malformed range fails where it is written
    if default is None and (kind is None or none is None):
        raise ValueError(
            "a field whose default is None needs kind= (its type) and none= (its meaning)"
        )
    metadata = {
        "help": help,
        "choices": choices,
        "range": range,
        "kind": kind or type(default),
        "none": none,
        "metavar": metavar,
    }
    return field(default=default, metadata=metadata)


def _number(text: str) -> float:
    """`"3"` -> 3, `"0.5"` -> 0.5, `"2**64"` -> 18446744073709551616, `"inf"` -> inf."""
    if power := re.fullmatch(r"(\d+)\*\*(\d+)", text):
        return int(power.group(1)) ** int(power.group(2))
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


def field_problem(f: Field, value) -> str | None:
    """What is wrong with `value` for the dataclass field `f`, judged by its metadata (its
    type: `kind`, else the default's), or None: `"must be in (0, 1], got 2.0"`."""
    if value is None and f.metadata.get("none") is not None:
        return None
    kind = f.metadata.get("kind", type(f.default))
    if kind is bool and not isinstance(value, bool):
        return f"must be true or false, got {value!r}"
    if kind is int and (isinstance(value, bool) or not isinstance(value, int)):
        return f"must be an integer, got {value!r}"
    if kind is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return f"must be a number, got {value!r}"
        if not math.isfinite(value):
            return f"must be a finite number, got {value!r}"
    if kind is str and not isinstance(value, str):
        return f"must be a text, got {value!r}"
    choices = f.metadata.get("choices")
    if choices and not any(value == c and type(value) is type(c) for c in choices):
        return f"must be one of {', '.join(map(str, choices))}; got {value!r}"
    spec = f.metadata.get("range")
    if spec is not None and not in_range(value, spec):
        return f"must be in {spec}, got {value!r}"
    return None


def check_fields(obj, prefix: str) -> None:
    """Raise ValueError naming the first field of dataclass `obj` whose value has the wrong
    type, is not finite, or is outside its choices or range: `train.lr must be in (0, inf),
    got -1.0`."""
    for f in fields(obj):
        problem = field_problem(f, getattr(obj, f.name))
        if problem:
            raise ValueError(f"{prefix}.{f.name} {problem}")
