"""Config fields that carry their own `--help` text and allowed values.

    @dataclass
    class TrainConfig:
        lr: float = option(1e-3, "peak learning rate")
        schedule: str = option("cosine", "the LR schedule", ("cosine", "wsd", "constant"))

The CLI builds one `--section.field` flag per field from this metadata, and `check_choices`
refuses a value outside `choices` with one sentence.
"""

from dataclasses import field, fields


def option(default, help: str, choices: tuple | None = None):
    """A dataclass field that carries its `--help` text and its allowed values."""
    return field(default=default, metadata={"help": help, "choices": choices})


def check_choices(obj, prefix: str) -> None:
    """Raise ValueError naming the first field of `obj` whose value is not one of its choices."""
    for f in fields(obj):
        choices = f.metadata.get("choices")
        if choices and getattr(obj, f.name) not in choices:
            raise ValueError(
                f"{prefix}.{f.name} must be one of {', '.join(map(str, choices))}; "
                f"got {getattr(obj, f.name)!r}"
            )
