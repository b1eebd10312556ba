#!/bin/bash
# memdet doctor on the live machine: it exits 0, its JSON parses, its ASLR
# line says what /proc/sys/kernel/randomize_va_space says; a saved machine
# with a FIFO, bytes that are not UTF-8 and a folder name that is not either
# still gives a report and JSON; and a bad --root is one line and exit 2.
#
# Usage: bash doctor.sh PATH-TO-MEMDET SOURCE-DIR
source "$(dirname "$0")/common.bash"

[ -r /proc/sys/kernel/randomize_va_space ] || skip "/proc/sys/kernel/randomize_va_space is not readable"
aslr=$(cat /proc/sys/kernel/randomize_va_space)

run_memdet text doctor
expect_status text 0
grep -q "^  aslr  *randomize_va_space $aslr " text.out ||
    fail "the aslr line does not say randomize_va_space $aslr: $(grep aslr text.out)"
grep -q "^  personality  *ADDR_NO_RANDOMIZE \(allowed\|refused\)" text.out ||
    fail "the personality probe did not run: $(grep personality text.out)"
[ -s text.err ] && fail "doctor wrote to stderr: $(head -3 text.err)"
checked "doctor: exit 0, the aslr line reads randomize_va_space $aslr"

run_memdet json doctor --json
expect_status json 0
"$PYTHON" -c 'import json,sys; json.load(sys.stdin)' <json.out || fail "doctor --json is not JSON"
expect_json json.out "d['facts']['randomize_va_space'] == $aslr" "the JSON reads randomize_va_space $aslr"
expect_json json.out "d['live'] is True and all(set(f) == {'id', 'severity', 'what', 'why', 'fix'} for f in d['findings'])" \
    "every finding has id, severity, what, why and fix"
if [ "$aslr" != 0 ]; then
    expect_json json.out "any(f['id'] == 'aslr' for f in d['findings'])" "ASLR on is a finding"
fi
checked "doctor --json: parses, $(json_value json.out 'len(d["findings"])') findings"

run_memdet saved doctor --root "$SOURCE_DIR/tests/data/doctor/container"
expect_status saved 0
grep -q "ADDR_NO_RANDOMIZE refused (EPERM)" saved.out || fail "the saved container's probe was not replayed"
checked "doctor --root replays a saved machine"

odd=$'machine\xff'
mkdir -p "$odd/proc/self" "$odd/proc/sys/kernel"
printf 'LD_PRELOAD=/x\xfe.so\0MALLOC_CONF=\xff\xff\0' >"$odd/proc/self/environ"
mkfifo "$odd/proc/sys/kernel/randomize_va_space"
LIMIT_SECONDS=20 run_memdet odd doctor --root "$odd"
expect_status odd 0
grep -q "^  aslr  *not visible" odd.out || fail "a FIFO read as something: $(grep aslr odd.out)"
LIMIT_SECONDS=20 run_memdet odd-json doctor --json --root "$odd"
expect_status odd-json 0
expect_json odd-json.out "d['facts']['environment']['variables']['MALLOC_CONF'] == '\ufffd\ufffd'" \
    "bytes that are not UTF-8 are U+FFFD in the JSON"
expect_json odd-json.out "d['root'].endswith('machine\ufffd')" "the folder's name has U+FFFD for \\xff"
expect_json odd-json.out "d['facts']['randomize_va_space'] is None" "the FIFO is not visible"
checked "doctor --root over a FIFO and bytes that are not UTF-8: exit 0, valid JSON"

run_memdet missing doctor --root "$SCRATCH/absent"
expect_status missing 2
expect_one_memdet_line missing "--root $SCRATCH/absent"
[ "$(wc -l <missing.err)" -eq 1 ] || fail "a missing --root printed more than one line"
touch plain-file
run_memdet file doctor --root plain-file
expect_status file 2
expect_one_memdet_line file "not a directory"
run_memdet empty doctor --root ''
expect_status empty 2
expect_one_memdet_line empty "--root"
[ "$(wc -l <empty.err)" -eq 1 ] || fail "an empty --root printed more than one line"
run_memdet size doctor --mlock-size lots
expect_status size 2
expect_one_memdet_line size "--mlock-size"
checked "a missing, an empty and a file --root and a bad --mlock-size: one line, exit 2"
