"""Our `afcmd` command works on a CGRU workstation, whose setup puts the original's
afanasy/python (with a top-level afcmd.py) first on PYTHONPATH."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def test_installed_afcmd_runs_with_the_originals_afcmd_py_first_on_pythonpath(
    tmp_path: Path,
) -> None:
    original = tmp_path / "afanasy" / "python"
    original.mkdir(parents=True)
    (original / "afcmd.py").write_text("raise SystemExit('the original afcmd.py was imported')\n")
    script = Path(sys.executable).parent / "afcmd"
    env = {**os.environ, "PYTHONPATH": str(original)}
    shadowed = subprocess.run(
        [sys.executable, "-c", "import afcmd.cli"],
        env=env,
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert shadowed.returncode != 0  # the clash is real: a plain import finds afcmd.py
    ran = subprocess.run(
        [str(script), "--help"], env=env, capture_output=True, text=True, timeout=60, cwd=tmp_path
    )
    assert ran.returncode == 0, ran.stderr
    assert "jlist" in ran.stdout
