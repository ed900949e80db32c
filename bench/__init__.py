"""``make bench``: measures the whole system on a stack of its own (see bench/README.md)."""
