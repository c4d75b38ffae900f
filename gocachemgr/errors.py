"""Errors that reach a user as one line: what is wrong and how to fix it."""


class UserError(Exception):
    """A problem the user can fix (bad config, bad flag, unusable directory).

    The CLI prints ``str(err)`` on one line and exits non-zero; it never shows
    a traceback for these.
    """

    exit_code = 2


class ConfigError(UserError):
    """A configuration value is missing, malformed or unusable."""


def describe_os_error(exc: OSError) -> str:
    """An OSError as one line: the reason and the path, no errno clutter."""
    where = f": {exc.filename}" if exc.filename else ""
    return f"{exc.strerror or exc}{where}"
