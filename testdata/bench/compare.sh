#!/usr/bin/env bash
# compare.sh: the whole-process figures of `make bench` (issues 4 and 12),
# all in this one run, each against its target:
#   floor.sh, the least a lab costs (user + network + mount namespace and the
#     real tools loading verify20.rules in both families), paired with
#   egresslab repro (every act of telnet-surprise) and
#   egresslab verify of verify20.yaml (20 probes, 8 dropped), as ratios to it:
#     the three run in turn, in a rotating order, and each ratio is taken
#     within one round, so a busy machine slows all three alike;
#   the forwarded policy of 1,008 cells (forward1000.yaml: 3 networks, 12
#     clients) as a ratio to its host-only twin (host1000.yaml: 12 users,
#     the same matrix), paired and alternating like the first three;
#   the 1,000-probe matrix (matrix1000.yaml) and the 131,070-probe sweep
#     (sweep.yaml: one user x one host x both families x 65,535 TCP ports) as
#     verdicts per second of the whole process;
#   verify --complete of Tails 1.5's ruleset (its eight users, every class)
#     and of 20,000 rules per family (big20k.sh, generated here), whole
#     processes against issue 19's targets;
#   naive.sh on the 100-probe matrix as a ratio to egresslab verify of it;
#   the peak RSS of each (/usr/bin/time -v's maximum resident set).
# Every run's verdicts are checked (exit status, counts); the script fails
# only when a run goes wrong, never because a target is missed.
# Needs root, as egresslab does. Usage: bash testdata/bench/compare.sh
# Environment: ROUNDS (paired rounds, default 7), NAIVE=0 skips naive.sh (50 s).
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
bench=testdata/bench
rounds=${ROUNDS:-7}

if [ "$(id -u)" -ne 0 ]; then
	echo "compare.sh: needs root (egresslab's labs, floor.sh's and naive.sh's namespaces)" >&2
	exit 3
fi
for need in time:/usr/bin/time python3:python3; do
	pkg=${need%%:*} cmd=${need#*:}
	if ! command -v "$cmd" >/dev/null; then
		echo "compare.sh: $cmd is missing; installing it (apt-get install -y $pkg)" >&2
		apt-get install -y "$pkg" >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y "$pkg" >/dev/null; }
	fi
done

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
go build -o "$tmp/egresslab" ./cmd/egresslab
egresslab=$tmp/egresslab

broken=0
fail() {
	echo "compare.sh: $*" >&2
	broken=1
}

now_us() { echo "${EPOCHREALTIME//[.,]/}"; }

# timed OUT CMD...: runs CMD under /usr/bin/time, stdout to OUT, stderr to
# OUT.err; sets $ms (wall), $status and $rss (peak KB).
timed() {
	local out=$1 t0 t1
	shift
	t0=$(now_us)
	status=0
	/usr/bin/time -f %M -o "$out.rss" "$@" >"$out" 2>"$out.err" || status=$?
	t1=$(now_us)
	ms=$(((t1 - t0) / 1000))
	rss=$(tail -1 "$out.rss")
}

median() { printf '%s\n' "$@" | sort -g | sed -n "$((($# + 1) / 2))p"; }
maxof() { printf '%s\n' "$@" | sort -g | tail -1; }
ratio() { python3 -c "print(f'{$1 / max($2, 1):.2f}')"; }

# counts FILE: "connected refused dropped errors" of a verify JSON report.
counts() {
	python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))
n = lambda o: sum(p["observed"] == o for p in r["probes"])
print(n("connected"), n("refused") + n("rejected"), n("dropped"), n("error"))
' "$1"
}

echo "== machine: $(nproc) cores, kernel $(uname -r), $(go version | cut -d' ' -f3-); load average $(cut -d' ' -f1-3 /proc/loadavg)"

# Paired rounds: floor.sh, repro, verify of the 20-probe policy.
echo "== floor.sh, egresslab repro, egresslab verify -f $bench/verify20.yaml: $rounds rounds, order rotating"
floor=() repro=() v20=() rrepro=() rv20=() rssfloor=() rssrepro=() rssv20=()
for i in $(seq "$rounds"); do
	order=(floor repro v20)
	order=("${order[@]:$((i % 3))}" "${order[@]:0:$((i % 3))}")
	for what in "${order[@]}"; do
		case $what in
		floor)
			timed "$tmp/floor.out" bash "$bench/floor.sh"
			[ "$status" -eq 0 ] || fail "floor.sh round $i: exit $status: $(cat "$tmp/floor.out.err")"
			f=$ms; rssfloor+=("$rss") ;;
		repro)
			timed "$tmp/repro.out" "$egresslab" repro
			[ "$status" -eq 0 ] || fail "repro round $i: exit $status, want 0: $(tail -3 "$tmp/repro.out.err")"
			r=$ms; rssrepro+=("$rss") ;;
		v20)
			timed "$tmp/v20.json" "$egresslab" verify -f "$bench/verify20.yaml" --format json
			[ "$status" -eq 0 ] || fail "verify verify20.yaml round $i: exit $status, want 0: $(cat "$tmp/v20.json.err")"
			[ "$(counts "$tmp/v20.json")" = "10 2 8 0" ] || fail "verify20.yaml round $i: counts $(counts "$tmp/v20.json"), want 10 2 8 0"
			v=$ms; rssv20+=("$rss") ;;
		esac
	done
	floor+=("$f") repro+=("$r") v20+=("$v")
	rrepro+=("$(ratio "$r" "$f")") rv20+=("$(ratio "$v" "$f")")
done
echo "   floor.sh ms:  ${floor[*]}"
echo "   repro ms:     ${repro[*]}   (ratio per round: ${rrepro[*]})"
echo "   verify20 ms:  ${v20[*]}   (ratio per round: ${rv20[*]})"

# The 1,000-probe matrix.
echo "== egresslab verify -f $bench/matrix1000.yaml, 3 runs"
m1000=() rss1000=()
for i in 1 2 3; do
	timed "$tmp/m1000.json" "$egresslab" verify -f "$bench/matrix1000.yaml" --format json
	[ "$status" -eq 0 ] || fail "verify matrix1000.yaml run $i: exit $status, want 0: $(cat "$tmp/m1000.json.err")"
	[ "$(counts "$tmp/m1000.json")" = "400 100 500 0" ] || fail "matrix1000.yaml run $i: counts $(counts "$tmp/m1000.json"), want 400 100 500 0"
	m1000+=("$ms") rss1000+=("$rss")
done
echo "   ms: ${m1000[*]}"

# The forwarded policy against the host-only one of the same size (issue 18).
echo "== egresslab verify -f $bench/forward1000.yaml and -f $bench/host1000.yaml (1,008 cells each), 3 rounds, alternating"
fwd1000=() host1000=() rfwd=() rssfwd=() rsshost=()
for i in 1 2 3; do
	for what in forward1000 host1000; do
		timed "$tmp/$what.json" "$egresslab" verify -f "$bench/$what.yaml" --format json
		[ "$status" -eq 0 ] || fail "verify $what.yaml run $i: exit $status, want 0: $(tail -3 "$tmp/$what.json.err")"
		[ "$(counts "$tmp/$what.json")" = "528 144 336 0" ] || fail "$what.yaml run $i: counts $(counts "$tmp/$what.json"), want 528 144 336 0"
		if [ "$what" = forward1000 ]; then fw=$ms rssfwd+=("$rss"); else ho=$ms rsshost+=("$rss"); fi
	done
	fwd1000+=("$fw") host1000+=("$ho") rfwd+=("$(ratio "$fw" "$ho")")
done
echo "   forward1000 ms: ${fwd1000[*]}"
echo "   host1000 ms:    ${host1000[*]}   (forward/host per round: ${rfwd[*]})"

# The sweep: its expectations are the ruleset's exact verdicts (allow, reject,
# drop), so "all passed" is every one of 131,070 verdicts right.
echo "== egresslab verify -f $bench/sweep.yaml (131,070 probes), table output"
timed "$tmp/sweep.out" "$egresslab" verify -f "$bench/sweep.yaml"
[ "$status" -eq 0 ] || fail "verify sweep.yaml: exit $status, want 0: $(tail -3 "$tmp/sweep.out.err")"
grep -q '^131070 probes: 131070 passed, 0 failed, 0 errors' "$tmp/sweep.out" || fail "sweep.yaml: $(tail -1 "$tmp/sweep.out")"
sweep=$ms rsssweep=$rss
echo "   $sweep ms; $(tail -1 "$tmp/sweep.out")"

# verify --complete (issue 19): the class counts and whole-process times.
nclasses() { python3 -c 'import json, sys; print(len(json.load(open(sys.argv[1]))["classes"]))' "$1"; }
tailsyaml=scenarios/classes/testdata/tails/egresslab.yaml
echo "== egresslab verify --complete -f $tailsyaml"
timed "$tmp/tails.json" "$egresslab" verify --complete -f "$tailsyaml" --format json
# exit 1: Tails lets more out than its one-line deny says (44 classes, 2 cells)
[ "$status" -eq 1 ] || fail "verify --complete tails: exit $status, want 1: $(tail -3 "$tmp/tails.json.err")"
tails=$ms rsstails=$rss tailsclasses=$(nclasses "$tmp/tails.json")
echo "   $tails ms, $tailsclasses classes"
bash "$bench/big20k.sh" "$tmp/big20k"
echo "== egresslab verify --complete -f big20k.yaml (bash $bench/big20k.sh DIR: 20,000 rules per family)"
timed "$tmp/big20k.json" "$egresslab" verify --complete -f "$tmp/big20k/big20k.yaml" --format json
# exit 1: the one-host policy does not list the ruleset's 19,998 other accepts
[ "$status" -eq 1 ] || fail "verify --complete big20k.yaml: exit $status, want 1: $(tail -3 "$tmp/big20k.json.err")"
big=$ms rssbig=$rss bigclasses=$(nclasses "$tmp/big20k.json")
echo "   $big ms, $bigclasses classes"

# naive.sh against egresslab on the 100-probe matrix.
m100=() rss100=()
for i in 1 2 3 4 5; do
	timed "$tmp/m100.json" "$egresslab" verify -f "$bench/matrix100.yaml" --format json
	[ "$status" -eq 0 ] || fail "verify matrix100.yaml run $i: exit $status, want 0: $(cat "$tmp/m100.json.err")"
	m100+=("$ms") rss100+=("$rss")
done
echo "== egresslab verify -f $bench/matrix100.yaml, 5 runs: ${m100[*]} ms"
naive=
if [ "${NAIVE:-1}" != 0 ]; then
	echo "== bash $bench/naive.sh (sequential probes, timeout 1 per drop: about 50 s)"
	timed "$tmp/naive.out" bash "$bench/naive.sh"
	[ "$status" -eq 0 ] || fail "naive.sh: exit $status: $(cat "$tmp/naive.out.err")"
	naive=$ms rssnaive=$rss
	sed 's/^/   /' "$tmp/naive.out"
	read -r c r d _ <<<"$(counts "$tmp/m100.json")"
	grep -q "naive: 100 probes: $c connected, $r refused, $d timed out" "$tmp/naive.out" ||
		fail "naive.sh's counts differ from egresslab's ($c connected, $r refused, $d dropped)"
fi

# The figures against issue 12's targets.
verdict() { if python3 -c "import sys; sys.exit(0 if $1 else 1)"; then echo met; else echo MISSED; fi; }
mf=$(median "${floor[@]}") mr=$(median "${rrepro[@]}") mv=$(median "${rv20[@]}")
mm=$(median "${m1000[@]}") m1=$(median "${m100[@]}")
rate1000=$((1000 * 1000 / mm)) ratesweep=$((131070 * 1000 / sweep))
mb() { echo $((($1 + 1023) / 1024)); }
echo
echo "== figures against issue 12's (and issue 19's --complete) targets (medians, whole processes, this machine, load $(cut -d' ' -f1 /proc/loadavg))"
printf '%-58s %16s   %-14s %-8s %s\n' figure measured target verdict "peak RSS"
printf '%-58s %13s ms   %-14s %-8s %s MB\n' "floor.sh (namespaces + restore of both families)" "$mf" "-" "-" "$(mb "$(maxof "${rssfloor[@]}")")"
printf '%-58s %13s x    %-14s %-8s %s MB\n' "egresslab repro (all acts) / floor.sh, $(median "${repro[@]}") ms" "$mr" "<= 2x" "$(verdict "$mr <= 2")" "$(mb "$(maxof "${rssrepro[@]}")")"
printf '%-58s %13s x    %-14s %-8s %s MB\n' "verify, 20 probes with 8 drops / floor.sh, $(median "${v20[@]}") ms" "$mv" "<= 1.5x" "$(verdict "$mv <= 1.5")" "$(mb "$(maxof "${rssv20[@]}")")"
printf '%-58s %13s /s   %-14s %-8s %s MB\n' "1,000-probe matrix, verdicts/s ($mm ms)" "$rate1000" ">= 10000/s" "$(verdict "$rate1000 >= 10000")" "$(mb "$(maxof "${rss1000[@]}")")"
printf '%-58s %13s x    %-14s %-8s %s MB\n' "forward1000 $(median "${fwd1000[@]}") ms / host1000 $(median "${host1000[@]}") ms" "$(median "${rfwd[@]}")" "-" "-" "$(mb "$(maxof "${rssfwd[@]}")")"
printf '%-58s %13s /s   %-14s %-8s %s MB\n' "131,070-probe sweep, verdicts/s" "$ratesweep" "-" "-" "$(mb "$rsssweep")"
printf '%-58s %13s ms   %-14s %-8s\n' "131,070-probe sweep, whole process" "$sweep" "<= 10000 ms" "$(verdict "$sweep <= 10000")"
printf '%-58s %13s MB   %-14s %-8s\n' "131,070-probe sweep, peak RSS" "$(mb "$rsssweep")" "<= 128 MB" "$(verdict "$(mb "$rsssweep") <= 128")"
printf '%-58s %13s ms   %-14s %-8s %s MB\n' "verify --complete, Tails 1.5 ($tailsclasses classes)" "$tails" "<= 10000 ms" "$(verdict "$tails <= 10000")" "$(mb "$rsstails")"
printf '%-58s %13s ms   %-14s %-8s %s MB\n' "verify --complete, 20,000 rules/family ($bigclasses classes)" "$big" "<= 60000 ms" "$(verdict "$big <= 60000")" "$(mb "$rssbig")"
if [ -n "$naive" ]; then
	rn=$((naive / (m1 > 0 ? m1 : 1)))
	printf '%-58s %13s x    %-14s %-8s %s MB\n' "naive.sh $naive ms / verify of 100 probes $m1 ms" "$rn" ">= 1000x" "$(verdict "$rn >= 1000")" "$(mb "$rssnaive")"
else
	printf '%-58s %16s   %-14s %s\n' "naive.sh / verify of 100 probes" "-" ">= 1000x" "not run (NAIVE=0)"
fi
printf '%-58s %13s MB\n' "verify of 100 probes, peak RSS" "$(mb "$(maxof "${rss100[@]}")")"
exit "$broken"
