"""The README's quick start, run as written against a real afserver --local-render.

Its blocks are read from README.md, so they cannot drift: each ```sh block is run (from the
checkout, as a newcomer would) and what it prints must match the ```text block after it.
In the README `ws01` stands for the host's name, `you` for the login, and `…` for what
varies (times, pids, ids, memory); the defaults' ports stand for the test's own. Spaces
and line breaks are compared loosely (table widths and wrapped notes follow the names).
"""

from __future__ import annotations

import getpass
import json
import re
import socket
import subprocess
import time
import urllib.request

import pytest

from config.defaults import DEFAULTS
from tests.conftest import ROOT, STARTUP_SEC, Farm, free_port, load_slack
from workers.scheduler.renders import BITS as RENDER_BITS
from workers.scheduler.states import BITS as TASK_BITS

pytestmark = pytest.mark.integration

README = ROOT / "README.md"
SECTIONS = ("Quick start", "Metrics: Prometheus and Grafana")
HOST, USER = "ws01", "you"  # what the README writes for the host's name and the login
FENCE = re.compile(r"^```(\w*)\n(.*?)^```$", re.S | re.M)


def section(title: str) -> str:
    text = README.read_text()
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end > 0 else len(text)]


def examples(title: str) -> list[tuple[str, str]]:
    """(command, expected output) for each ```sh block followed by a ```text block."""
    blocks = [(m.group(1), m.group(2)) for m in FENCE.finditer(section(title))]
    pairs = []
    for (lang, body), (next_lang, expected) in zip(blocks, blocks[1:], strict=False):
        if lang == "sh" and next_lang == "text":
            pairs.append((body.strip(), expected))
    return pairs


def flat(text: str) -> str:
    return " ".join(text.split())


def matches(expected: str, actual: str) -> bool:
    """`actual` is `expected` where each `…` stands for any text; spacing loose."""
    pattern = ".*?".join(re.escape(part) for part in flat(expected).split("…"))
    return re.fullmatch(pattern, flat(actual), re.S) is not None


def all_in(expected: str, log: str) -> bool:
    """Each expected line matches a line of `log` (which has more; processes write to it
    at once, so their lines come in any order)."""
    lines = log.splitlines()
    return all(any(matches(want, line) for line in lines) for want in expected.splitlines())


class QuickStart:
    """The farm of `make run`, its names and ports written as the README writes them."""

    def __init__(self, farm: Farm, web_port: int) -> None:
        self.farm, self.web_port = farm, web_port
        host = socket.gethostname().split(".", 1)[0].lower()
        self.words = [(host, HOST), (getpass.getuser(), USER)]

    def as_readme(self, text: str) -> str:
        text = text.replace(str(self.farm.port), str(DEFAULTS["af_serverport"]))
        text = text.replace(str(self.web_port), str(DEFAULTS["af_web_port"]))
        for real, shown in self.words:
            text = re.sub(rf"(?<![\w-]){re.escape(real)}(?![\w-])", shown, text)
        return text

    def run(self, command: str) -> str:
        command = command.replace(f":{DEFAULTS['af_web_port']}/", f":{self.web_port}/")
        done = subprocess.run(
            ["bash", "-c", command],
            cwd=ROOT,
            env=self.farm.env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, f"{command}\n{done.stdout}{done.stderr}"
        return self.as_readme(done.stdout)

    def until_printed(self, command: str, expected: str, timeout: float = 60) -> None:
        """Run `command` until it prints `expected` (the farm settles: renders register,
        jobs finish); past the deadline, fail showing both."""
        deadline = time.monotonic() + timeout * load_slack()
        while not matches(expected, out := self.run(command)):
            if time.monotonic() > deadline:
                pytest.fail(f"{command}\n--- the README says:\n{expected}\n--- it prints:\n{out}")
            time.sleep(0.5)


def test_the_quick_start_prints_what_the_readme_says(make_farm) -> None:
    steps = [*examples(SECTIONS[0]), *examples(SECTIONS[1])]
    (first, started), *rest = steps
    assert first == "make run"
    recipe = (ROOT / "Makefile").read_text().split("\nrun:", 1)[1].split("\n\n", 1)[0]
    assert "afserver --local-render" in recipe and "/var/store" in recipe

    web_port = free_port()
    farm = make_farm(af_web_port=web_port)
    config = json.loads(farm.config_file.read_text())
    config["af_store_folder"] = str(farm.tmp / "var" / "store")  # where make run keeps it
    farm.config_file.write_text(json.dumps(config))
    quick = QuickStart(farm, web_port)
    farm.start_server("--local-render")
    deadline = time.monotonic() + STARTUP_SEC * load_slack()
    while not all_in(started, log := quick.as_readme(farm.log("afserver"))):
        if time.monotonic() > deadline:
            pytest.fail(f"make run\n--- the README says:\n{started}--- its log:\n{log}")
        time.sleep(0.2)

    for command, expected in rest:
        if "job submit" in command:  # once: a repeat would be another job
            out = quick.run(command)
            assert matches(expected, out), f"{command}\n--- README:\n{expected}--- got:\n{out}"
            continue
        quick.until_printed(command, expected)

    monitor = re.search(r"<(http://127\.0\.0\.1:\d+/monitor/jobs)>", section(SECTIONS[0]))
    assert monitor is not None and monitor.group(1) in quick.as_readme(farm.log("afserver"))
    url = monitor.group(1).replace(f":{DEFAULTS['af_web_port']}/", f":{web_port}/")
    with urllib.request.urlopen(url, timeout=30) as page:
        assert page.status == 200 and b"<html" in page.read().lower()


def test_every_state_code_is_in_the_readme_table_and_no_other() -> None:
    text = section("State codes")
    tasks, renders = text.split("\nRenders", 1)
    codes = lambda part: set(re.findall(r"^\| `([^`]+)` \|", part, re.M))  # noqa: E731
    assert codes(tasks) == {*TASK_BITS, "-"}
    assert codes(renders) == {*RENDER_BITS, "OFF"}


def test_every_make_target_in_the_readme_table_exists() -> None:
    table = re.findall(r"^\| `make ([\w-]+)` \|", section("Quick start"), re.M)
    phony = (ROOT / "Makefile").read_text().split(".PHONY:", 1)[1].split("\n", 1)[0].split()
    assert table and set(table) == set(phony) - {"clean"}
