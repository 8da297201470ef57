#!/usr/bin/env bash
# Runs on a lent GPU machine, in the repository root, after scripts/gpu_pack.sh made .gpu/pack.tar.xz
# here: the GPU tests (the implicit-GEMM convolutions, CUDA ops against the CPU backend, fp16, the
# ONNX conformance suites on CUDA, the executor), the GPU benchmarks and a resnet18 tuning run on
# the GPU with measured costs (its tune.log lists every convolution variant choice), each log written to
# $OUT (default ./gpu-out).
#   bash scripts/gpu_device_run.sh [tests|bench|tune|all]   (default all)
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="${OUT:-$ROOT/gpu-out}"
what="${1:-all}"
mkdir -p "$OUT" /tmp/ptgpu
tar -C /tmp/ptgpu -xJf "$ROOT/.gpu/pack.tar.xz"
commit="$(cat /tmp/ptgpu/commit)"
# the binaries carry this checkout's source path for fixtures and the demo: point it here
src="$(strings /tmp/ptgpu/bin/test_exec | grep -m1 -Eo '^/[^ ]*/zoo/demo' | sed 's|/zoo/demo$||')"
if [ -n "$src" ] && [ "$src" != "$ROOT" ]; then mkdir -p "$(dirname "$src")" && ln -sfn "$ROOT" "$src"; fi
cudalibs="$(for n in libcudnn.so.9 libcublas.so.13 libcudart.so.13; do
  f="$(find /usr /opt /usr/local -name "$n" 2>/dev/null | head -1)"; [ -n "$f" ] && dirname "$f"; done | sort -u | tr '\n' ':')"
export LD_LIBRARY_PATH="/tmp/ptgpu/lib:${cudalibs}${LD_LIBRARY_PATH:-}"
export PT_ONNX_TESTDATA=/tmp/ptgpu/onnx
cd /tmp/ptgpu/bin
{
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
  ./predtuner-gpu version
} > "$OUT/gpu_info_$commit.log" 2>&1
rc=0
if [ "$what" = tests ] || [ "$what" = all ]; then
  for t in test_cuda_igemm test_cuda_ops test_cuda_fp16 test_onnx test_exec; do
    ./"$t" --jobs 4 --verbose > "$OUT/gpu_${t}_$commit.log" 2>&1 || rc=1
    echo "$t: $(tail -1 "$OUT/gpu_${t}_$commit.log")"
  done
fi
if [ "$what" = bench ] || [ "$what" = all ]; then
  ./bench_cuda_conv --net all > "$OUT/gpu_bench_cuda_conv_$commit.log" 2>&1 || rc=1
  ./bench_tune --backend cuda --threads 16 --p1-configs 20000 --empirical-configs 32 --empirical-batch 128 \
    > "$OUT/gpu_bench_tune_$commit.log" 2>&1 || rc=1
  # batched empirical evaluation on one stream, for the ratio against the default lanes
  PT_CUDA_LANES=1 ./bench_tune --backend cuda --threads 16 --p1-configs 1 --empirical-configs 32 \
    --empirical-batch 128 > "$OUT/gpu_bench_tune_1lane_$commit.log" 2>&1 || rc=1
  echo "benchmarks: logs in $OUT"
fi
if [ "$what" = tune ] || [ "$what" = all ]; then
  # resnet18_cifar10 (random weights, 1000 tune images labelled by the network) tuned on the GPU with
  # measured QoS and measured cost; configs.json has the best configs' measured speedups
  d=/tmp/ptgpu/resnet18
  ./predtuner-gpu tune --model resnet18_cifar10 --weights "$d/resnet18.pth" --data "$d" \
    --backend cuda --qos-model empirical --cost-model empirical --qos-tuner-threshold 2 --qos-keep-threshold 2 \
    --max-iter 400 --search-batch 64 --time-passes 5 --seed 1 --output "$OUT/tune_resnet18_$commit" \
    > "$OUT/gpu_tune_resnet18_$commit.log" 2>&1 || rc=1
  echo "tune: $(tail -2 "$OUT/gpu_tune_resnet18_$commit.log" | tr '\n' ' ')"
fi
exit $rc
