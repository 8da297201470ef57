#!/usr/bin/env bash
# cmake --install into a temporary prefix, then Debian's python3 imports predtuner_gpu from there
# (found through the prefix's dist-packages folder, with the library that was installed with it)
# and runs a measurement on the installed demo data.
#   test_install.sh BUILD_DIR PYTHON_DIR(relative to the prefix) PYTHON3
set -euo pipefail
build="$1" pydir="$2" py="$3"
if ! "$py" -c "import numpy" 2>/dev/null; then
  echo "[SKIP] test_python_install: Debian's python3-numpy is not installed"
  exit 77
fi
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
cmake --install "$build" --prefix "$tmp" >/dev/null
test -f "$tmp/$pydir/predtuner_gpu/_paths.py" || { echo "FAIL: no _paths.py under $tmp/$pydir"; exit 1; }
cd "$tmp"
env -u PREDTUNER_GPU_LIBRARY PYTHONPATH="$tmp/$pydir" "$py" - "$tmp" <<'PY'
import os, sys
import predtuner_gpu as pt
from predtuner_gpu import _lib
prefix = os.path.realpath(sys.argv[1])
lib = os.path.realpath(_lib.lib._name)
assert lib.startswith(prefix), f"FAIL: loaded {lib}, not the library installed under {prefix}"
assert os.path.realpath(pt.__file__).startswith(prefix), pt.__file__
knobs = pt.get_knobs_from_file()
assert len(knobs) == 56, len(knobs)
print("installed package loads", lib, "with", len(knobs), "knobs")
PY
