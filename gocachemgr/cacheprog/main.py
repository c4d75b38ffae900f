"""Entry point of ``gocachemgr cacheprog``: hello first, imports after.

go waits for the capability message before its first cache lookup and starts
one helper per go command, so the message goes out right after the config is
read; asyncio, lmdb and the stores are imported only then.
"""

from __future__ import annotations

import os
import sys

from gocachemgr.cacheprog.protocol import HELLO
from gocachemgr.config import Config
from gocachemgr.errors import UserError


def run() -> int:
    """Serve go on stdin/stdout; returns the exit status. Never raises for user errors."""
    try:
        config = Config.load()
    except UserError as exc:
        sys.stderr.write(f"gocachemgr cacheprog: {exc}\n")
        return exc.exit_code
    try:
        os.write(1, HELLO)
    except OSError:
        return 1
    try:
        return _serve(config)
    except UserError as exc:
        sys.stderr.write(f"gocachemgr cacheprog: {exc}\n")
        return exc.exit_code


def _serve(config: Config) -> int:
    import asyncio

    from gocachemgr.cacheprog.server import Server, write_all
    from gocachemgr.prefetch import for_go_command
    from gocachemgr.toolchain import go_cache_dir
    from gocachemgr.wiring import open_tiered

    store = open_tiered(config, gocache_dir=go_cache_dir(os.environ, config))
    # go starts the helper in its own working directory: that names the workspace.
    prefetcher, recorder = for_go_command(store, config, os.getcwd(), os.environ)
    server = Server(
        store,
        write_all(1),
        shared_timeout=config.shared_timeout,
        flush_timeout=config.flush_timeout,
        prefetcher=prefetcher,
        recorder=recorder,
    )

    async def main() -> int:
        loop = asyncio.get_running_loop()
        stream = asyncio.StreamReader(limit=1 << 20)
        await connect_stdin(loop, stream)
        return await server.serve(stream)

    try:
        return asyncio.run(main())
    finally:
        store.close()
        store.local.index.close()


async def connect_stdin(loop: object, stream: object) -> None:
    """Feed stdin into ``stream``: a pipe transport, or a thread for files and odd fds."""
    import asyncio
    import threading

    assert isinstance(loop, asyncio.AbstractEventLoop) and isinstance(stream, asyncio.StreamReader)
    try:
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stream), sys.stdin)
        return
    except (ValueError, OSError):
        pass  # a regular file or /dev/null: read it from a thread instead

    def pump() -> None:
        while True:
            try:
                data = os.read(0, 1 << 16)
            except OSError:
                data = b""
            if not data:
                loop.call_soon_threadsafe(stream.feed_eof)
                return
            loop.call_soon_threadsafe(stream.feed_data, data)

    threading.Thread(target=pump, daemon=True, name="stdin").start()


def main() -> None:
    """Exit without joining worker threads: a hung NFS call must not hold go's build."""
    status = run()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)
