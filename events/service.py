"""The events service: run by the events executor (or any render with the service) for each
events task. Reads the event JSON the server queued, merges custom data, delivers each method.

Exit 0 when every delivery worked (or none was asked for); 1 otherwise, so the system job
retries the task. Every mail and webhook carries the event's effect id (events/effects.py),
the same in every run, so a receiver drops what a retry delivers again. What happened is printed: it becomes the task's output and, when the task
fails for good, part of the system job's log.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

from config import load_config
from events import delivery
from events.effects import Effect
from events.payload import merged_custom_data, methods_for

DATA_ENV = "AF_EVENT_DATA"


def deliver(
    cfg: Any, payload: dict[str, Any], effect: Effect | None = None
) -> tuple[list[str], list[str]]:
    """(what was done, what failed) for one event payload."""
    effect = effect or Effect.from_env({}, json.dumps(payload, sort_keys=True))
    notes: list[str] = []
    merged = merged_custom_data(payload, notes)
    done: list[str] = [f"note: {n}" for n in notes]
    if effect.retry:
        done.insert(0, f"retry: run {effect.run} of event {effect.id} (receivers drop repeats)")
    failed: list[str] = []
    methods = methods_for(merged, list(payload.get("events", [])), notes)
    if not methods:
        done.append("no method asked for these events: nothing to deliver")
    for method, events in methods.items():
        try:
            if method == "email":
                done.append(delivery.send_email(cfg, merged, payload, events, effect))
            elif method == "webhook":
                done.append(delivery.post_webhooks(merged, payload, events, effect))
            else:
                done.append(delivery.run_method(method, payload))
        except delivery.DeliveryError as exc:
            failed.append(str(exc))
    return done, failed


def main() -> int:
    text = os.environ.get(DATA_ENV, "")
    try:
        payload = json.loads(text)
        if not isinstance(payload, dict):
            raise ValueError("not a JSON object")
    except ValueError as exc:
        print(f"events: the task's data is not an event payload ({exc}): {text[:200]!r}")
        return 1
    done, failed = deliver(load_config(), payload, Effect.from_env(os.environ, text))
    for line in done:
        print(line)
    for line in failed:
        print(f"FAILED: {line}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
