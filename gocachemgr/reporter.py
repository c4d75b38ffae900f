"""One warning line per go command, however many processes notice the trouble.

A bad share is seen by the runner (module publish) and by the cacheprog helper
go starts; each would warn. The runner names a marker file in
``GOCACHEMGR_WARN_MARKER``; whichever process creates it first (O_EXCL) prints,
the others stay quiet. Without a marker it is one warning per process.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable, Mapping

WARN_MARKER_ENV = "GOCACHEMGR_WARN_MARKER"


class Reporter:
    """Prints at most one warning line per run, so a bad share cannot flood a build log."""

    def __init__(
        self,
        write: Callable[[str], object] | None = sys.stderr.write,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self._write = write
        self._marker = (os.environ if env is None else env).get(WARN_MARKER_ENV) or None
        self._lock = threading.Lock()
        self.message: str | None = None  # the first warning (printed unless another process did)

    def warn_once(self, message: str) -> None:
        with self._lock:
            if self.message is not None:
                return
            self.message = message
        if self._write is None or not self._claim_marker():
            return
        try:
            self._write(f"gocachemgr: warning: {message}\n")
        except (OSError, ValueError):
            pass

    def _claim_marker(self) -> bool:
        """True when this process is the run's first to warn (or no marker is shared)."""
        if self._marker is None:
            return True
        try:
            os.close(os.open(self._marker, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        except FileExistsError:
            return False
        except OSError:
            return True  # better a second line than a lost warning
        return True
