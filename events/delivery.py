"""Delivery methods of the events service: email (smtplib), webhook (HTTP POST), and any
site method by name (run as `<method> -jobname "<job>" -jobserial <serial>`, with the
effect id in its environment). A mail's Message-ID and a webhook's Idempotency-Key are the
event's effect id, the same when a retry delivers it again."""

from __future__ import annotations

import html
import json
import os
import smtplib
import subprocess
import urllib.error
import urllib.request
from email.mime.text import MIMEText
from typing import Any

from events.effects import RUN_HEADER, Effect
from events.payload import list_of_strings, title

TIMEOUT_SEC = 10.0


class DeliveryError(Exception):
    pass


def subject_name(payload: dict[str, Any]) -> str:
    """The job's name for job events, the render's for render events."""
    if "render" in payload:
        return str(payload["render"].get("name", "render"))
    return str(payload.get("job", {}).get("name", "job"))


def html_body(payload: dict[str, Any], events: list[str]) -> str:
    """Events, job, user, render and its resources, as the original's mail has them."""
    parts = [f"<p><b>{html.escape(title(events))}</b></p>"]
    for key in ("job", "user", "render"):
        node = payload.get(key)
        if isinstance(node, dict) and node:
            rows = "".join(
                f"<tr><td>{html.escape(str(k))}</td><td>{html.escape(str(v))}</td></tr>"
                for k, v in node.items()
                if k != "host_resources" and not isinstance(v, (dict, list))
            )
            parts.append(f"<p><b>{key}</b></p><table>{rows}</table>")
    resources = payload.get("host_resources")
    if resources:
        rows = "".join(
            f"<tr><td>{html.escape(str(k))}</td><td>{html.escape(str(v))}</td></tr>"
            for k, v in resources.items()
        )
        parts.append(f"<p><b>resources</b></p><table>{rows}</table>")
    return "\n".join(parts)


def send_email(
    cfg: Any, merged: dict[str, Any], payload: dict[str, Any], events: list[str], effect: Effect
) -> str:
    to = list_of_strings(merged.get("emails"))
    if not to:
        raise DeliveryError("email asked for, but no 'emails' in the custom data")
    server = str(cfg["email_smtp_server"])
    host, _, port = server.partition(":")
    message = MIMEText(html_body(payload, events), "html", "utf-8")
    message["Subject"] = f"{title(events)} - {subject_name(payload)}"
    message["From"] = f"noreply@{cfg['email_sender_address_host']}"
    message["To"] = ", ".join(to)
    message["Message-ID"] = effect.message_id(str(cfg["email_sender_address_host"]))
    message[RUN_HEADER] = str(effect.run)
    try:
        with smtplib.SMTP(host or "localhost", int(port or 25), timeout=TIMEOUT_SEC) as smtp:
            user, password = (
                os.environ.get("CGRU_EMAILSEND_USER"),
                os.environ.get("CGRU_EMAILSEND_PASSWORD"),
            )
            if user and password:
                smtp.login(user, password)
            smtp.send_message(message)
    except (OSError, smtplib.SMTPException) as exc:
        raise DeliveryError(f"email to {', '.join(to)} via {server}: {exc}") from exc
    return f"email to {', '.join(to)}"


def post_webhooks(
    merged: dict[str, Any], payload: dict[str, Any], events: list[str], effect: Effect
) -> str:
    urls = list_of_strings(merged.get("webhooks"))
    if not urls:
        raise DeliveryError("webhook asked for, but no 'webhooks' in the custom data")
    body = json.dumps({**payload, "events": events}).encode()
    for url in urls:
        if not url.startswith(("http://", "https://")):
            raise DeliveryError(f"webhook {url!r} is not an http(s) URL")
        headers = {
            "Content-Type": "application/json",
            "Idempotency-Key": effect.id,
            RUN_HEADER: str(effect.run),
        }
        request = urllib.request.Request(url, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT_SEC) as response:  # noqa: S310 - http(s) checked
                if not 200 <= response.status < 300:
                    raise DeliveryError(f"webhook {url}: HTTP {response.status}")
        except (OSError, urllib.error.URLError) as exc:
            raise DeliveryError(f"webhook {url}: {exc}") from exc
    return f"webhook to {', '.join(urls)}"


def run_method(method: str, payload: dict[str, Any]) -> str:
    job = payload.get("job", {})
    argv = [method, "-jobname", str(job.get("name", "")), "-jobserial", str(job.get("serial", ""))]
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise DeliveryError(f"{method}: {exc}") from exc
    if done.returncode != 0:
        raise DeliveryError(f"{method} exited with {done.returncode}: {done.stderr.strip()[-500:]}")
    return f"{method} ran"
