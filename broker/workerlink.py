"""The private link between afserver's broker and its own workers.

Workers never use the farm's port. afserver makes a folder only its user may enter (0700),
anew at each start; the broker binds a second ROUTER on an ipc socket in it, and a worker's
READY must carry that start's secret. A second afserver, a peer on the network, or another
user on the host therefore cannot announce itself as a worker and be handed the farm's
requests; the farm's port refuses every worker message.
"""

from __future__ import annotations

import hmac
import os
import secrets
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass

ENDPOINT_ENV = "AFSERVER_WORKERS"
SECRET_ENV = "AFSERVER_WORKER_SECRET"


@dataclass(frozen=True, slots=True)
class WorkerLink:
    endpoint: str  # ipc://<private folder>/workers
    secret: str

    def env(self) -> dict[str, str]:
        """What afserver passes to its children."""
        return {ENDPOINT_ENV: self.endpoint, SECRET_ENV: self.secret}

    def admits(self, secret: object) -> bool:
        return isinstance(secret, str) and hmac.compare_digest(secret, self.secret)


def create() -> tuple[WorkerLink, str]:
    """A new link in a new private folder (mkdtemp makes it 0700); returns the folder too,
    for `remove`. The folder is short (the system's temporary folder): an ipc path must fit
    in 107 bytes, which a deep store folder would not."""
    folder = tempfile.mkdtemp(prefix="afserver-")
    return WorkerLink(f"ipc://{folder}/workers", secrets.token_urlsafe(24)), folder


def remove(folder: str) -> None:
    shutil.rmtree(folder, ignore_errors=True)


def from_env(environ: Mapping[str, str] | None = None) -> WorkerLink | None:
    """The link afserver gave this process; None when it was not started by afserver."""
    env = os.environ if environ is None else environ
    endpoint, secret = env.get(ENDPOINT_ENV, ""), env.get(SECRET_ENV, "")
    if not endpoint or not secret:
        return None
    return WorkerLink(endpoint, secret)
