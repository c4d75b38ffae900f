"""Console entry point. ``gocachemgr cacheprog`` skips click entirely: go starts
one helper per go command and waits for it, so its start-up must be quick."""

from __future__ import annotations

import sys


def main() -> None:
    argv = sys.argv[1:]
    if argv == ["cacheprog"]:
        from gocachemgr.cacheprog.main import main as cacheprog_main

        cacheprog_main()
    from gocachemgr.cli import run

    sys.exit(run(argv))


if __name__ == "__main__":
    main()
