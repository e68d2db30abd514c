"""Errors shared by the CLI and the library."""


class UserError(Exception):
    """Bad input from the user: the message names the problem and the fix, on one line.

    The CLI prints it without a traceback and exits with status 2. Library errors that are
    the user's fault (``IRError``, ``ModelFileError``, ...) are converted to this at the
    command boundary.
    """
