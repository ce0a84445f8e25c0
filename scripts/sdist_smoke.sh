#!/usr/bin/env bash
# Build the sdist, install it in a fresh virtual environment (pip install --no-cache-dir; the
# dependencies come from the package index) and run a short ladder scan and a zoo model from an
# empty directory, so nothing of the checkout can be imported by accident.
#   scripts/sdist_smoke.sh            # from the repository root; uses dist/ and a temporary venv
#   SDIST=dist/snnp-0.2.0.tar.gz scripts/sdist_smoke.sh      # test a given sdist
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
if [ -z "${SDIST:-}" ]; then
    "$PY" -m venv "$work/build-venv"
    "$work/build-venv/bin/python" -m pip install -q --upgrade pip build
    "$work/build-venv/bin/python" -m build --sdist --outdir "$work/dist" .
    SDIST=$(ls "$work"/dist/snnp-*.tar.gz)
fi
echo "sdist: $SDIST ($(tar tzf "$SDIST" | wc -l) files)"
"$PY" -m venv "$work/venv"
. "$work/venv/bin/activate"
python -m pip install -q --upgrade pip
python -m pip install -q --no-cache-dir "$SDIST"
cd "$(mktemp -d -p "$work")"
snnp ladder --presets smeam --max-iter 20 --out x
test -s x/ladder.md && test -s x/ladder.json
python -c "import snnp; print(snnp.load('Si/snnp_small')); snnp.show_config()"
echo "sdist smoke test passed"
