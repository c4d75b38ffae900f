"""Go modules: the local GOMODCACHE and the shared module store (a file:// GOPROXY)."""
