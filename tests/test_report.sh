#!/usr/bin/env bash
# report.html in a real browser: a tune of the demo writes it; headless chromium renders it (a
# screenshot) and dumps the DOM, which must hold the best-configs rows, the settings and the two
# inline figures, with no script and nothing fetched; `predtuner-gpu report DIR` rebuilds it the
# same; a folder without configs.json is one line naming the file.
#   test_report.sh SOURCE_DIR CLI
set -euo pipefail
src="$1" cli="$2"
browser="$(command -v chromium || command -v chromium-browser || true)"
if [ -z "$browser" ]; then
  echo "[SKIP] test_report: Debian's chromium is not installed (scripts/dev.sh test installs it)"
  exit 77
fi
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

"$cli" tune --model lenet_mnist --weights "$src/zoo/demo/lenet_mnist.safetensors" --data "$src/zoo/demo" \
  --tune-count 200 --test-count 200 --max-iter 80 --qos-model qos_p1 --cost-model cost_linear --time-passes 1 \
  --qos-keep-threshold 3 --output "$tmp/run" --quiet >/dev/null 2>"$tmp/tune.err" || { cat "$tmp/tune.err"; fail "tune"; }
html="$tmp/run/report.html"
test -s "$html" || fail "no report.html"
grep -qi "<script" "$html" && fail "report.html has a script"
grep -Eqi "<link|src=\"|<img" "$html" && fail "report.html refers to another file"
if grep -Eo "(https?:)?//[a-zA-Z0-9.-]+" "$html" | grep -v "www.w3.org" | grep -q .; then fail "report.html names a URL"; fi

run_browser() { # what, args...
  local what="$1"
  shift
  timeout 120 "$browser" --headless --no-sandbox --disable-gpu --disable-dev-shm-usage --hide-scrollbars \
    --no-first-run --user-data-dir="$tmp/profile" "$@" "file://$html" 2>"$tmp/browser_$what.err"
}
run_browser dom --dump-dom >"$tmp/dom.html" || { tail -20 "$tmp/browser_dom.err"; fail "chromium --dump-dom"; }
run_browser shot --window-size=1400,2400 --screenshot="$tmp/shot.png" >/dev/null || {
  tail -20 "$tmp/browser_shot.err"; fail "chromium --screenshot"; }

/usr/bin/env python3 - "$tmp/run/configs.json" "$tmp/dom.html" "$tmp/shot.png" <<'PY'
import json, re, struct, sys
configs = json.load(open(sys.argv[1]))
dom = open(sys.argv[2], encoding="utf-8").read()
best = len(configs["configs"])
rows = len(re.findall(r'<tr class="config">', dom))
assert best > 0, "the demo run has best configs"
assert rows == best, f"the DOM has {rows} best-config rows, configs.json {best}"
table = dom[dom.index('id="best-configs"'):]
table = table[:table.index("</table>")]
first = configs["configs"][0]
assert f"{first['speedup']:.3f}x" in table, "the first config's predicted speedup is in the table"
svgs = len(re.findall(r"<svg\b", dom))
assert svgs == 2, f"{svgs} inline figures in the DOM (the configs plot and the heatmap)"
assert 'id="configs"' in dom and 'id="heatmap"' in dom
for words in ("qos_p1 / cost_linear", "baseline QoS", "failed configs", "stopped early", 'id="sensitivity"'):
    assert words in dom, words
png = open(sys.argv[3], "rb").read()
assert png[:8] == b"\x89PNG\r\n\x1a\n", "a PNG screenshot"
w, h = struct.unpack(">II", png[16:24])
assert (w, h) == (1400, 2400) and len(png) > 20000, f"screenshot {w}x{h}, {len(png)} bytes"
print(f"report.html: {rows} best-config rows, {svgs} figures; screenshot {w}x{h}, {len(png)} bytes")
PY

cp "$html" "$tmp/first.html"
rm "$html"
"$cli" report "$tmp/run" >/dev/null || fail "predtuner-gpu report"
cmp -s "$html" "$tmp/first.html" || fail "report DIR does not rebuild the same page"
set +e
err="$("$cli" report "$tmp/nothing" 2>&1 >/dev/null)"
rc=$?
set -e
[ "$rc" -eq 1 ] || fail "report of a folder without configs.json exited $rc"
[ "$(printf '%s\n' "$err" | wc -l)" -eq 1 ] || fail "not one line: $err"
printf '%s' "$err" | grep -q "nothing/configs.json" || fail "the message does not name the file: $err"
echo "ok"
