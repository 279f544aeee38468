"""The original's web GUI files: what a GET may reach in the folder, and nothing else."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from gateway import files


@pytest.fixture
def site(tmp_path: Path) -> Path:
    gui = tmp_path / "browser"
    (gui / "lib").mkdir(parents=True)
    (gui / "index.html").write_text("<html>afanasy</html>")
    (gui / "lib" / "monitor.js").write_text("var m = 1;")
    (gui / "lib" / "a b.css").write_text("body{}")
    (gui / "big.png").write_bytes(b"x" * 2000)
    (tmp_path / "secret.txt").write_text("outside")
    (gui / "out.txt").symlink_to(tmp_path / "secret.txt")
    (gui / "outdir").symlink_to(tmp_path)
    (gui / "inside.js").symlink_to(gui / "lib" / "monitor.js")
    os.mkfifo(gui / "fifo.js")
    return gui


def test_files_inside_with_their_types(site: Path) -> None:
    for target, kind, body in (
        ("/", "text/html", b"<html>afanasy</html>"),
        ("/index.html?x=1#top", "text/html", b"<html>afanasy</html>"),
        ("/lib/monitor.js", "text/javascript", b"var m = 1;"),
        ("/lib/", "", None),
        ("/lib/a%20b.css", "text/css", b"body{}"),
        ("//lib/./monitor.js", "text/javascript", b"var m = 1;"),
        ("/inside.js", "text/javascript", b"var m = 1;"),  # a link that stays inside
    ):
        got = files.serve(str(site), target)
        if body is None:
            assert got.status == 404, target  # a folder without an index
            continue
        assert (got.status, got.body) == (200, body), target
        assert got.content_type.startswith(kind)
    assert files.serve(str(site), "/big.png").content_type == "image/png"


@pytest.mark.parametrize(
    "target",
    [
        "/../secret.txt",
        "/lib/../../secret.txt",
        "/%2e%2e/secret.txt",
        "/%2E%2E%2Fsecret.txt",
        "/lib%2F..%2F..%2Fsecret.txt",
        "/..%5csecret.txt",
        f"/{'x/' * 3}%2e%2e/%2e%2e/%2e%2e/%2e%2e/secret.txt",
        "http://evil/secret.txt",
        "secret.txt",
        "*",
        "/out.txt",  # a link to a file outside
        "/outdir/secret.txt",  # through a link to a folder outside
        "/fifo.js",  # not a regular file (and opening it does not block)
        "/index.html%00.js",
        "/%ff%fe",
        "/nothing.js",
    ],
)
def test_nothing_outside_the_folder_or_not_a_file(site: Path, target: str) -> None:
    got = files.serve(str(site), target)
    assert got.status == 404, target
    assert b"outside" not in got.body and got.content_type.startswith("text/plain")


def test_absolute_paths_stay_inside(site: Path, tmp_path: Path) -> None:
    got = files.serve(str(site), str(tmp_path / "secret.txt"))
    assert got.status == 404 and b"outside" not in got.body


def test_bounded_in_size_and_in_the_gateways_budget(site: Path) -> None:
    assert files.serve(str(site), "/big.png", size_max=1000).status == 403
    assert files.serve(str(site), "/big.png", room=lambda size: size < 1000).status == 503
    assert files.serve(str(site), "/big.png", room=lambda size: size == 2000).status == 200


def test_no_folder_says_how_to_get_one(tmp_path: Path) -> None:
    got = files.serve("", "/")
    assert got.status == 404 and b"af_gateway_gui_folder" in got.body
    got = files.serve(str(tmp_path / "none"), "/")
    assert got.status == 404 and b"not found" in got.body
    assert files.gui_folder("", {}) == ""
    assert files.gui_folder("", {"CGRU_LOCATION": "/opt/cgru"}) == "/opt/cgru"
    assert files.gui_folder("/srv/gui", {"CGRU_LOCATION": "/opt/cgru"}) == "/srv/gui"


def test_an_original_install_root_serves_its_page_at_slash(tmp_path: Path) -> None:
    cgru = tmp_path / "cgru"
    (cgru / "afanasy" / "browser").mkdir(parents=True)
    (cgru / "lib" / "js").mkdir(parents=True)
    (cgru / "afanasy" / "browser" / "index.html").write_text("<html>page</html>")
    (cgru / "lib" / "js" / "cgru.js").write_text("function cgru_ConfigLoad(){}")
    assert files.serve(str(cgru), "/").body == b"<html>page</html>"
    assert files.serve(str(cgru), "/lib/js/cgru.js").content_type.startswith("text/javascript")
    assert files.serve(str(cgru), "/afanasy/browser/").body == b"<html>page</html>"
    empty = tmp_path / "empty"
    empty.mkdir()
    got = files.serve(str(empty), "/")
    assert got.status == 404 and b"afanasy/browser/index.html" in got.body
