#!/usr/bin/env bash
# Applies each mutant of test/sim/mutants/ (a patch that removes one guard)
# to a scratch copy of the tree and runs what must kill it:
#   "# killed-by: sim"                  the simulation as `make test` runs it
#                                       (the same seeds, built once per mutant;
#                                       it stops at the first broken one and
#                                       names it), then, if the seeds let it
#                                       live, the scenarios;
#   "# killed-by: TestName (pkg/path)"  that test.
# "# seed: N" names the seed that killed it last: it is played first (the
# same seeds run, in an order that fails fast).
# The tree itself is never changed. Fails if any mutant survives or no
# longer applies. MUTANTS=regexp picks some; SIM_SEEDS as in make test.
# MUTANTS_BY=sim runs the simulation against every mutant, whatever kills
# it: how far the simulation reaches on its own.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
seeds="${SIM_SEEDS:-2000}"
only="${MUTANTS:-.}"
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
report="$scratch/report"
: >"$report"
survivors=0
total=0
start_all=$SECONDS

fresh_copy() {
	rm -rf "$scratch/tree" && mkdir -p "$scratch/tree"
	tar -C "$root" --exclude=./.git --exclude=./bin --exclude=./dist -cf - . | tar -C "$scratch/tree" -xf -
}

for patch in "$root"/test/sim/mutants/*.patch; do
	name="$(basename "$patch" .patch)"
	[[ $name =~ $only ]] || continue
	total=$((total + 1))
	start=$SECONDS
	fresh_copy
	by="${MUTANTS_BY:-$(sed -n 's/^# killed-by: //p' "$patch" | head -1)}"
	if ! (cd "$scratch/tree" && git apply "$patch" 2>"$scratch/apply.err"); then
		echo "FAIL  $name: no longer applies ($(head -1 "$scratch/apply.err")); update it with the code" | tee -a "$report"
		survivors=$((survivors + 1))
		continue
	fi
	log="$scratch/$name.log"
	verdict=""
	if [[ $by == sim ]]; then
		hint="$(sed -n 's/^# seed: //p' "$patch" | head -1)"
		bin="$scratch/sim.test"
		if ! (cd "$scratch/tree" && go test -c -ldflags="-s -w" -o "$bin" ./test/sim/ >"$log" 2>&1); then
			verdict="SURVIVED: the simulation does not build: $(grep -m1 -E 'error|cannot|undefined' "$log" || true)"
		elif (cd "$scratch/tree/test/sim" && XDRIVE_SIM_SEEDS="$seeds" XDRIVE_SIM_FAILFAST=1 XDRIVE_SIM_PLAY_FIRST="$hint" \
			"$bin" -test.count=1 -test.timeout 60m -test.run '^TestSeeds$' >"$log" 2>&1); then
			if (cd "$scratch/tree/test/sim" && "$bin" -test.count=1 -test.timeout 60m -test.skip '^TestSeeds?$' >"$log.scen" 2>&1); then
				verdict="SURVIVED: all $seeds seeds and every scenario passed"
			else
				verdict="SURVIVED the seeds (a scenario only: $(grep -m1 -oE -- '--- FAIL: [A-Za-z0-9_]+' "$log.scen" || true))"
			fi
		elif first="$(grep -m1 -oE 'first failing seed [0-9]+: [^;]*' "$log")"; then
			verdict="killed by $first"
		else
			verdict="SURVIVED: the simulation failed without a broken seed: $(grep -m1 -E 'FAIL|panic|error' "$log" || true)"
		fi
	else
		test_name="${by%% *}"
		pkg="$(sed -E 's/.*\((.*)\).*/\1/' <<<"$by")"
		if (cd "$scratch/tree" && KUBEBUILDER_ASSETS="${KUBEBUILDER_ASSETS:-}" go test -count=1 -timeout 20m -run "^${test_name}\$" "./$pkg/" >"$log" 2>&1); then
			verdict="SURVIVED: $test_name ($pkg) passed"
		elif grep -q -- "--- FAIL: $test_name" "$log"; then
			verdict="killed by $test_name ($pkg)"
		else
			verdict="SURVIVED: $test_name ($pkg) did not run: $(grep -m1 -E 'FAIL|cannot|error' "$log" || true)"
		fi
	fi
	if [[ $verdict == SURVIVED* ]]; then
		survivors=$((survivors + 1))
		echo "FAIL  $name: $verdict ($((SECONDS - start)) s)" | tee -a "$report"
	else
		echo "ok    $name: $verdict ($((SECONDS - start)) s)" | tee -a "$report"
	fi
done

echo
echo "mutants: $((total - survivors)) of $total killed in $((SECONDS - start_all)) s"
if ((survivors > 0)); then
	echo "survivors or stale mutants:"
	grep '^FAIL' "$report"
	exit 1
fi
