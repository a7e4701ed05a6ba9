#!/usr/bin/env bash
# ctest's entry to one file of the server suite: pytest from the project's .venv (made by
# scripts/setup.sh, which `make test` runs first). Without the venv (an air-gapped GPU host) the
# test is skipped (exit 77) with a line saying why.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
py="$here/../../.venv/bin/python"
if [[ ! -x "$py" ]]; then
  echo "server tests need the Python venv: run scripts/setup.sh (no $py)"
  exit 77
fi
cd "$here"
exec "$py" -m pytest -q -p no:cacheprovider -rfE "$@"
