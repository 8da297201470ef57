#!/usr/bin/env bash
# Smoke fuzzing: runs every libFuzzer target for SECONDS from a seed corpus of the repository's own
# fixtures. A crash, a sanitizer report or a multi-line error message (the targets trap on those)
# fails the run; the crashing input is left in the working folder and named.
#   tests/fuzz/run.sh BUILD_DIR [SECONDS]
set -euo pipefail
build="$(cd "$1" && pwd)"
secs="${2:-5}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
seed() { # target, files...
  local t="$1"
  shift
  mkdir -p "$work/$t"
  for f in "$@"; do [ -f "$f" ] && cp "$f" "$work/$t/" || true; done
}
nodes=/usr/share/libonnx-testdata/data/node
seed onnx "$root/tests/fixtures/onnx/tiny_cnn.onnx" "$root/tests/fixtures/onnx/tiny_cnn_view.onnx" "$nodes/test_conv_with_strides_padding/model.onnx" \
  "$nodes/test_gemm_default_vector_bias/model.onnx" "$nodes/test_maxpool_2d_pads/model.onnx" \
  "$nodes/test_batchnorm_example/model.onnx"
seed pth "$root"/tests/fixtures/pth/*.pth "$root"/tests/fixtures/pth/*.pth.tar
seed pickle "$root/tests/fixtures/pth/legacy.pth"
seed safetensors "$root/tests/fixtures/pth/expected.safetensors"
mkdir -p "$work/piped" "$work/json"
{ printf '\x00'; cat <<'JSON'; } > "$work/piped/meta"
{"op_cost": {"conv_0": 10, "relu_1": 1}, "op_knobs": {"conv_0": ["11", "12"], "relu_1": ["11"]},
 "knobs": {"11": {"speedup": 1, "baseline_priority": 0}, "12": {"speedup": 1.5, "devices": ["gpu"]}},
 "tune_labels_path": "l.bin", "conf_path": "c.txt", "fifo_path_r": "r", "fifo_path_w": "w"}
JSON
printf '\x01\x02\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x02\x00\x00\x00\x00\x00\x00\x00\x00\x00\x80\x3f\x00\x00\x00\x40' > "$work/piped/tensor"
{ printf '\x00'; cat "$root/tests/fixtures/knobs_custom.json"; } > "$work/json/knobs"
{ printf '\x01'; cat "$root/tests/fixtures/predtuner_configs.json"; } > "$work/json/configs"
fail=0
for t in onnx pth pickle piped safetensors json; do
  bin="$build/tests/fuzz/fuzz_$t"
  if (cd "$work" && "$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -max_len=1048576 \
      -print_final_stats=1 "$work/$t" > "$work/$t.log" 2>&1); then
    runs="$(grep -Eo 'stat::number_of_executed_units: *[0-9]+' "$work/$t.log" | grep -Eo '[0-9]+$' || echo '?')"
    echo "fuzz_$t: ok, $runs inputs in ${secs}s"
  else
    echo "fuzz_$t: FAILED"
    grep -E "ERROR|SUMMARY|Test unit written|^ +#[0-9]+ .* in " "$work/$t.log" | head -30
    tail -5 "$work/$t.log"
    ls "$work"/crash-* "$work"/leak-* "$work"/timeout-* 2>/dev/null && cp "$work"/crash-* "$work"/leak-* "$work"/timeout-* . 2>/dev/null || true
    fail=1
  fi
done
exit $fail
