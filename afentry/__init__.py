"""Console-script entry points that do not depend on a top-level name the original also uses.

A CGRU workstation puts the original's ``afanasy/python`` on PYTHONPATH, and its ``afcmd.py``
would then shadow our ``afcmd`` package: the ``afcmd`` command starts here instead, loads our
package from beside this one, and only then imports its command line."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

_ROOT = Path(__file__).resolve().parent.parent  # the folder that holds our packages


def ours(name: str) -> None:
    """Make ``import name`` give our package, whatever came first on sys.path."""
    folder = _ROOT / name
    loaded = sys.modules.get(name)
    if loaded is not None and Path(getattr(loaded, "__file__", "") or "").parent == folder:
        return
    spec = importlib.util.spec_from_file_location(
        name, folder / "__init__.py", submodule_search_locations=[str(folder)]
    )
    if spec is None or spec.loader is None:
        raise ImportError(f"our package {name!r} is not at {folder}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)


def afcmd() -> None:
    ours("afcmd")
    from afcmd.cli import main

    main()
