"""Is a port free for afserver, and if not, who holds it.

afserver looks before it starts anything: a second afserver on the same port must stop at
once with one clear line, not start a scheduler and executors that would reach the first
farm (workerlink.py keeps its workers off the first broker in any case)."""

from __future__ import annotations

import errno
import socket


def taken(host: str, port: int) -> bool:
    """True when a listener holds `port` on `host` ("" or "*": every interface). Binds as
    libzmq and uvicorn do (SO_REUSEADDR), so a port in TIME-WAIT counts as free."""
    address = "" if host in ("", "*", "0.0.0.0") else host.strip("[]")
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((address, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return True
            raise
    return False


def holder(port: int) -> str:
    """'pid 123 (afserver …)' for the process listening on `port`, when this user may see it;
    '' otherwise."""
    try:
        import psutil  # only when a port is taken: afserver's supervisor stays small

        for conn in psutil.net_connections(kind="tcp"):
            if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port:
                if conn.pid is None:
                    return ""
                proc = psutil.Process(conn.pid)
                command = " ".join(proc.cmdline()[:4]) or proc.name()
                return f"pid {conn.pid} ({command})"
    except Exception:  # psutil may be refused the table or the process: say less
        return ""
    return ""


def in_use(ports: list[tuple[str, str, int]]) -> str | None:
    """The first of (what, host, port) that is taken, as one line for the operator."""
    for what, host, port in ports:
        if port > 0 and taken(host, port):
            who = holder(port)
            by = f" by {who}" if who else ""
            return f"port {port} ({what}) is in use{by}: is another afserver running?"
    return None
