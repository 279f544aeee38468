"""wolwake / wolsleep console scripts. Wake-on-LAN arrives with its own issue."""

from __future__ import annotations

import sys


def wolwake() -> None:
    """Send magic packets to wake hosts (not yet: the wake-on-lan issue builds it)."""
    print("wolwake: not yet implemented in this version", file=sys.stderr)
    sys.exit(1)


def wolsleep() -> None:
    """Put this host to sleep (not yet: the wake-on-lan issue builds it)."""
    print("wolsleep: not yet implemented in this version", file=sys.stderr)
    sys.exit(1)
