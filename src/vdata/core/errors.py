"""Errors a user can fix. The CLI prints them without a traceback and exits with code 2."""


class UserError(Exception):
    """Bad input: the message names the problem and the fix."""

    exit_code = 2
