"""The GOCACHEPROG server (Go >= 1.24): protocol messages and the asyncio loop."""
