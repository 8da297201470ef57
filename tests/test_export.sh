#!/usr/bin/env bash
# PyTorch checkpoints end to end: a .pth.tar checkpoint of the demo LeNet (state_dict under
# "state_dict", saved with DataParallel's "module." prefix) converts to safetensors with
# tools/export_pytorch.py, and measures to the demo's accuracy both converted and read directly
# (also in torch.save's legacy format); a missing file is a one-line error.
# Needs Debian's python3-torch; without it the test is skipped (exit 77), saying so.
set -euo pipefail
src="$1"
cli="$2"
if ! /usr/bin/python3 -c "import torch" 2>/dev/null; then
  echo "[SKIP] test_export: Debian's python3-torch is not installed"
  exit 77
fi
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
/usr/bin/python3 - "$src" "$tmp" <<'PY'
import sys, torch
sys.path.insert(0, sys.argv[1] + "/python"); sys.path.insert(0, sys.argv[1] + "/bench")
from predtuner_gpu.model_zoo.networks import LeNet
from pytorch_infer import load_safetensors
m = LeNet()
m.load_state_dict(load_safetensors(sys.argv[1] + "/zoo/demo/lenet_mnist.safetensors"))
sd = {"module." + k: v for k, v in m.state_dict().items()}
torch.save({"state_dict": sd, "epoch": 5}, sys.argv[2] + "/lenet.pth.tar")
torch.save(m.state_dict(), sys.argv[2] + "/lenet_legacy.pth", _use_new_zipfile_serialization=False)
PY
/usr/bin/python3 "$src/tools/export_pytorch.py" "$tmp/lenet.pth.tar" "$tmp/lenet.safetensors"
out="$("$cli" measure --model lenet_mnist --weights "$tmp/lenet.safetensors" --data "$src/zoo/demo")"
want="$(/usr/bin/python3 -c "import json; print('%.2f' % json.load(open('$src/zoo/demo/demo.json'))['tune_accuracy'])")"
echo "$out" | grep -q "accuracy   $want %" || { echo "FAIL: expected accuracy $want, got: $out"; exit 1; }
# the checkpoint read directly (no conversion), in both of torch.save's formats
for f in lenet.pth.tar lenet_legacy.pth; do
  out="$("$cli" measure --model lenet_mnist --weights "$tmp/$f" --data "$src/zoo/demo")"
  echo "$out" | grep -q "accuracy   $want %" || { echo "FAIL: $f: expected accuracy $want, got: $out"; exit 1; }
done
if err="$(/usr/bin/python3 "$src/tools/export_pytorch.py" "$tmp/none.pth" "$tmp/x.safetensors" 2>&1)"; then
  echo "FAIL: a missing input succeeded"; exit 1
fi
[ "$(echo "$err" | wc -l)" -eq 1 ] && echo "$err" | grep -q "none.pth: cannot read" || { echo "FAIL: $err"; exit 1; }
echo "3 passed, 0 failed"
