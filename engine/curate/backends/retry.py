"""When and how long to wait before retrying an HTTP request.

Retried: 408, 409, 429 and every 5xx status, timeouts, dropped or refused connections, and bodies
that do not parse into a chat completion. Not retried: other 4xx (a bad request or a wrong key stays
wrong). The wait doubles from `base_s` up to a cap, with jitter in [0.5, 1.5) so that many clients do
not retry in step; a Retry-After (or retry-after-ms) header asks for at least its own delay.
"""

from __future__ import annotations

import email.utils
import random
import time
from typing import Mapping, Optional

RETRY_STATUS = frozenset({408, 409, 429})
MAX_BACKOFF_S = 60.0
"""Cap of the exponential backoff."""
MAX_RETRY_AFTER_S = 600.0
"""Longest Retry-After that is honoured (longer values are cut to this)."""


def retryable_status(status: int) -> bool:
    """Whether a response with this HTTP status is worth sending again."""
    return status in RETRY_STATUS or status >= 500


def retry_after_seconds(headers: Optional[Mapping[str, str]]) -> Optional[float]:
    """The delay a response asks for (retry-after-ms, or retry-after in seconds or as an HTTP date)."""
    if not headers:
        return None
    ms = headers.get("retry-after-ms")
    if ms is not None:
        try:
            return max(0.0, float(ms) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        parsed = email.utils.parsedate_tz(value)
        if parsed is None:
            return None
        return max(0.0, email.utils.mktime_tz(parsed) - time.time())


def backoff_seconds(attempt: int, base_s: float, retry_after: Optional[float] = None,
                    rng: random.Random | None = None) -> float:
    """Wait before retry number `attempt` (0-based): jittered exponential, at least Retry-After."""
    rng = rng or random
    delay = min(MAX_BACKOFF_S, base_s * (2 ** attempt)) * (0.5 + rng.random())
    if retry_after is not None:
        delay = max(delay, min(retry_after, MAX_RETRY_AFTER_S))
    return delay
