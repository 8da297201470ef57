#!/usr/bin/env bash
# Tuning over an MPI job (docs/distributed.md): with the same seed and options, configs.json and
# the journal's QoS values are the same for 1, 2 and 3 ranks (timings aside) and for a run without
# mpirun — for empirical QoS and for qos_p1 (whose entries are spread too), on the demo and on a zoo
# network with random weights, with rank 0 measuring too or not (--mpi-master-only); qos_p2's and
# cost_profiled's models built over ranks equal one process's; a rank started with other data
# stops the job with one message naming it; a worker killed mid-run stops it with one message
# naming the rank and its unit, and --resume loses and re-evaluates nothing; a worker whose backend
# fails on some configs makes them failed configs (tests/mpi_api.c, the C API); several ranks on a
# node take GPUs of their own; tune-binary runs with a copy of the binary's folder per rank, and two
# ranks of a node that would share one binary's FIFOs are refused before any binary starts.
#   test_mpi.sh SOURCE_DIR CLI MPIEXEC MPI_API FAKE_HPVM_BINARY
set -euo pipefail
src="$1" cli="$2" mpiexec="$3" api="$4" fakebin="$5"
if "$cli" version | grep -q "^mpi: not built"; then
  echo "[SKIP] test_mpi: built without MPI (Debian: openmpi-bin libopenmpi-dev)"
  exit 77
fi
if ! /usr/bin/python3 -c "import numpy, torch" 2>/dev/null; then # the zoo network's half needs them
  echo "[SKIP] test_mpi: Debian's python3 has no numpy or torch (python3-numpy python3-torch; scripts/dev.sh test installs them)"
  exit 77
fi
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
# root in CI containers; more ranks than cores on a 2-core machine; one thread per rank
mpi=("$mpiexec" --allow-run-as-root --oversubscribe)
common=(--model lenet_mnist --weights "$src/zoo/demo/lenet_mnist.safetensors" --data "$src/zoo/demo" --tune-count 150
        --test-count 100 --batch-size 50 --threads 1 --time-passes 0 --seed 3 --max-iter 55 --search-batch 25
        --qos-keep-threshold 3 --dump-all --quiet --backend cpu)

run() { # cmd name np|0 args...: np 0 is a run without mpirun
  local cmd="$1" name="$2" np="$3"
  shift 3
  if [ "$np" = 0 ]; then
    "$cli" "$cmd" --output "$tmp/$name" "$@" >/dev/null 2>"$tmp/$name.err" || { cat "$tmp/$name.err"; fail "$name"; }
  else
    "${mpi[@]}" -np "$np" "$cli" "$cmd" --output "$tmp/$name" "$@" >/dev/null 2>"$tmp/$name.err" ||
      { cat "$tmp/$name.err"; fail "$name"; }
  fi
}
tune() { # name np|0 args...
  local name="$1" np="$2"
  shift 2
  run tune "$name" "$np" "${common[@]}" "$@"
}

same() { # reference other [min journal rows]: configs.json without timings, and the journal's configs and QoS
  /usr/bin/env python3 - "$tmp/$1" "$tmp/$2" "${3:-50}" <<'PY'
import json, sqlite3, sys
def load(d):
    c = json.load(open(d + "/configs.json"))
    for k in ("timing", "search"):
        c.pop(k, None)
    c["baseline"].pop("exact_seconds", None)
    for x in c["configs"]:
        x.pop("measured_speedup", None), x.pop("measured_seconds", None)
    rows = sqlite3.connect(d + "/tuning.sqlite").execute(
        "SELECT config, qos, cost, predicted, status FROM evals ORDER BY id").fetchall()
    return c, rows
a, b = load(sys.argv[1]), load(sys.argv[2])
assert a[0] == b[0], f"configs.json differs: {sys.argv[1]} vs {sys.argv[2]}"
assert a[1] == b[1], f"the journals differ: {sys.argv[1]} vs {sys.argv[2]}"
assert len(a[1]) >= int(sys.argv[3]) and a[0]["configs"], "a real search"
PY
}

tune emp_plain 0 --qos-model empirical --cost-model cost_linear
for np in 1 2 3; do
  tune "emp$np" "$np" --qos-model empirical --cost-model cost_linear
  same emp_plain "emp$np" || fail "empirical QoS with $np ranks"
done
grep -q "MPI job of 3 ranks" "$tmp/emp3/tune.log" || fail "the 3-rank run does not say it ran on 3 ranks"
units="$(sed -n 's/.*MPI: \([0-9]*\) units sent to workers.*/\1/p' "$tmp/emp3/tune.log")"
[ "${units:-0}" -ge 4 ] || fail "the 3-rank run sent ${units:-no} units to its workers"
tune emp_master 2 --qos-model empirical --cost-model cost_linear --mpi-master-only
same emp_plain emp_master || fail "--mpi-master-only"

# qos_p1: the entries' outputs, validation and test spread; the model file is one process's
tune p1_plain 0 --qos-model qos_p1 --cost-model cost_linear
for np in 1 2 3; do
  tune "p1_$np" "$np" --qos-model qos_p1 --cost-model cost_linear
  same p1_plain "p1_$np" || fail "qos_p1 with $np ranks"
  cmp -s "$tmp/p1_plain/models/p1.safetensors" "$tmp/p1_$np/models/p1.safetensors" || fail "p1.safetensors of $np ranks"
done
grep -q "MPI: [1-9][0-9]* units sent" "$tmp/p1_3/tune.log" || fail "qos_p1 on 3 ranks sent no units"

# a zoo network with random weights (alexnet2_cifar10, 48 random images labelled by the network
# itself, six knobs), empirical QoS and qos_p1 on 1, 2 and 3 ranks
mkdir -p "$tmp/zoo"
/usr/bin/python3 - "$tmp/zoo" "$src" <<'PY'
import sys, numpy as np, torch
sys.path.insert(0, sys.argv[2] + "/python")
from predtuner_gpu.model_zoo.networks import AlexNet2
torch.manual_seed(2)
net = AlexNet2().eval()
torch.save(net.state_dict(), sys.argv[1] + "/alexnet2.pth")
rng = np.random.default_rng(2)
for which, n in (("tune", 48), ("test", 24)):
    x = rng.random((n, 3, 32, 32), dtype=np.float32) * 2 - 1
    x.tofile(f"{sys.argv[1]}/{which}_input.bin")
    with torch.no_grad():
        net(torch.from_numpy(x)).argmax(1).numpy().astype(np.int32).tofile(f"{sys.argv[1]}/{which}_labels.bin")
PY
cat >"$tmp/zoo/knobs.json" <<'JSON'
[{"class": "FP32Baseline", "name": "exact"},
 {"class": "FP16Approx", "name": "fp16", "exp_speedup": 1.5},
 {"class": "PerforateConv2dStride", "name": "rows2", "direction_is_row": true, "stride": 2, "offset": 1, "use_fp16": false, "exp_speedup": 1.9},
 {"class": "PerforateConv2dStride", "name": "cols3", "direction_is_row": false, "stride": 3, "offset": 0, "use_fp16": true, "exp_speedup": 1.5},
 {"class": "Conv2dSampling", "name": "samp2", "skip_every": 2, "skip_offset": 1, "interp_rate": 1.0, "use_fp16": false, "exp_speedup": 1.8},
 {"class": "PromiseSim", "name": "promise7", "noise_level": 7, "exp_speedup": 4.0, "devices": ["cpu"]}]
JSON
zoo=(--model alexnet2_cifar10 --weights "$tmp/zoo/alexnet2.pth" --data "$tmp/zoo" --knobs "$tmp/zoo/knobs.json"
     --batch-size 24 --threads 1 --time-passes 0 --seed 4 --max-iter 30 --search-batch 10 --qos-tuner-threshold 5
     --qos-keep-threshold 10 --cost-model cost_linear --dump-all --quiet --backend cpu)
for q in empirical qos_p1; do
  for np in 1 2 3; do run tune "zoo_${q}_$np" "$np" "${zoo[@]}" --qos-model "$q"; done
  same "zoo_${q}_1" "zoo_${q}_2" 25 || fail "alexnet2 with $q: 2 ranks"
  same "zoo_${q}_1" "zoo_${q}_3" 25 || fail "alexnet2 with $q: 3 ranks"
done

# qos_p2 and cost_profiled built over 3 ranks (the sensitivity report builds both): the same p2.json,
# every (op, knob) timed, the same losses
run sensitivity p2_plain 0 "${zoo[@]:0:12}" --backend cpu --qos-model qos_p2
run sensitivity p2_3 3 "${zoo[@]:0:12}" --backend cpu --qos-model qos_p2 --mpi-time-shared
grep -q "timings (cost_profiled, measured speedups) too" "$tmp/p2_3/sensitivity.log" || fail "cost_profiled not spread"
cmp -s "$tmp/p2_plain/models/p2.json" "$tmp/p2_3/models/p2.json" || fail "p2.json of 3 ranks"
/usr/bin/env python3 - "$tmp/p2_plain" "$tmp/p2_3" <<'PY' || fail "cost_profiled or the losses of 3 ranks differ"
import json, sys
prof = lambda d: sorted((op, k) for op, ks in json.load(open(d + "/models/cost_profiled.json"))["seconds"].items() for k in ks)
loss = lambda d: sorted((e["op"], e["knob"], e["qos_loss"]) for e in json.load(open(d + "/sensitivity.json"))["entries"])
a, b = sys.argv[1:]
assert prof(a) == prof(b) and len(prof(a)) > 30, (len(prof(a)), len(prof(b)))
assert loss(a) == loss(b)
PY
grep -q "MPI: [1-9][0-9]* units sent" "$tmp/p2_3/sensitivity.log" || fail "the 3-rank models sent no units"

# what a job of several ranks refuses, said once: empirical cost (times from different ranks)
set +e
"${mpi[@]}" -np 2 "$cli" tune "${common[@]}" --output "$tmp/cost" --cost-model empirical >/dev/null 2>"$tmp/cost.err"
rc=$?
set -e
[ "$rc" -ne 0 ] || fail "empirical cost under mpirun was accepted"
[ "$(grep -c "the cost model must be cost_linear or cost_profiled" "$tmp/cost.err")" -eq 1 ] ||
  { cat "$tmp/cost.err"; fail "the refusal is not said once"; }

# MPMD: rank 1 gets other data; the job stops at once, one line naming the rank
set +e
"${mpi[@]}" -np 1 "$cli" tune "${common[@]}" --cost-model cost_linear --output "$tmp/bad" : \
  -np 1 "$cli" tune "${common[@]}" --cost-model cost_linear --tune-count 120 --output "$tmp/bad" >/dev/null 2>"$tmp/bad.err"
rc=$?
set -e
[ "$rc" -ne 0 ] || fail "ranks with different data were accepted"
grep -q "rank 1 of 2 made another app than rank 0" "$tmp/bad.err" || { cat "$tmp/bad.err"; fail "the mismatch is not named"; }
[ "$(grep -c "made another app" "$tmp/bad.err")" -eq 1 ] || { cat "$tmp/bad.err"; fail "said more than once"; }
# the best configs' measured speedups timed on 3 ranks (with --mpi-time-shared: these ranks share the
# machine's cores), every unit with the exact network beside it: every best config gets a speedup
tune time_alone 3 --qos-model qos_p1 --cost-model cost_linear --time-passes 2
grep -q "timings (cost_profiled, measured speedups) on rank 0 alone" "$tmp/time_alone/tune.log" ||
  fail "timings spread over ranks that share a device"
tune time3 3 --qos-model qos_p1 --cost-model cost_linear --time-passes 2 --mpi-time-shared
/usr/bin/env python3 - "$tmp/time3" "$tmp/time_alone" <<'PY' || fail "measured speedups on 3 ranks"
import json, math, sys
for d in sys.argv[1:]:
    c = json.load(open(d + "/configs.json"))
    best = [x for x in c["configs"] if x.get("best")]
    assert best and all(math.isfinite(x["measured_speedup"]) and x["measured_speedup"] > 0 for x in best), d
PY
[ "$(sed -n 's/.*MPI: \([0-9]*\) units sent.*/\1/p' "$tmp/time3/tune.log")" -gt \
  "$(sed -n 's/.*MPI: \([0-9]*\) units sent.*/\1/p' "$tmp/time_alone/tune.log")" ] || fail "no timing units were sent"

# a worker killed mid-run: one line naming it and the unit it held; --resume keeps every journaled
# config (unchanged) and evaluates only new ones. Units of 4 configs of 1000 images measured in
# full (no early stopping) take seconds: rank 1 is killed half a second into the second batch,
# while it measures.
kill_args=("${common[@]:0:6}" --test-count 100 --threads 1 --time-passes 0 --seed 5 --max-iter 36 --search-batch 12
           --qos-model empirical --cost-model cost_linear --early-stop off --backend cpu --quiet --output "$tmp/kill")
"${mpi[@]}" -np 3 "$cli" tune "${kill_args[@]}" >/dev/null 2>"$tmp/kill.err" &
job=$!
victim="$(/usr/bin/env python3 - "$tmp/kill" <<'PY'
import os, signal, sqlite3, sys, time
out = sys.argv[1]
def rows():
    try:
        return sqlite3.connect(f"file:{out}/tuning.sqlite?mode=ro", uri=True).execute("SELECT count(*) FROM evals").fetchone()[0]
    except sqlite3.Error:
        return 0
def rank1():
    for p in os.listdir("/proc"):
        try:
            env = open(f"/proc/{p}/environ", "rb").read().split(b"\0")
            cmd = open(f"/proc/{p}/cmdline", "rb").read()
        except (OSError, ValueError):
            continue
        if b"OMPI_COMM_WORLD_RANK=1" in env and out.encode() in cmd:
            return int(p)
t0 = time.time()
while rows() < 12 and time.time() - t0 < 120:
    time.sleep(0.02)
time.sleep(0.5)
pid = rank1()
if pid:
    os.kill(pid, signal.SIGKILL)
print(pid or "")
PY
)"
[ -n "$victim" ] || fail "no rank 1 to kill"
set +e
wait "$job"
rc=$?
set -e
[ "$rc" -ne 0 ] || fail "a job whose worker was killed exited 0"
[ "$(grep -c "^predtuner-gpu: rank 1 of 3 (pid $victim) died holding unit [0-9]* (configs [0-9]*-[0-9]* of 12); the journal keeps every finished batch: the same command with --resume goes on$" "$tmp/kill.err")" -eq 1 ] ||
  { cat "$tmp/kill.err"; fail "the dead worker and its unit are not named once"; }
rows() { /usr/bin/env python3 -c "import sqlite3, sys
print(sqlite3.connect('file:' + sys.argv[1] + '?mode=ro', uri=True).execute('SELECT count(*) FROM evals').fetchone()[0])" "$1"; }
before="$(rows "$tmp/kill/tuning.sqlite")"
[ "$before" -eq 12 ] || fail "killed with $before configs journaled (expected the first batch's 12)"
/usr/bin/env python3 -c "import sqlite3, sys, json
json.dump(sqlite3.connect(sys.argv[1]).execute('SELECT * FROM evals ORDER BY id').fetchall(), open(sys.argv[2], 'w'))" \
  "$tmp/kill/tuning.sqlite" "$tmp/kill.rows"
"${mpi[@]}" -np 3 "$cli" tune "${kill_args[@]}" --resume >/dev/null 2>"$tmp/resume.err" ||
  { cat "$tmp/resume.err"; fail "--resume after the kill"; }
grep -q "resumed $before configs from the journal" "$tmp/kill/tune.log" || fail "not every journaled config resumed"
/usr/bin/env python3 - "$tmp/kill/tuning.sqlite" "$tmp/kill.rows" <<'PY' || fail "the journal after --resume"
import json, sqlite3, sys
now = sqlite3.connect(sys.argv[1]).execute("SELECT * FROM evals ORDER BY id").fetchall()
old = [tuple(r) for r in json.load(open(sys.argv[2]))]
assert [tuple(r) for r in now[:len(old)]] == old, "a journaled config was changed or evaluated again"
assert len(now) == 36 and len({r[1] for r in now}) == 36, len(now)
PY

# the C API with a worker whose backend fails on 9 of the 81 configs: failed configs, not a dead job
"${mpi[@]}" -np 1 "$api" "$tmp/api1" >"$tmp/api1.out" 2>&1 || { cat "$tmp/api1.out"; fail "mpi_api on 1 rank"; }
"${mpi[@]}" -np 2 "$api" "$tmp/api2" master-only >"$tmp/api2.out" 2>&1 || { cat "$tmp/api2.out"; fail "mpi_api on 2 ranks"; }
"${mpi[@]}" -np 3 "$api" "$tmp/api3" some >"$tmp/api3.out" 2>&1 || { cat "$tmp/api3.out"; fail "mpi_api on 3 ranks"; }
grep -q "81 evaluated, 9 failed" "$tmp/api2.out" || { cat "$tmp/api2.out"; fail "mpi_api's failures"; }
# every rank measuring: the failures are rank 1's, whatever it happened to measure
/usr/bin/env python3 - "$tmp/api3/tuning.sqlite" <<'PY' || fail "mpi_api on 3 ranks: failures not rank 1's"
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
failed = db.execute("SELECT count(*) FROM evals WHERE status != 0").fetchone()[0]
ones = db.execute("SELECT count(*) FROM evals WHERE status != 0 AND error LIKE 'rank 1: %backend fails%'").fetchone()[0]
assert failed == ones <= 9 and db.execute("SELECT count(*) FROM evals").fetchone()[0] == 81, (failed, ones)
PY
[ "$(/usr/bin/env python3 -c "import sqlite3, sys
print(sqlite3.connect(sys.argv[1]).execute(\"SELECT count(*) FROM evals WHERE status != 0 AND error LIKE 'rank 1: %backend fails%'\").fetchone()[0])" \
  "$tmp/api2/tuning.sqlite")" = 9 ] || fail "the journal does not say which rank failed"

# GPUs per node-local rank: with two GPUs listed (a stand-in folder), ranks 1 and 2 of 3 take 1 and 0
mkdir -p "$tmp/gpus/0000:01:00.0" "$tmp/gpus/0000:02:00.0"
env -u CUDA_VISIBLE_DEVICES "${mpi[@]}" -np 3 -x PT_NVIDIA_GPUS_DIR="$tmp/gpus" "$cli" tune "${common[@]}" --max-iter 8 --search-batch 4 \
  --qos-model qos_p1 --cost-model cost_linear --output "$tmp/gpus_out" >/dev/null 2>"$tmp/gpus.err" ||
  { cat "$tmp/gpus.err"; fail "the GPU run"; }
grep -q "MPI rank 1: .*local rank 1 of 3, GPU 1 of the node's 2 (CUDA_VISIBLE_DEVICES=1)" "$tmp/gpus_out/tune.log" &&
  grep -q "MPI rank 2: .*GPU 0 of the node's 2 (CUDA_VISIBLE_DEVICES=0)" "$tmp/gpus_out/tune.log" ||
  { grep MPI "$tmp/gpus_out/tune.log"; fail "GPUs per local rank"; }
# tune-binary: one folder (binary, metadata, FIFOs) per rank of the node, as an MPMD command line;
# the same results as one process; two ranks on one folder are refused before either starts it
for r in 0 1 2; do
  mkdir -p "$tmp/bin$r" && cp "$fakebin" "$tmp/bin$r/hpvm_fake_bin" && "$tmp/bin$r/hpvm_fake_bin" --init "$tmp/bin$r"
done
bin_args=(--max-iter 30 --search-batch 10 --time-passes 0 --seed 2 --quiet --output "$tmp/bin_out")
bin() { echo --binary "$tmp/bin$1/hpvm_fake_bin" --metadata "$tmp/bin$1/metadata.json"; }
"$cli" tune-binary $(bin 0) "${bin_args[@]/bin_out/bin_plain}" >/dev/null 2>"$tmp/bin_plain.err" ||
  { cat "$tmp/bin_plain.err"; fail "tune-binary alone"; }
"${mpi[@]}" -np 1 "$cli" tune-binary $(bin 0) "${bin_args[@]}" : -np 1 "$cli" tune-binary $(bin 1) "${bin_args[@]}" : \
  -np 1 "$cli" tune-binary $(bin 2) "${bin_args[@]}" >/dev/null 2>"$tmp/bin_out.err" ||
  { cat "$tmp/bin_out.err"; fail "tune-binary on 3 ranks"; }
same bin_plain bin_out 25 || fail "tune-binary on 3 ranks differs"
grep -q "MPI: [1-9][0-9]* units sent" "$tmp/bin_out/tune.log" || fail "tune-binary on 3 ranks sent no units"
rm -f "$tmp/bin1/pid"
set +e
"${mpi[@]}" -np 2 "$cli" tune-binary $(bin 1) "${bin_args[@]/bin_out/bin_shared}" >/dev/null 2>"$tmp/bin_shared.err"
rc=$?
set -e
[ "$rc" -ne 0 ] || fail "two ranks on one binary's folder were accepted"
[ "$(grep -c "ranks 0 and 1 of 2 on node .* would share $tmp/bin1/final_accuracy" "$tmp/bin_shared.err")" -eq 1 ] ||
  { cat "$tmp/bin_shared.err"; fail "the shared folder is not named once"; }
[ ! -e "$tmp/bin1/pid" ] || fail "a binary was started before the refusal"
# folders of their own whose binaries are links to one file share its folder's final_accuracy
mkdir -p "$tmp/link0" "$tmp/link1"
for r in 0 1; do
  ln -s "$tmp/bin1/hpvm_fake_bin" "$tmp/link$r/hpvm_fake_bin" && "$tmp/bin1/hpvm_fake_bin" --init "$tmp/link$r"
done
set +e
"${mpi[@]}" -np 1 "$cli" tune-binary --binary "$tmp/link0/hpvm_fake_bin" --metadata "$tmp/link0/metadata.json" \
  "${bin_args[@]/bin_out/link_out}" : -np 1 "$cli" tune-binary --binary "$tmp/link1/hpvm_fake_bin" \
  --metadata "$tmp/link1/metadata.json" "${bin_args[@]/bin_out/link_out}" >/dev/null 2>"$tmp/link.err"
rc=$?
set -e
[ "$rc" -ne 0 ] && grep -q "would share $tmp/bin1/final_accuracy" "$tmp/link.err" ||
  { cat "$tmp/link.err"; fail "linked binaries sharing one folder were accepted"; }
echo "ok: 1, 2 and 3 ranks give the same results; a killed worker is named and --resume goes on"
