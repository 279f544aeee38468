#!/bin/sh
# Start script for the Afanasy server: runs afserver from the project's virtualenv, wherever
# the project folder is. Any arguments go to afserver (see: afserver --help).
here=$(cd "$(dirname "$0")/.." && pwd)
if [ ! -x "$here/.venv/bin/afserver" ]; then
  echo "afserver.sh: $here/.venv is missing: run 'make install' in $here first" >&2
  exit 1
fi
# the project's commands (wolwake, wolsleep) for whatever afserver runs
PATH="$here/.venv/bin:$PATH"
export PATH
exec "$here/.venv/bin/afserver" "$@"
