"""When a render speaks to a busy server: pure decisions, the time is an argument.

A slow answer is not a lost server. A render that registered again whenever replies were late
added a registration (the costliest message) exactly when the server had the least room, and
10,000 of them doing it at once made a storm. So a render keeps one heartbeat in flight and
waits for its answer before the next, registers with a growing, jittered pause, and leaves it
to the server to say when it is unknown (a reply with a negative id).
"""

from __future__ import annotations

REGISTER_RETRIES_SEC = (2.0, 4.0, 8.0, 16.0, 30.0)  # unanswered registrations: then every 30 s
JITTER = 0.2  # ± this share of each pause: renders started together do not retry together
BEAT_PATIENCE = 3  # heartbeat periods a beat waits for its answer before the next is sent


def register_retry(attempts: int, jitter: float) -> float:
    """The pause after the `attempts`-th unanswered registration (1 = the first);
    `jitter` is a random number in [-1, 1]."""
    base = REGISTER_RETRIES_SEC[min(max(attempts, 1), len(REGISTER_RETRIES_SEC)) - 1]
    return base * (1.0 + JITTER * max(-1.0, min(1.0, jitter)))


def beat_waits(beat_sent: float | None, now: float, heartbeat_sec: float) -> bool:
    """Whether the next heartbeat should wait: the last one is still unanswered, and not for
    so long that its answer was surely lost (then the next goes, and says the same and more)."""
    if beat_sent is None:
        return False
    return now - beat_sent < BEAT_PATIENCE * max(heartbeat_sec, 1.0)
