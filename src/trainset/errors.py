"""The one exception type trainset raises for bad input.

Command-line entry points and rule scripts catch :class:`TrainsetError`, print its message
(which names the file, the field and the fix) and exit non-zero without a traceback: the
message is for the person who supplied the input, not for a developer.
"""


class TrainsetError(Exception):
    """Bad input or configuration; the message says what, where and how to fix it."""
