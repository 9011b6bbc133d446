"""`OptionError`: a generation option out of range, naming the option it is about.

The message reads the same whether the option was a keyword argument or a command-line flag,
so the CLI only has to spell the name its way:

    >>> e = OptionError("top_p", "must be in (0, 1], got 2.0")
    >>> str(e), e.flag_message()
    ('top_p must be in (0, 1], got 2.0', '--top-p must be in (0, 1], got 2.0')
"""

from glassformer.errors import UserError


class OptionError(UserError):
    def __init__(self, field: str, problem: str):
        super().__init__(f"{field} {problem}")
        self.field, self.problem = field, problem

    def flag_message(self) -> str:
        """The message with the option spelled as its flag: top_p -> --top-p."""
        return f"--{self.field.replace('_', '-')} {self.problem}"
