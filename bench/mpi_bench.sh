#!/usr/bin/env bash
# The MPI benchmark (issue 18): resnet18_cifar10 with random weights on 1000 random tune images,
# an empirical search of 96 configs in batches of 48 (cost_linear, no test, no timing), one thread
# per rank: one process, then mpirun -np 2, in one sitting; the search's seconds from tune.log and
# rank 0's overhead per unit (sending units, taking results in).
#   bench/mpi_bench.sh BUILD_DIR
set -euo pipefail
build="$(cd "${1:-build}" && pwd)" src="$(cd "$(dirname "$0")/.." && pwd)"
cli="$build/predtuner-gpu"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
/usr/bin/python3 - "$tmp" "$src" <<'PY'
import sys, numpy as np, torch
sys.path.insert(0, sys.argv[2] + "/python")
from predtuner_gpu.model_zoo.networks import ResNet18
torch.manual_seed(1)
torch.save(ResNet18().state_dict(), sys.argv[1] + "/resnet18.pth")
rng = np.random.default_rng(1)
for which, n in (("tune", 1000), ("test", 200)):
    (rng.random((n, 3, 32, 32), dtype=np.float32) * 2 - 1).tofile(f"{sys.argv[1]}/{which}_input.bin")
    rng.integers(0, 10, n, dtype=np.int32).tofile(f"{sys.argv[1]}/{which}_labels.bin")
PY
args=(--model resnet18_cifar10 --weights "$tmp/resnet18.pth" --data "$tmp" --threads 1 --qos-model empirical
      --cost-model cost_linear --max-iter 96 --search-batch 48 --time-passes 0 --no-test --seed 1 --quiet)
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'); commit $(git -C "$src" rev-parse --short HEAD)"
"$cli" version | tail -1
launch() { # np args...
  local np="$1"
  shift
  if [ "$np" = 1 ]; then "$cli" tune "$@" >/dev/null 2>&1
  else mpiexec --allow-run-as-root --oversubscribe -np "$np" "$cli" tune "$@" >/dev/null 2>&1; fi
}
p1=(--model resnet18_cifar10 --weights "$tmp/resnet18.pth" --data "$tmp" --tune-count 250 --threads 1 --qos-model qos_p1
    --cost-model cost_linear --max-iter 16 --no-validate --no-test --time-passes 0 --quiet)
for np in 1 2; do
  launch "$np" "${p1[@]}" --output "$tmp/p1_np$np"
  echo "p1 np $np: $(grep -o 'qos_p1 ready in .*' "$tmp/p1_np$np/tune.log")"
  grep -o "MPI: .*" "$tmp/p1_np$np/tune.log" || true
done
cmp -s "$tmp/p1_np1/models/p1.safetensors" "$tmp/p1_np2/models/p1.safetensors" && echo "p1.safetensors: identical"
for np in 1 2; do
  launch "$np" "${args[@]}" --output "$tmp/np$np"
  echo "np $np: $(grep -o 'search: .*' "$tmp/np$np/tune.log")"
  grep -o "MPI: .*" "$tmp/np$np/tune.log" || true
done
