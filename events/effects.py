"""Effect ids: what makes a system task's effect recognisable when it happens again.

A post command, event or wake queued on the system job gets a stable id when it is queued
(`SystemJob.add`), and each start tells the task which run it is. A run after the first is
a retry: an earlier run may have taken effect (it was under way when the server was killed,
or it failed after a part of its work). Mails carry the id as their Message-ID and webhooks
as their Idempotency-Key, the same in every run, so their receivers can drop a repeat.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass

EFFECT_ID_ENV = "AF_EFFECT_ID"
EFFECT_RUN_ENV = "AF_EFFECT_RUN"
RUN_HEADER = "X-Afanasy-Effect-Run"  # on mails and webhooks: 2 and above mark a retry


@dataclass(frozen=True, slots=True)
class Effect:
    id: str
    run: int = 1

    @property
    def retry(self) -> bool:
        return self.run > 1

    @classmethod
    def from_env(cls, env: Mapping[str, str], data: str) -> Effect:
        """The task's effect id and run; a task started by hand, without them, gets an id
        from its data, so the same event still has the same id."""
        effect_id = env.get(EFFECT_ID_ENV) or hashlib.sha256(data.encode()).hexdigest()[:32]
        try:
            run = max(1, int(env.get(EFFECT_RUN_ENV, "1")))
        except ValueError:
            run = 1
        return cls(effect_id, run)

    def message_id(self, host: str) -> str:
        """A mail's Message-ID (RFC 5322 msg-id): the same for every run of the effect."""
        return f"<afanasy-event-{self.id}@{host or 'localhost'}>"

    def env(self) -> dict[str, str]:
        return {EFFECT_ID_ENV: self.id, EFFECT_RUN_ENV: str(self.run)}
