#!/usr/bin/env bash
# predtuner-gpu developer entry point.
#
#   scripts/dev.sh demo    build, then run the main job on the bundled demo
#   scripts/dev.sh test    build, run the whole test suite, then again under ASan+UBSan, then smoke-fuzz
#                          every parser (PT_FUZZ_SECONDS per target, default 10)
#   scripts/dev.sh bench   build, run the benchmarks (and PyTorch's side of the comparison)
#   scripts/dev.sh build   configure and build only
#
# Each installs the Debian packages it needs when they are missing (apt-get, root or sudo), then
# configures and builds in build/ (build-asan/ for the sanitizer pass). Extra CMake arguments can
# be passed in PT_CMAKE_ARGS, e.g. PT_CMAKE_ARGS="-DPT_CUDA=OFF".
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${PT_BUILD_DIR:-$ROOT/build}"
JOBS="$(nproc 2>/dev/null || echo 2)"

BUILD_PKGS=(cmake make gcc pkg-config libcjson-dev libcriterion-dev libopenblas-dev libplplot-dev
            libsqlite3-dev libprotobuf-c-dev protobuf-c-compiler libonnx-dev libonnx-testdata plplot-driver-cairo
            libdnnl-dev openmpi-bin libopenmpi-dev)
BENCH_PKGS=(python3 python3-torch python3-numpy)
TEST_PKGS=(python3 python3-torch python3-numpy chromium) # tests/python, and report.html in a browser (test_report.sh)
FUZZ_PKGS=(clang libclang-rt-dev libomp-dev) # libFuzzer and clang's OpenMP, for the smoke fuzzing

log() { printf '== %s\n' "$*" >&2; }

install_missing() {
  local missing=() p
  for p in "$@"; do
    if [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" != "install ok installed" ]; then
      missing+=("$p")
    fi
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "installing missing packages: ${missing[*]}"
  local sudo=()
  [ "$(id -u)" -ne 0 ] && sudo=(sudo)
  "${sudo[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

configure_build() { # dir, extra cmake args...
  local dir="$1"
  shift
  # shellcheck disable=SC2086
  cmake -S "$ROOT" -B "$dir" -DCMAKE_BUILD_TYPE=Release "$@" ${PT_CMAKE_ARGS:-} >"$dir.configure.log" 2>&1 ||
    { cat "$dir.configure.log"; exit 1; }
  grep -E "predtuner-gpu: CUDA|oneDNN:|MPI:" "$dir.configure.log" >&2 || true
  cmake --build "$dir" -j "$JOBS"
}

cmd="${1:-}"
case "$cmd" in
  build)
    install_missing "${BUILD_PKGS[@]}"
    configure_build "$BUILD"
    ;;
  demo)
    install_missing "${BUILD_PKGS[@]}"
    configure_build "$BUILD"
    log "predtuner-gpu tune (the bundled demo: LeNet, qos_p1 + cost_linear, 1000 iterations)"
    "$BUILD/predtuner-gpu" tune --overwrite # a demo run again replaces the last one's results
    ;;
  test)
    install_missing "${BUILD_PKGS[@]}" "${TEST_PKGS[@]}"
    configure_build "$BUILD"
    log "test suite (release build)"
    # two tests at a time: the suite's process starts, interpreters and MPI launches leave a core
    # idle otherwise (the sanitizer pass on 2 cores: 692 s one at a time, 601 s two at a time)
    ctest --test-dir "$BUILD" --output-on-failure -j2
    # the sanitizer pass is also the suite without oneDNN (the release pass above has it)
    # (and without MPI: Open MPI's own allocations would be LeakSanitizer's reports)
    log "test suite under AddressSanitizer + UndefinedBehaviorSanitizer, built without oneDNN and MPI"
    configure_build "$ROOT/build-asan" -DPT_SANITIZE=ON -DPT_CUDA=OFF -DPT_DNNL=OFF -DPT_MPI=OFF -DPT_BUILD_BENCH=OFF \
      -DCMAKE_BUILD_TYPE=RelWithDebInfo
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    LSAN_OPTIONS=suppressions="$ROOT/tests/lsan.supp" \
      ctest --test-dir "$ROOT/build-asan" --output-on-failure -j2
    secs="${PT_FUZZ_SECONDS:-10}"
    log "smoke fuzzing: each parser's libFuzzer target for $secs s (tests/fuzz)"
    install_missing "${FUZZ_PKGS[@]}"
    CC=clang configure_build "$ROOT/build-fuzz" -DPT_FUZZ=ON -DPT_CUDA=OFF -DPT_DNNL=OFF -DPT_MPI=OFF -DPT_BUILD_TESTS=OFF -DPT_BUILD_BENCH=OFF \
      -DBUILD_SHARED_LIBS=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo
    "$ROOT/tests/fuzz/run.sh" "$ROOT/build-fuzz" "$secs"
    ;;
  bench)
    install_missing "${BUILD_PKGS[@]}" "${BENCH_PKGS[@]}"
    configure_build "$BUILD"
    threads="${PT_BENCH_THREADS:-2}"
    for t in $(printf '%s\n' 1 "$threads" | sort -un); do # the CPU kernel issue's 1 and 2 threads
      log "CPU inference of the zoo networks, $t thread(s): PyTorch (Debian's python3-torch), ours, PyTorch again"
      /usr/bin/python3 "$ROOT/bench/pytorch_infer.py" --threads "$t"
      "$BUILD/bench/bench_infer" --threads "$t"
      /usr/bin/python3 "$ROOT/bench/pytorch_infer.py" --threads "$t"
    done
    # the default, then every knob oneDNN can take and none of them: the decision behind the default
    for m in default all exact; do
      log "knob speedups on the CPU backend (vgg16_cifar10 convolutions, batch 500), PT_CPU_DNNL=$m"
      PT_CPU_DNNL=$m "$BUILD/bench/bench_knobs" --threads "$threads"
    done
    if [ -x "$BUILD/bench/bench_cuda_conv" ]; then # built with CUDA; prints SKIPPED without a GPU
      log "GPU convolution kernels against cuDNN (vgg16_cifar10, resnet18_cifar10, batch 500)"
      "$BUILD/bench/bench_cuda_conv"
    fi
    ;;
  *)
    echo "usage: scripts/dev.sh demo|test|bench|build" >&2
    exit 2
    ;;
esac
