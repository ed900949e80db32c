"""A dead letter's states and the console's bounds, in plain Python: the console and the dead-letter table keep to
them, and the operators' API documents them (``servicekit.ops_contract``) without loading the ORM."""

from __future__ import annotations

PENDING, REPLAYED, DISCARDED = "PENDING", "REPLAYED", "DISCARDED"
STATES = (PENDING, REPLAYED, DISCARDED)
MAX_TYPE_LENGTH = 64
MAX_BULK_REPLAY = 1000
"""Letters one bulk replay takes at most; the answer says when more matched."""
