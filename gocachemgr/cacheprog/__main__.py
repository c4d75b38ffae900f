"""``python -m gocachemgr.cacheprog``: the fast entry the runner puts in GOCACHEPROG."""

from gocachemgr.cacheprog.main import main

main()
