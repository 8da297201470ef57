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
common=(--model lenet_mnist --weights "$src/zoo/demo/lenet_mnist.safetensors" --data "$src/zoo/demo" --tune-count 200
        --test-count 200 --batch-size 100 --threads 1 --time-passes 0 --seed 3 --max-iter 72 --search-batch 24
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
assert len(a[1]) >= 60 and a[0]["configs"], "a real search"
PY
}

tune emp_plain 0 --qos-model empirical --cost-model cost_linear
for np in 1 2 3; do
  tune "emp$np" "$np" --qos-model empirical --cost-model cost_linear
  same emp_plain "emp$np" || fail "empirical QoS with $np ranks"
done
grep -q "MPI job of 3 ranks" "$tmp/emp3/tune.log" || fail "the 3-rank run does not say it ran on 3 ranks"
tune emp_master 2 --qos-model empirical --cost-model cost_linear --mpi-master-only
same emp_plain emp_master || fail "--mpi-master-only"

tune p1_plain 0 --qos-model qos_p1 --cost-model cost_linear
tune p1_3 3 --qos-model qos_p1 --cost-model cost_linear
same p1_plain p1_3 || fail "qos_p1 with 3 ranks (validation and test spread)"

# MPMD: rank 1 gets other data; the job stops at once, one line naming the rank
set +e
"${mpi[@]}" -np 1 "$cli" tune "${common[@]}" --output "$tmp/bad" : -np 1 "$cli" tune "${common[@]}" --tune-count 150 \
  --output "$tmp/bad" >/dev/null 2>"$tmp/bad.err"
rc=$?
set -e
[ "$rc" -ne 0 ] || fail "ranks with different data were accepted"
grep -q "rank 1 of 2 made another app than rank 0" "$tmp/bad.err" || { cat "$tmp/bad.err"; fail "the mismatch is not named"; }
[ "$(grep -c "made another app" "$tmp/bad.err")" -eq 1 ] || { cat "$tmp/bad.err"; fail "said more than once"; }
echo "ok: 1, 2 and 3 ranks give the same results"
