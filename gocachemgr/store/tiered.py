"""Local tier first, shared tier behind it, uploads written behind.

Composition, not inheritance: a shared hit is verified and copied into the
local tier before go sees it (go only ever reads local files); a put returns
after the local write and is uploaded in the background, object before
record. Any shared-tier failure becomes a miss or a skipped upload, counted
and warned about once per process — it never fails the build.
"""

from __future__ import annotations

import errno
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait

from gocachemgr.reporter import Reporter
from gocachemgr.stats import Counters
from gocachemgr.store import ActionEntry, LocalHit
from gocachemgr.store.atomic import AtomicFile, VerifyError
from gocachemgr.store.local import LocalStore
from gocachemgr.store.shared import SharedStore

# Write errors that mean "this share takes no uploads now": stop trying for the run.
UNWRITABLE = frozenset({errno.EROFS, errno.EACCES, errno.EPERM, errno.ENOSPC, errno.EDQUOT})
# A shared hit on an entry put longer ago than this refreshes its record's mtime (gc's
# "last used"); each node fetches an entry from the share about once, so this stays rare.
SHARED_TOUCH_AFTER_NS = 3600 * 10**9


class TieredStore:
    def __init__(
        self,
        local: LocalStore,
        shared: SharedStore | None,
        *,
        counters: Counters,
        reporter: Reporter,
        upload_workers: int = 4,
        read_workers: int = 8,
    ) -> None:
        self.local = local
        self.shared = shared
        self.counters = counters
        local.on_new_object = lambda size: counters.add("local_bytes", size)
        self.reporter = reporter
        self.shared_readable = shared is not None
        # Read-only mode: shared hits are served, nothing is uploaded or queued.
        self.queues_uploads = shared is not None and not shared.read_only
        self.shared_writable = self.queues_uploads
        self.read_pool = ThreadPoolExecutor(read_workers, thread_name_prefix="shared-read")
        self._upload_pool = ThreadPoolExecutor(upload_workers, thread_name_prefix="upload")
        # A backlog from earlier runs trickles up on its own thread, so it never
        # delays this run's uploads, and is not waited for at close.
        self._resume_pool = ThreadPoolExecutor(1, thread_name_prefix="resume")
        self._uploads: dict[Future[None], bool] = {}  # future -> resumed from the backlog
        self._uploads_lock = threading.Lock()
        self.shared_problem: str | None = None
        self._opened: Future[None] | None = None
        if shared is not None:
            shared.on_corrupt = self._on_corrupt
            # Checked off the caller's thread: on a hung hard mount the first
            # shared fetch times out and drops the tier, local hits never wait.
            self._opened = shared.open_in_background(self.disable)

    def wait_shared(self, timeout: float | None = None) -> bool:
        """Wait for the share's start-up check; True while the shared tier is usable."""
        if self._opened is None:
            return False
        try:
            self._opened.result(timeout)
        except TimeoutError:
            self.disable(f"shared dir did not answer its start-up check within {timeout:g}s")
        return self.shared_readable or self.shared_writable

    # -- health ----------------------------------------------------------------

    def disable(self, reason: str) -> None:
        """Drop the shared tier for the rest of this process, with the one warning."""
        if self.shared_readable or self.shared_writable:
            self.counters.add("degraded_runs")
            self.shared_problem = reason
        self.shared_readable = self.shared_writable = False
        self.reporter.warn_once(f"{reason}; continuing with the local cache only")

    def _on_corrupt(self, what: str) -> None:
        self.counters.add("corrupt")
        self.reporter.warn_once(
            f"damaged shared cache file quarantined ({what}); treated as a miss"
        )

    def _shared_error(self, what: str, exc: OSError, consequence: str) -> None:
        self.counters.add("shared_errors")
        self.reporter.warn_once(f"shared cache {what} failed ({exc}); {consequence}")

    # -- get ---------------------------------------------------------------------

    def get_local(self, action_id: str) -> LocalHit | None:
        hit = self.local.get(action_id)
        if hit is not None:
            self.counters.add("hits_local")
            self.counters.add("hit_bytes_local", hit.entry.size)
            self.counters.add("saved_ms_local", hit.entry.cost_ms)
        return hit

    def fetch_shared(
        self, action_id: str, *, admit: Callable[[ActionEntry], bool] | None = None
    ) -> LocalHit | None:
        """Copy a verified shared entry into the local tier (blocking: run it in ``read_pool``).

        ``admit`` marks a prefetch (``prefetch.py``, no go request waiting): a body
        is copied only if ``admit(entry)`` allows it, and it counts as prefetched.
        """
        if self.shared is None or not self.wait_shared() or not self.shared_readable:
            return None
        try:
            entry = self.shared.get_action(action_id)
            if entry is None:
                return None
            if not self.local.has_object(entry.output_id, entry.size):
                if admit is not None and not admit(entry):
                    return None
                with self.local.new_object_file(entry.output_id) as f:
                    if not self.shared.read_object_into(action_id, entry, f):
                        return None
                    self.local.commit_object(f, entry)
            self.local.record(action_id, entry, pending=False)
        except OSError as exc:
            self._shared_error("read", exc, "treated as a miss")
            return None
        if admit is not None:
            self.counters.add("prefetched")
            self.counters.add("prefetch_bytes", entry.size)
        else:
            self.counters.add("hits_shared")
            self.counters.add("hit_bytes_shared", entry.size)
            self.counters.add("saved_ms_shared", entry.cost_ms)
        if self.shared_writable and time.time_ns() - entry.time_ns > SHARED_TOUCH_AFTER_NS:
            # Still in use: tell the shared gc, off the request path (best effort).
            self._upload_pool.submit(self.shared.touch_action, action_id)
        return LocalHit(entry, self.local.object_path(entry.output_id))

    # -- put ---------------------------------------------------------------------

    def put(self, action_id: str, entry: ActionEntry, body: AtomicFile) -> str:
        """Make the body and record local (raises VerifyError/OSError), queue the upload."""
        path = self.local.commit_object(body, entry)
        self.local.record(action_id, entry, pending=self.queues_uploads)
        self.counters.add("puts")
        self.counters.add("put_bytes", entry.size)
        if self.queues_uploads:
            self.schedule_upload(action_id, entry)
        return path

    # -- uploads -----------------------------------------------------------------

    def schedule_upload(self, action_id: str, entry: ActionEntry, *, resumed: bool = False) -> None:
        if not self.shared_writable:
            return  # stays pending in the index for `gocachemgr sync`
        pool = self._resume_pool if resumed else self._upload_pool
        future = pool.submit(self._upload, action_id, entry)
        with self._uploads_lock:
            self._uploads[future] = resumed
        future.add_done_callback(self._forget_upload)

    def _forget_upload(self, future: Future[None]) -> None:
        with self._uploads_lock:
            self._uploads.pop(future, None)

    def resume_pending(self, *, background: bool = True) -> int:
        """Queue the uploads earlier runs left pending; returns how many.

        In the background (a go command) they trickle up on one thread and are
        not waited for at close; ``gocachemgr sync`` queues them as its own work.
        """
        items = list(self.local.index.pending()) if self.shared_writable else []
        for action_id, entry in items:
            self.schedule_upload(action_id, entry, resumed=background)
        return len(items)

    def _upload(self, action_id: str, entry: ActionEntry) -> None:
        if self.shared is None or not self.wait_shared() or not self.shared_writable:
            return
        src = self.local.object_path(entry.output_id)
        if not os.path.exists(src):
            # `go clean -cache` or gc took the body: nothing to upload any more.
            self.local.index.done_pending(action_id)
            self.counters.add("uploads_failed")
            return
        try:
            if self.shared.put_object(entry.output_id, entry.size, src):
                self.counters.add("upload_bytes", entry.size)
            self.shared.put_action(action_id, entry)
        except VerifyError:
            # The local body is damaged: forget it rather than publish it.
            self.local.index.delete_action(action_id)
            self.local.index.done_pending(action_id)
            self.counters.add("uploads_failed")
            return
        except OSError as exc:
            self.counters.add("uploads_failed")
            if exc.errno in UNWRITABLE:
                self.counters.add("shared_errors")
                self.shared_writable = False
                self.reporter.warn_once(
                    f"shared cache is not writable ({exc}); uploads stay pending for "
                    f"'gocachemgr sync'"
                )
            else:
                self._shared_error("upload", exc, "the entry stays pending for 'gocachemgr sync'")
            return
        self.local.index.done_pending(action_id)
        self.counters.add("uploads_done")

    def uploads_running(self) -> int:
        with self._uploads_lock:
            return len(self._uploads)

    def flush_uploads(self, timeout: float) -> bool:
        """Wait up to ``timeout`` s for this run's own uploads (not a resumed backlog).

        True when none of them is left; what is left stays pending in the index.
        """
        with self._uploads_lock:
            running = [f for f, resumed in self._uploads.items() if not resumed]
        _, not_done = wait(running, timeout=timeout)
        return not not_done

    def close(self) -> None:
        """Stop the pools without waiting: a hung NFS call must not hang go's exit."""
        self.read_pool.shutdown(wait=False, cancel_futures=True)
        self._upload_pool.shutdown(wait=False, cancel_futures=True)
        self._resume_pool.shutdown(wait=False, cancel_futures=True)
