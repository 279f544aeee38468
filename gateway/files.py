"""The original's web GUI files, served on the gateway's GET from one folder a site names.

The page (the original's ``afanasy/browser``) is loaded from the same address it then
POSTs its requests to, so the gateway serves its files too, as the original's server does:
from the root of an original install (its ``af_http_serve_dir``, by default
``CGRU_LOCATION``), where the page finds ``/lib/js/cgru.js`` and its own
``/afanasy/browser/*.js``; ``/`` is the page (``afanasy/browser/index.html``, or an
``index.html`` of the folder itself when a site points at a folder of its own). Only regular files inside the
folder, after every symlink is resolved, are served, up to a size; a target that would
leave the folder (``..``, encoded slashes or dots, a link pointing outside) is simply not
found. What the folder holds is served as it is: the page is the original's, not ours.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote

FILE_MAX = 16 * 1024 * 1024  # the original's page is a few MiB in all; no file of it is larger
INDEX = "index.html"
SITE_INDEX = ("afanasy/browser/index.html", INDEX)  # what "/" is, the first found
TEXT = "text/plain; charset=utf-8"
TYPES = {
    ".html": "text/html; charset=utf-8",
    ".htm": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".txt": TEXT,
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".ico": "image/x-icon",
    ".webp": "image/webp",
    ".woff": "font/woff",
    ".woff2": "font/woff2",
    ".ttf": "font/ttf",
    ".ogg": "audio/ogg",
    ".mp3": "audio/mpeg",
    ".wav": "audio/wav",
}
OTHER = "application/octet-stream"


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    content_type: str
    body: bytes


def gui_folder(configured: str, environ: Any = os.environ) -> str:
    """af_gateway_gui_folder, else the original install found through CGRU_LOCATION;
    "" when neither."""
    if configured:
        return configured
    return str(environ.get("CGRU_LOCATION", ""))


def content_type(name: str) -> str:
    return TYPES.get(os.path.splitext(name)[1].lower(), OTHER)


def _text(status: int, text: str) -> Answer:
    return Answer(status, TEXT, (text + "\n").encode())


def relative(target: str) -> list[str] | None:
    """The target's path as names inside the folder, or None when it could leave it."""
    path = target.split("?", 1)[0].split("#", 1)[0]
    if not path.startswith("/"):
        return None  # only the origin form: no absolute URI, no '*'
    path = unquote(path, errors="strict") if "%" in path else path
    if "\x00" in path or "\\" in path:
        return None
    names = [n for n in path.split("/") if n not in ("", ".")]
    if any(n == ".." for n in names):
        return None
    return names


def locate(folder: str, target: str) -> Path | str:
    """The file a target names inside the folder, or why not (a text for a 404)."""
    if not folder:
        return (
            "no web GUI here: set af_gateway_gui_folder to an original install's root "
            "(the folder holding afanasy/browser and lib), or CGRU_LOCATION"
        )
    try:
        root = Path(folder).resolve(strict=True)
    except (OSError, RuntimeError):
        return f"the web GUI folder {folder} is not found"
    if not root.is_dir():
        return f"the web GUI folder {folder} is not a folder"
    try:
        names = relative(target)
    except UnicodeDecodeError:
        names = None
    if names is None:
        return f"not found: {target[:200]}"
    if not names:
        index = [n for n in SITE_INDEX if (root / n).is_file()]
        if not index:
            return f"no web GUI in {folder}: neither {' nor '.join(SITE_INDEX)} is there"
        names = index[0].split("/")
    try:
        path = root.joinpath(*names).resolve(strict=True)
        if path.is_dir():
            path = (path / INDEX).resolve(strict=True)
    except (OSError, RuntimeError, ValueError):
        return f"not found: {target[:200]}"
    if path != root and root not in path.parents:
        return f"not found: {target[:200]}"  # a link out of the folder: not ours to serve
    return path


def _always(_size: int) -> bool:
    return True


def serve(
    folder: str, target: str, size_max: int = FILE_MAX, room: Callable[[int], bool] = _always
) -> Answer:
    """The answer to one GET: the file, or a 404 (403 for one too large, 503 when `room`
    says the gateway's memory budget has no room for it now) saying why."""
    found = locate(folder, target)
    if isinstance(found, str):
        return _text(404, found)
    try:
        # opened once, without blocking (a FIFO would wait for a writer): what is checked
        # is what is read
        fd = os.open(found, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return _text(404, f"not found: {target[:200]}")
    with open(fd, "rb") as f:
        info = os.fstat(f.fileno())
        if not stat.S_ISREG(info.st_mode):
            return _text(404, f"not found: {target[:200]} is not a file")
        if info.st_size > size_max:
            return _text(403, f"{target[:200]} is larger than {size_max} bytes")
        if not room(info.st_size):
            return _text(503, "server busy; retry")
        try:
            body = f.read(size_max + 1)
        except OSError:
            return _text(404, f"not found: {target[:200]}")
    if len(body) > size_max:
        return _text(403, f"{target[:200]} is larger than {size_max} bytes")
    return Answer(200, content_type(found.name), body)
