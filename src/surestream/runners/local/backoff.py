"""The waits between attempts of a failing sink operation: exponential, capped, jittered.

Pure arithmetic, so a unit test can check the schedule without sleeping. The jitter (a
random fraction of each wait, either way) spreads the retries of many pipelines hitting one
recovering server; it comes from a generator of its own and changes only how long the
runner sleeps -- never which records are written or how, so results stay identical.
"""

from __future__ import annotations

import random
from collections.abc import Iterator

from surestream.model.sink_resilience import RetryPolicy


def base_wait_ms(policy: RetryPolicy, retry: int) -> float:
    """The wait before retry number ``retry`` (1 = the second attempt), without jitter:
    ``initial * multiplier ** (retry - 1)``, at most ``max_backoff_ms``."""
    if retry < 1:
        raise ValueError(f"retry numbers start at 1, not {retry}")
    wait = float(policy.initial_backoff_ms)
    for _ in range(retry - 1):
        wait *= policy.multiplier
        if wait >= policy.max_backoff_ms:
            break
    return min(wait, float(policy.max_backoff_ms))


def jittered_ms(wait: float, jitter: float, rng: random.Random) -> float:
    """``wait`` moved by a uniform fraction in ``[-jitter, +jitter]`` of itself."""
    return max(0.0, wait * (1.0 + jitter * rng.uniform(-1.0, 1.0)))


def schedule_ms(policy: RetryPolicy, rng: random.Random | None = None) -> Iterator[float]:
    """The waits before the 2nd, 3rd, ... attempts (``max_attempts - 1`` of them)."""
    rng = rng or random.Random()
    for retry in range(1, policy.max_attempts):
        yield jittered_ms(base_wait_ms(policy, retry), policy.jitter, rng)
