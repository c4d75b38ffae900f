"""Errors that reach a user as one line: what is wrong and how to fix it."""


class UserError(Exception):
    """A problem the user can fix (bad config, bad flag, unusable directory).

    The CLI prints ``str(err)`` on one line and exits non-zero; it never shows
    a traceback for these.
    """

    exit_code = 2


class ConfigError(UserError):
    """A configuration value is missing, malformed or unusable."""
