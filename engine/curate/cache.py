"""The on-disk request cache: answered requests by content hash, in one SQLite file.

SQLite in WAL mode commits each answer atomically; a process killed at any point leaves every
committed answer readable and no half-written one, so a rerun sends no request that was answered
before. Only successful answers are stored. The file holds responses and token counts, never keys.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any, Optional

CACHE_FILE = "requests.sqlite"


class RequestCache:
    """key (sha256 of a ChatRequest) -> the cached completion fields."""

    def __init__(self, folder: str | Path):
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / CACHE_FILE
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS answers (key TEXT PRIMARY KEY, stage TEXT, value TEXT)")

    def get(self, key: str) -> Optional[dict[str, Any]]:
        """The stored completion fields for `key`, or None."""
        row = self._db.execute("SELECT value FROM answers WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else None

    def put(self, key: str, stage: str, value: dict[str, Any]) -> None:
        """Store an answer (committed before this returns)."""
        self._db.execute("INSERT OR REPLACE INTO answers (key, stage, value) VALUES (?, ?, ?)",
                         (key, stage, json.dumps(value)))

    def count(self, stage: str | None = None) -> int:
        """Stored answers (of one stage, or all)."""
        if stage is None:
            return self._db.execute("SELECT COUNT(*) FROM answers").fetchone()[0]
        return self._db.execute("SELECT COUNT(*) FROM answers WHERE stage = ?", (stage,)).fetchone()[0]

    def close(self) -> None:
        """Close the database."""
        self._db.close()
