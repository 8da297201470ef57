#!/usr/bin/env bash
# Tuning over an MPI job (docs/distributed.md): with the same seed and options, configs.json and
# the journal's QoS values are the same for 1, 2 and 3 ranks (timings aside) and for a run without
# mpirun, for empirical QoS and for qos_p1, with rank 0 measuring too or not (--mpi-master-only); a
# rank started with other data stops the job with one message naming it.
#   test_mpi.sh SOURCE_DIR CLI MPIEXEC
set -euo pipefail
src="$1" cli="$2" mpiexec="$3"
if "$cli" version | grep -q "^mpi: not built"; then
  echo "[SKIP] test_mpi: built without MPI (Debian: openmpi-bin libopenmpi-dev)"
  exit 77
fi
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
# root in CI containers; more ranks than cores on a 2-core machine; one thread per rank
mpi=("$mpiexec" --allow-run-as-root --oversubscribe)
common=(--model lenet_mnist --weights "$src/zoo/demo/lenet_mnist.safetensors" --data "$src/zoo/demo" --tune-count 150
        --test-count 100 --batch-size 50 --threads 1 --time-passes 0 --seed 3 --max-iter 55 --search-batch 25
        --qos-keep-threshold 3 --dump-all --quiet)

tune() { # name np|0 args...: np 0 is a run without mpirun
  local name="$1" np="$2"
  shift 2
  if [ "$np" = 0 ]; then
    "$cli" tune "${common[@]}" --output "$tmp/$name" "$@" >/dev/null 2>"$tmp/$name.err" || { cat "$tmp/$name.err"; fail "$name"; }
  else
    "${mpi[@]}" -np "$np" "$cli" tune "${common[@]}" --output "$tmp/$name" "$@" >/dev/null 2>"$tmp/$name.err" ||
      { cat "$tmp/$name.err"; fail "$name"; }
  fi
}

same() { # reference other: configs.json without timings, and the journal's configs and QoS
  /usr/bin/env python3 - "$tmp/$1" "$tmp/$2" <<'PY'
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
assert len(a[1]) >= 50 and a[0]["configs"], "a real search"
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

tune p1_plain 0 --qos-model qos_p1 --cost-model cost_linear
tune p1_3 3 --qos-model qos_p1 --cost-model cost_linear
same p1_plain p1_3 || fail "qos_p1 with 3 ranks (validation and test spread)"

# the sensitivity report under mpirun is rank 0's, the same as one process's
"$cli" sensitivity "${common[@]:0:12}" --output "$tmp/sens1" >/dev/null 2>&1 || fail "sensitivity"
"${mpi[@]}" -np 2 "$cli" sensitivity "${common[@]:0:12}" --output "$tmp/sens2" >/dev/null 2>"$tmp/sens2.err" ||
  { cat "$tmp/sens2.err"; fail "sensitivity under mpirun"; }
/usr/bin/env python3 - "$tmp/sens1/sensitivity.json" "$tmp/sens2/sensitivity.json" <<'PY' || fail "sensitivity under mpirun differs"
import json, sys
loss = lambda p: sorted((e["op"], e["knob"], e["qos_loss"]) for e in json.load(open(p))["entries"])  # speedups are timed
a, b = loss(sys.argv[1]), loss(sys.argv[2])
assert a == b and len(a) > 10, (len(a), len(b))
PY

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
echo "ok: 1, 2 and 3 ranks give the same results"
