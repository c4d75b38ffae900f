"""gocachemgr: a Go-aware two-tier build cache (local disk + shared NFS directory)."""

__version__ = "0.1.0"
