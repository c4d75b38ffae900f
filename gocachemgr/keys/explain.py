"""`gocachemgr key --explain`: every input of a key, and what differs between two keys.

Like ccache's debug mode: the per-field digests of each explained key are
kept in lmdb, so a later run can say which inputs changed since then.
"""

from __future__ import annotations

import json

from gocachemgr.index import Index

Fields = list[tuple[str, str]]


class ExplainLog:
    def __init__(self, index: Index) -> None:
        self.env = index.env
        self.db = index.env.open_db(b"explains")

    def save(self, key: str, fields: Fields) -> None:
        with self.env.begin(write=True, db=self.db) as txn:
            txn.put(key.encode(), json.dumps(fields).encode())

    def load(self, key: str) -> Fields | None:
        with self.env.begin(db=self.db) as txn:
            raw = txn.get(key.encode())
        return [tuple(f) for f in json.loads(raw)] if raw else None  # type: ignore[misc]


def diff_fields(old: Fields, new: Fields) -> list[str]:
    """Human lines: inputs added, removed or changed between two explained keys."""
    before, after = dict(old), dict(new)
    lines = [f"changed  {name}" for name in after if name in before and before[name] != after[name]]
    lines += [f"added    {name}" for name in after if name not in before]
    lines += [f"removed  {name}" for name in before if name not in after]
    return lines
