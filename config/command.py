"""What afserver and afrender share as commands: their arguments' parser and their refusals.

They are long-running processes that stay up for months on every farm host: argparse costs
them 0.3 MB where click costs 3.3 MB (afcmd, a short-lived tool, keeps click)."""

from __future__ import annotations

import argparse
import sys
from typing import NoReturn


def parser(description: str) -> argparse.ArgumentParser:
    return argparse.ArgumentParser(description=description)


def fail(text: str) -> NoReturn:
    """A refusal to start, said as click says it (afcmd's words): exit code 1."""
    print(f"Error: {text}", file=sys.stderr)
    sys.exit(1)
