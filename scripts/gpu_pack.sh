#!/usr/bin/env bash
# Packs what a lent GPU machine needs to run the GPU tests and benchmarks. Such a machine has the
# NVIDIA driver and CUDA libraries but none of our build dependencies, so this takes the binaries
# built here (build/), every shared library they load that is neither the C library's nor CUDA's,
# the ONNX test cases of the op types we import, the data of a resnet18 tuning run, and writes .gpu/pack.tar.xz (git-ignored; give the
# device tool carry [".gpu"]). On the device:  bash scripts/gpu_device_run.sh  (logs go to $OUT).
#   scripts/gpu_pack.sh [BUILD_DIR]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${1:-$ROOT/build}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/bin" "$work/lib" "$work/onnx/node" "$work/onnx/pytorch-converted" "$ROOT/.gpu"
bins=("$BUILD/predtuner-gpu" "$BUILD/bench/bench_cuda_conv" "$BUILD/bench/bench_tune" "$BUILD/bench/bench_infer")
for t in test_cuda_igemm test_cuda_ops test_cuda_fp16 test_onnx test_exec; do bins+=("$BUILD/tests/$t"); done
for b in "${bins[@]}"; do
  [ -x "$b" ] || { echo "gpu_pack: $b is missing (build with CUDA first: scripts/dev.sh build)" >&2; exit 1; }
  cp "$b" "$work/bin/"
done
cp "$BUILD"/libpredtuner.so* "$work/lib/" 2>/dev/null || true
# shared libraries: everything ldd resolves except glibc's own and CUDA's (the device has its own)
for b in "${bins[@]}"; do ldd "$b"; done | awk '/=> \// {print $3}' | sort -u | while read -r lib; do
  case "$(basename "$lib")" in
    libc.so*|libm.so*|libdl.so*|libpthread.so*|librt.so*|ld-linux*|libgcc_s.so*|libstdc++.so*) ;;
    libcuda.so*|libcudart.so*|libcublas*|libcudnn*|libnvrtc*|libnvJitLink*) ;;
    *) cp -L "$lib" "$work/lib/" ;;
  esac
done
data=/usr/share/libonnx-testdata/data
for d in "$data"/node/test_*; do
  case "$(basename "$d")" in
    test_conv*|test_basic_conv*|test_gemm*|test_matmul_*|test_relu*|test_tanh*|test_maxpool*|test_averagepool*|\
    test_globalaveragepool*|test_batchnorm*|test_add*|test_flatten*|test_reshape*|test_softmax*|test_identity*|\
    test_dropout*|test_training_dropout*|test_constant) cp -r "$d" "$work/onnx/node/" ;;
  esac
done
cp -r "$data"/pytorch-converted/test_* "$work/onnx/pytorch-converted/"
# resnet18_cifar10 with random weights (binary16 in the checkpoint, to fit the carry) and random
# images on 256 levels (they compress) labelled by that network: the GPU tuning run's data
mkdir -p "$work/resnet18"
/usr/bin/python3 - "$work/resnet18" "$ROOT" <<'PY'
import sys, numpy as np, torch
sys.path.insert(0, sys.argv[2] + "/python")
from predtuner_gpu.model_zoo.networks import ResNet18
torch.manual_seed(3)
net = ResNet18().eval()
sd = {k: v.half() if v.is_floating_point() else v for k, v in net.state_dict().items()}
torch.save(sd, sys.argv[1] + "/resnet18.pth")
net.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in sd.items()})
rng = np.random.default_rng(3)
for which, n in (("tune", 1000), ("test", 500)):
    x = (rng.integers(0, 256, (n, 3, 32, 32)).astype(np.float32) / 127.5 - 1).astype(np.float32)
    x.tofile(f"{sys.argv[1]}/{which}_input.bin")
    with torch.no_grad():
        net(torch.from_numpy(x)).argmax(1).numpy().astype(np.int32).tofile(f"{sys.argv[1]}/{which}_labels.bin")
PY
git -C "$ROOT" rev-parse --short HEAD > "$work/commit"
tar -C "$work" -cJf "$ROOT/.gpu/pack.tar.xz" bin lib onnx resnet18 commit
echo "wrote $ROOT/.gpu/pack.tar.xz ($(du -h "$ROOT/.gpu/pack.tar.xz" | cut -f1)) for commit $(cat "$work/commit")"
