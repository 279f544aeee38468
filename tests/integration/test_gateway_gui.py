"""The original's web GUI files served by the gateway's GET on a real farm: from the folder
the site names, nothing outside it, and the POSTs of the page still answered beside."""

from __future__ import annotations

import socket
import time
from pathlib import Path
from typing import Any

import pytest

from gateway.client import send
from gateway.framing import Framing
from tests.conftest import free_port, wait_for

pytestmark = pytest.mark.integration


def get(port: int, target: str, timeout: float = 10.0) -> tuple[int, dict[str, str], bytes]:
    """One GET as a browser sends it, the raw target unchanged; (status, headers, body)."""
    request = f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAccept: */*\r\n\r\n"
    deadline = time.monotonic() + timeout
    data = b""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(request.encode("latin-1"))
        while time.monotonic() < deadline:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
            head, sep, body = data.partition(b"\r\n\r\n")
            if sep:
                lines = head.decode("latin-1").split("\r\n")
                headers = dict(line.split(": ", 1) for line in lines[1:])
                if len(body) >= int(headers["Content-Length"]):
                    return int(lines[0].split()[1]), headers, body
    raise AssertionError(f"no whole answer: {data[:300]!r}")


def test_the_gui_folders_files_and_nothing_else(make_farm: Any, tmp_path: Path) -> None:
    gui = tmp_path / "browser"
    (gui / "lib").mkdir(parents=True)
    (gui / "index.html").write_text("<html>the original's page</html>")
    (gui / "lib" / "monitor.js").write_text("var monitors = [];")
    (gui / "logo.png").write_bytes(b"\x89PNG" + bytes(range(256)) * 40)
    (tmp_path / "secret.txt").write_text("outside the folder")
    (gui / "link.txt").symlink_to(tmp_path / "secret.txt")
    port = free_port()
    farm = make_farm(af_gateway_port=port, af_gateway_gui_folder=str(gui))
    farm.start_server()
    wait_for(lambda: "users" in send(port, {"get": {"type": "users"}}), 15, "the gateway to serve")

    status, headers, body = get(port, "/")
    assert (status, body) == (200, b"<html>the original's page</html>")
    assert headers["Content-Type"].startswith("text/html")
    status, headers, body = get(port, "/lib/monitor.js?v=1")
    assert status == 200 and headers["Content-Type"].startswith("text/javascript")
    status, headers, body = get(port, "/logo.png")
    assert status == 200 and headers["Content-Type"] == "image/png" and len(body) == 4 + 256 * 40
    for target in (
        "/../secret.txt",
        "/%2e%2e/secret.txt",
        "/lib%2f..%2f..%2fsecret.txt",
        "/%2E%2E%2F%2E%2E%2Fsecret.txt",
        str(tmp_path / "secret.txt"),
        "/link.txt",
        "/lib",  # a folder without an index
        "/nothing.js",
    ):
        status, headers, body = get(port, target)
        assert status == 404 and b"outside" not in body, target
        assert headers["Content-Type"].startswith("text/plain"), target
    # the page's own requests are still answered beside its files: config, then files
    assert "users" in send(port, {"get": {"type": "users"}}, Framing.HTTP)
    config = send(port, {"get": {"type": "config"}}, Framing.HTTP)["cgru_config"]
    assert config[-1]["cgru_environment"]["servedir"] == str(gui)
    assert config[-2]["cgru_config"]["af_gateway_port"] == port
    assert not any("conninfo" in key for part in config for key in part.get("cgru_config", {}))
    listed = send(port, {"get": {"type": "files", "path": "lib"}}, Framing.HTTP)
    assert listed == {"path": "lib", "files": ["monitor.js"]}
    assert "Traceback" not in farm.log("afserver")


def test_without_a_folder_a_404_says_how_to_set_one(make_farm: Any) -> None:
    port = free_port()
    farm = make_farm(af_gateway_port=port)
    farm.start_server()
    wait_for(lambda: "users" in send(port, {"get": {"type": "users"}}), 15, "the gateway to serve")
    status, _, body = get(port, "/index.html")
    assert status == 404 and b"af_gateway_gui_folder" in body
