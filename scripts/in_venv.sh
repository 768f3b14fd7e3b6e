#!/usr/bin/env bash
# Runs a command inside the project's virtual environment, creating .venv and
# installing requirements.txt first when they are missing or out of date.
# Usage: bash scripts/in_venv.sh python -m scripts.train --config configs/digits_cnn.py ...
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
py="${JAXLAB_PYTHON:-python3.11}"
command -v "$py" >/dev/null 2>&1 || py=python3
if [ ! -x .venv/bin/python ]; then
  echo "[jaxlab] creating .venv with $py" >&2
  "$py" -m venv .venv
fi
stamp=.venv/.requirements.sha256
want="$(cat requirements.txt requirements-nodeps.txt | sha256sum | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "[jaxlab] installing requirements.txt into .venv (first run: about a minute)" >&2
  # (this machine's pip config names local indexes that may be absent: hide those notes)
  .venv/bin/python -m pip install --quiet -r requirements.txt 2>&1 | { grep -v "is ignored: it is neither" || true; }
  [ "${PIPESTATUS[0]}" -eq 0 ] || { echo "[jaxlab] pip install failed" >&2; exit 1; }
  .venv/bin/python -m pip install --quiet --no-deps -r requirements-nodeps.txt 2>&1 | { grep -v "is ignored: it is neither" || true; }
  [ "${PIPESTATUS[0]}" -eq 0 ] || { echo "[jaxlab] pip install (no-deps) failed" >&2; exit 1; }
  echo "$want" > "$stamp"
fi
export PATH="$root/.venv/bin:$PATH"
export VIRTUAL_ENV="$root/.venv"
export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-2}"
exec "$@"
