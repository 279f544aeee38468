"""Wake-on-LAN: magic packets, broadcast discovery, the wolwake / wolsleep commands."""

import os
import sys


def with_own_bin(path: str) -> str:
    """PATH with this interpreter's bin folder first: the virtualenv's, where wolwake and
    wolsleep are installed. A unit or script that runs .venv/bin/afserver (or afrender)
    does not put that folder on PATH, and the default af_render_cmd_wolwake/wolsleep are
    bare command names."""
    own = os.path.dirname(sys.executable)
    return os.pathsep.join([own, *(p for p in path.split(os.pathsep) if p and p != own)])
