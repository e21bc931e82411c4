#!/usr/bin/env bash
# compare.sh: the whole-process half of `make bench` (issue 4). It builds
# egresslab and, in this one invocation, times:
#   (a) egresslab verify -f testdata/bench/matrix100.yaml, median of 5 runs;
#   (b) testdata/bench/naive.sh once, on the same 100-probe policy;
#   (c) egresslab repro (both variants of telnet-surprise), median of 5;
#   (d) every testdata/examples/*.yaml through egresslab verify, all together,
#       as many at once as there are cores;
#   (e) egresslab verify -f testdata/bench/matrix1000.yaml, median of 5, and
#       its peak RSS (/usr/bin/time -v);
# then prints each figure against its target and the ratio naive/egresslab.
# Targets are measured, not asserted: the script fails only when a run
# itself goes wrong (a verdict or an exit status not as the policy says).
# Needs root, as egresslab does. Usage: bash testdata/bench/compare.sh
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
bench=testdata/bench
runs=5

if [ "$(id -u)" -ne 0 ]; then
	echo "compare.sh: needs root (egresslab's labs and naive.sh's namespaces)" >&2
	exit 3
fi
if ! [ -x /usr/bin/time ]; then
	echo "compare.sh: /usr/bin/time is missing; installing it (apt-get install -y time)" >&2
	apt-get install -y time >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y time >/dev/null; }
fi
if ! command -v python3 >/dev/null; then
	echo "compare.sh: python3 is missing (to read egresslab's JSON); installing it (apt-get install -y python3)" >&2
	apt-get install -y python3 >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y python3 >/dev/null; }
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
go build -o "$tmp/egresslab" ./cmd/egresslab
egresslab=$tmp/egresslab

broken=0
fail() {
	echo "compare.sh: $*" >&2
	broken=1
}

# now_us prints the wall clock in microseconds, without forking.
now_us() { echo "${EPOCHREALTIME//[.,]/}"; }

# timed OUT CMD...: runs CMD with stdout to OUT, stderr to OUT.err; sets
# $elapsed_ms and $status.
timed() {
	local out=$1 t0 t1
	shift
	t0=$(now_us)
	status=0
	"$@" >"$out" 2>"$out.err" || status=$?
	t1=$(now_us)
	elapsed_ms=$(((t1 - t0) / 1000))
}

# median of the arguments (an odd count).
median() { printf '%s\n' "$@" | sort -n | sed -n "$((($# + 1) / 2))p"; }

# counts FILE: "connected refused dropped errors" from a verify JSON report.
counts() {
	python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))
n = lambda o: sum(p["observed"] == o for p in r["probes"])
print(n("connected"), n("refused") + n("rejected"), n("dropped"), n("error"))
' "$1"
}

echo "== machine: $(nproc) cores, kernel $(uname -r), $(go version | cut -d' ' -f3-)"

# (a) the 100-probe matrix, whole process.
echo "== (a) egresslab verify -f $bench/matrix100.yaml, $runs runs"
times100=()
for i in $(seq "$runs"); do
	timed "$tmp/m100.json" "$egresslab" verify -f "$bench/matrix100.yaml" --format json
	[ "$status" -eq 0 ] || fail "verify matrix100.yaml run $i: exit $status, want 0: $(cat "$tmp/m100.json.err")"
	times100+=("$elapsed_ms")
done
m100=$(median "${times100[@]}")
read -r c100 r100 d100 e100 <<<"$(counts "$tmp/m100.json")"
echo "   runs: ${times100[*]} ms; median $m100 ms; $c100 connected, $r100 refused, $d100 dropped, $e100 errors"

# (b) the naive baseline on the same policy.
echo "== (b) bash $bench/naive.sh (sequential probes, timeout 1 per probe)"
timed "$tmp/naive.out" bash "$bench/naive.sh"
cat "$tmp/naive.out.err" >&2
[ "$status" -eq 0 ] || fail "naive.sh: exit $status"
sed 's/^/   /' "$tmp/naive.out"
naive_ms=$elapsed_ms
summary=$(grep '^naive: .* probes:' "$tmp/naive.out" || true)
if [[ $summary =~ ([0-9]+)\ connected,\ ([0-9]+)\ refused,\ ([0-9]+)\ timed\ out ]]; then
	if [ "${BASH_REMATCH[1]} ${BASH_REMATCH[2]} ${BASH_REMATCH[3]}" != "$c100 $r100 $d100" ]; then
		fail "naive.sh saw ${BASH_REMATCH[1]}/${BASH_REMATCH[2]}/${BASH_REMATCH[3]} connected/refused/timed out, egresslab $c100/$r100/$d100 connected/refused/dropped"
	else
		echo "   same verdicts as egresslab: $c100 connected, $r100 refused, $d100 dropped"
	fi
else
	fail "naive.sh printed no summary"
fi

# (c) repro, whole process.
echo "== (c) egresslab repro (telnet-surprise, both variants), $runs runs"
timesrepro=()
for i in $(seq "$runs"); do
	timed "$tmp/repro.out" "$egresslab" repro
	[ "$status" -eq 0 ] || fail "repro run $i: exit $status, want 0: $(cat "$tmp/repro.out.err")"
	timesrepro+=("$elapsed_ms")
done
mrepro=$(median "${timesrepro[@]}")
echo "   runs: ${timesrepro[*]} ms; median $mrepro ms"
# For reference: the same with a short backstop (the bound on the one wait
# left, for a packet that left and got no answer). If this figure is much
# lower than the one above, some probe of repro is waiting out the backstop.
timesshort=()
for i in $(seq "$runs"); do
	timed "$tmp/repro-short.out" "$egresslab" repro --timeout 20ms
	timesshort+=("$elapsed_ms")
done
mshort=$(median "${timesshort[@]}")
echo "   for reference, repro --timeout 20ms: ${timesshort[*]} ms; median $mshort ms (exit $status)"

# (d) every example policy, together.
shopt -s nullglob
examples=(testdata/examples/*.yaml)
shopt -u nullglob
echo "== (d) egresslab verify of testdata/examples/*.yaml, $(nproc) at a time"
if [ ${#examples[@]} -eq 0 ]; then
	echo "   note: testdata/examples/ has no policies yet: skipped"
	mexamples=
else
	printf '%s\n' "${examples[@]}" >"$tmp/examples.list"
	# Exit 1 (an expectation failed) is an example's point, not a broken run.
	cat >"$tmp/one.sh" <<EOF
#!/usr/bin/env bash
"$egresslab" verify -f "\$1" >/dev/null 2>"$tmp/ex.\$(basename "\$1").err"
s=\$?
[ \$s -le 1 ] || echo "\$1: exit \$s" >>"$tmp/examples.bad"
exit 0
EOF
	timed "$tmp/examples.out" xargs -P "$(nproc)" -n 1 bash "$tmp/one.sh" <"$tmp/examples.list"
	mexamples=$elapsed_ms
	echo "   ${#examples[@]} policies in $mexamples ms"
	if [ -s "$tmp/examples.bad" ]; then
		fail "examples that could not run: $(tr '\n' ' ' <"$tmp/examples.bad")"
	fi
fi

# (e) the 1,000-probe matrix: wall time and peak RSS.
echo "== (e) egresslab verify -f $bench/matrix1000.yaml, $runs runs under /usr/bin/time -v"
times1000=()
rss=()
for i in $(seq "$runs"); do
	timed "$tmp/m1000.json" /usr/bin/time -v -o "$tmp/time.txt" "$egresslab" verify -f "$bench/matrix1000.yaml" --format json
	[ "$status" -eq 0 ] || fail "verify matrix1000.yaml run $i: exit $status, want 0: $(cat "$tmp/m1000.json.err")"
	times1000+=("$elapsed_ms")
	rss+=("$(sed -n 's/.*Maximum resident set size (kbytes): *//p' "$tmp/time.txt")")
done
m1000=$(median "${times1000[@]}")
rssmax=$(printf '%s\n' "${rss[@]}" | sort -n | tail -1)
read -r c1000 r1000 d1000 e1000 <<<"$(counts "$tmp/m1000.json")"
echo "   runs: ${times1000[*]} ms; median $m1000 ms; $c1000 connected, $r1000 refused, $d1000 dropped, $e1000 errors"
echo "   peak RSS (KB): ${rss[*]}"

# The figures against the targets of issue 4.
verdict() { if [ "$1" = 1 ]; then echo met; else echo MISSED; fi; }
le() { [ "$1" -le "$2" ] && echo 1 || echo 0; }
ge() { [ "$1" -ge "$2" ] && echo 1 || echo 0; }
ratio=$((naive_ms / (m100 > 0 ? m100 : 1)))
rate=$((1000 * 1000 / (m1000 > 0 ? m1000 : 1)))
rssmb=$(((rssmax + 1023) / 1024))
echo
echo "== figures against issue 4's targets (whole processes, this machine)"
printf '%-52s %14s   %-24s %s\n' figure measured target verdict
printf '%-52s %11s ms   %-24s %s\n' "egresslab repro (both variants), median" "$mrepro" "<= 100 ms" "$(verdict "$(le "$mrepro" 100)")"
printf '%-52s %11s /s   %-24s %s\n' "1,000-probe matrix, verdicts/s, whole verify" "$rate" ">= 1000 (10000 stretch)" \
	"$(verdict "$(ge "$rate" 1000)")$([ "$rate" -ge 10000 ] && echo ", stretch met" || echo ", stretch missed")"
printf '%-52s %11s x    %-24s %s\n' "naive.sh / egresslab verify, 100-probe matrix" "$ratio" ">= 50x" "$(verdict "$(ge "$ratio" 50)")"
if [ -n "$mexamples" ]; then
	printf '%-52s %11s ms   %-24s %s\n' "all of testdata/examples (${#examples[@]}), together" "$mexamples" "<= 2000 ms" "$(verdict "$(le "$mexamples" 2000)")"
else
	printf '%-52s %14s   %-24s %s\n' "all of testdata/examples, together" "-" "<= 2000 ms" "not measured: no examples yet"
fi
printf '%-52s %11s MB   %-24s %s\n' "peak RSS, 1,000-probe verify (largest process)" "$rssmb" "<= 64 MB" "$(verdict "$(le "$rssmb" 64)")"
echo
echo "naive.sh ${naive_ms} ms / egresslab verify ${m100} ms = ${ratio}x on the 100-probe matrix"

exit "$broken"
