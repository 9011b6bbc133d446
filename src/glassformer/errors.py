"""Errors a user can cause.

A `UserError` carries one sentence that names the problem and the fix. The CLI prints it
(no traceback) and exits with status 2. Library code raises it for bad paths, empty corpora,
invalid option values and files that are not what they claim to be.
"""


class UserError(Exception):
    """A mistake in what the user asked for; the message says what to do instead."""

    exit_code = 2
