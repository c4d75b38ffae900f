"""Console entry point. ``gocachemgr cacheprog`` and ``gocachemgr go`` skip click:
go starts one helper per go command and waits for it, and ``gocachemgr go`` wraps
every build, so their start-up must be quick."""

from __future__ import annotations

import sys


def main() -> None:
    argv = sys.argv[1:]
    if argv == ["cacheprog"]:
        from gocachemgr.cacheprog.main import main as cacheprog_main

        cacheprog_main()
    if argv[:1] == ["go"]:
        # The hot path of every build: no click import, go's args untouched.
        from gocachemgr.runner import main as go_main

        sys.exit(go_main(argv[1:]))
    from gocachemgr.cli import run

    sys.exit(run(argv))


if __name__ == "__main__":
    main()
