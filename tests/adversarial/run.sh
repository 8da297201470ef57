#!/usr/bin/env bash
# The adversarial corpus (issue "Never a wrong answer"): bad files of every input kind, made here
# from the bundled demo, each run through the command that reads it. Every case must exit with its
# code, say its message fragment on stderr in one line naming the file, print no sanitizer report
# or PLplot abort, and leave no output file (nor a temporary one) behind.
#   tests/adversarial/run.sh PREDTUNER_GPU_BINARY [CASES_FILE]
set -uo pipefail
bin="$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cases="${2:-$root/tests/adversarial/cases.txt}"
demo="$root/zoo/demo"
D="$(mktemp -d)"
trap 'rm -rf "$D"' EXIT
export B="$bin" D demo root

# ---- the corpus: bad copies of the demo's files ----
mk_data() { # folder; copies the demo's data set
  mkdir -p "$D/$1" && cp "$demo"/tune_*.bin "$demo"/test_*.bin "$D/$1/"
}
w="$demo/lenet_mnist.safetensors"
: > "$D/empty.safetensors"
head -c 7 "$w" > "$D/short.safetensors"                                        # not even the header length
head -c 4000 "$w" > "$D/truncated.safetensors"                                 # data cut off
{ printf '\xff\xff\xff\xff\xff\xff\x00\x00'; tail -c +9 "$w"; } > "$D/hugeheader.safetensors"
{ head -c 8 "$w"; printf '{"a": [1, 2'; } > "$D/badjson.safetensors"
printf 'PK\003\004garbage that is no zip archive' > "$D/garbage.pth"
head -c 300 "$demo/lenet_mnist.onnx" > "$D/truncated.onnx"
printf 'not a protobuf at all \377\377\377' > "$D/garbage.onnx"
mk_data short_images && head -c 1000 "$demo/tune_input.bin" > "$D/short_images/tune_input.bin"
mk_data few_labels && head -c 400 "$demo/tune_labels.bin" > "$D/few_labels/tune_labels.bin"
mk_data bad_label && printf '\x63\x00\x00\x00' | dd of="$D/bad_label/tune_labels.bin" bs=1 seek=40 conv=notrunc status=none
mk_data no_test && rm "$D/no_test/test_input.bin"
printf '{"knobs": [' > "$D/knobs_badjson.json"
printf '{"knobs": [{"name": "x", "class": "NoSuchClass"}]}' > "$D/knobs_class.json"
printf '[{"name": "p", "class": "PerforateConv2dStride", "speedup": 1.5, "direction_is_row": true, "stride": 0, "offset": 0}]' \
  > "$D/knobs_stride.json"
printf '{"configs": [' > "$D/configs_badjson.json"
printf '{"configs": [{"knobs": {"no_such_op": "11"}, "speedup": 1.2, "qos": 90}]}' > "$D/configs_op.json"
printf '{"convs.0": {"input": [1, 0], "weight": [0, 1], "output": [0, 1]}}' > "$D/ranges_order.json"
printf '{"nosuch": {"input": [0, 1], "weight": [0, 1], "output": [0, 1]}}' > "$D/ranges_op.json"
printf '{"convs.0": {"input": [0, 1e999], "weight": [0, 1], "output": [0, 1]}}' > "$D/ranges_inf.json"
printf '{"op_cost": {"a": 1}' > "$D/meta_badjson.json"
printf '{"op_cost": {"a": 1}, "op_knobs": {"a": ["11"]}, "knobs": {"11": {"speedup": 1}}}' > "$D/meta_fields.json"
mkdir -p "$D/badjournal" && printf 'this is not an SQLite database, not at all, no.....................' \
  > "$D/badjournal/tuning.sqlite"
mkdir -p "$D/p2bad/models" && printf '{"df": {"11": {"convs.0": "x"}}, "bqos": 90}' > "$D/p2bad/models/p2.json"
mkdir -p "$D/p2nan/models" && printf '{"df": {}, "bqos": 1e999}' > "$D/p2nan/models/p2.json"
mkdir -p "$D/costbad/models" && printf '{"seconds": {"convs.0": {"11": -1}}}' > "$D/costbad/models/cost_profiled.json"
mkdir -p "$D/p1bad/models" && head -c 100 "$w" > "$D/p1bad/models/p1.safetensors"
mkfifo "$D/fifo.safetensors" "$D/fifo.json"
mk_data nan_image && printf '\x00\x00\xc0\x7f' | dd of="$D/nan_image/tune_input.bin" bs=1 conv=notrunc status=none
mk_data inf_image && printf '\x00\x00\x80\x7f' | dd of="$D/inf_image/test_input.bin" bs=1 conv=notrunc status=none
# a good run, whose results the plot cases read
"$bin" tune --max-iter 20 --tune-count 100 --test-count 100 --output "$D/good" --quiet > /dev/null 2>&1 ||
  { echo "adversarial corpus: the good run failed"; exit 1; }

# ---- the cases ----
pass=0
fail=0
while IFS='|' read -r name code frag forbid cmd; do
  [[ -z "$name" || "$name" == \#* ]] && continue
  out="$D/$name.out"
  err="$D/$name.err"
  (cd "$D" && timeout 120 bash -c "$cmd") > "$out" 2> "$err" # exit 124: it hung
  rc=$?
  why=""
  [ "$rc" -eq "$code" ] || why="exit $rc, expected $code"
  [ -z "$why" ] && ! grep -qF -- "$frag" "$err" && why="no '$frag' on stderr"
  [ -z "$why" ] && grep -qE "AddressSanitizer|runtime error|LeakSanitizer|IMMEDIATE EXIT|Segmentation" "$err" &&
    why="a crash or sanitizer report"
  [ -z "$why" ] && [ "$(grep -c '^predtuner-gpu' "$err")" -gt 1 ] && why="the error printed more than once"
  for f in $forbid; do
    [ -z "$why" ] && [ -e "$D/$f" ] && why="it left $f"
  done
  [ -z "$why" ] && [ -n "$(find "$D" -name "*.tmp*" -print -quit)" ] && why="it left a temporary file"
  if [ -z "$why" ]; then
    pass=$((pass + 1))
  else
    fail=$((fail + 1))
    echo "FAIL $name: $why"
    echo "  command: $cmd"
    sed 's/^/  stderr: /' "$err" | tail -5
  fi
done < "$cases"
echo "adversarial corpus: $pass passed, $fail failed"
[ "$fail" -eq 0 ] && [ "$pass" -gt 0 ]
