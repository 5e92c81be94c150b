#!/usr/bin/env bash
# Create .venv (if missing) and install ASIF Platform with its test extras.
# torch is installed first from the local 2.13.0 CPU wheel; pyproject pins that
# exact release, so nothing can pull a multi-GB CUDA build afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/pip" install -qq --disable-pip-version-check 'torch==2.13.0'
"$VENV/bin/pip" install -qq --disable-pip-version-check -e '.[test]'
