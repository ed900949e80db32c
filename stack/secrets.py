"""Secrets ``make run`` makes once and keeps under the data directory, readable by their owner only."""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from pathlib import Path

OPERATOR_TOKEN_FILE = "operator-token"


def operator_token(data_dir: Path, env: Mapping[str, str] = os.environ) -> tuple[str, Path | None]:
    """``GOZON_OPERATOR_TOKEN`` when it is set; otherwise the token kept in ``<data>/operator-token`` (mode 0600),
    made at random the first time. Also the file it came from (None for the environment's)."""
    if token := env.get("GOZON_OPERATOR_TOKEN"):
        return token, None
    path = data_dir / OPERATOR_TOKEN_FILE
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as file:
            file.write(secrets.token_urlsafe(32) + "\n")
    return path.read_text().strip(), path
