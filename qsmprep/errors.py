"""Exceptions for errors a user can cause and fix.

Anything raised as :class:`UserInputError` is printed by the CLI as a single
paragraph (no traceback) and the program exits with status 2.
"""


class UserInputError(Exception):
    """Bad input the user can fix: the message names the file and the fix."""


class QCError(Exception):
    """A result failed a quality check (NaN, empty or constant susceptibility map): the
    CLI prints the message as one paragraph, writes no derivative of that run and exits
    with status 1."""
