# fileorder=: every listing interface gives the names in byte order (sorted)
# or in an order set by the key alone (keyed), the same in every run with
# one key; glob's own sort and a caller's scandir comparator stay in charge;
# DIR streams keep telldir/seekdir/rewinddir working on the snapshot;
# nftw and ftw visit what glibc's visit, each directory in that order.
source "$(dirname "$0")/lib.sh"

PROBE=$PROBES/probe_fileorder
[[ -x $PROBE ]] || fail "probe_fileorder is not built in $PROBES"
LISTER=$SOURCES/fileorder_list.py

# Twenty names created in neither byte order nor any hash order, with
# capitals, digits and punctuation, where byte order and a locale's differ.
DIR=$(cd "$WORK" && pwd -P)/listed
mkdir "$DIR"
names=(m07 B2 a_1 Zeta z9 -dash 0zero Alpha beta c10 c2 _under x y.txt Q k3 n4 e5 f6 g8)
for name in "${names[@]}"; do
  : >"$DIR/$name"
done
SORTED=$(printf '%s\n' "${names[@]}" | LC_ALL=C sort)
ONE=$(cd "$WORK" && pwd -P)/one
mkdir "$ONE"
: >"$ONE/only"

KEY_A="fileorder=keyed;fileorder_key=1f2e3d4c"
KEY_B="fileorder=keyed;fileorder_key=99aa"

# list API CONFIG DIR...: sets `got` to the names API gives, one a line,
# and REPORT to the run's report.
list() {
  local api=$1 config=$2
  shift 2
  if [[ $api == py_* ]]; then
    run_shim glibc "$config" "$WORK/out" "$PYTHON" "$LISTER" "${api#py_}" "$@" ||
      fail "$api under '$config' failed: $(head -3 "$WORK/out.err")"
  else
    run_shim glibc "$config" "$WORK/out" "$PROBE" "$api" "$@" ||
      fail "$api under '$config' failed: $(head -3 "$WORK/out.err")"
  fi
  got=$(<"$WORK/out")
}

as_set() { LC_ALL=C sort <<<"$1"; }

apis=(readdir readdir64 readdir_r scandir scandir64 scandirat glob_nosort fts filesystem)
if [[ -x $PYTHON ]]; then
  apis+=(py_listdir py_scandir py_glob py_pathlib py_walk)
else
  echo "note: $PYTHON missing, the Python interfaces are not checked"
fi

keyed_reference=""
for api in "${apis[@]}"; do
  list "$api" passive "$DIR"
  [[ $(as_set "$got") == "$SORTED" ]] || fail "$api passive lists $(tr '\n' ' ' <<<"$got")"

  list "$api" fileorder=sorted "$DIR"
  [[ $got == "$SORTED" ]] || fail "$api sorted gives $(tr '\n' ' ' <<<"$got")"
  need_report
  expect_report fileorder sorted

  list "$api" "$KEY_A" "$DIR"
  first=$got
  expect_report fileorder keyed
  list "$api" "$KEY_A" "$DIR"
  again=$got
  list "$api" "$KEY_B" "$DIR"
  other=$got
  [[ $(as_set "$first") == "$SORTED" ]] || fail "$api keyed lists $(tr '\n' ' ' <<<"$first")"
  [[ $first == "$again" ]] || fail "$api keyed twice with one key: two orders"
  [[ $first != "$other" ]] || fail "$api keyed with two keys: one order"
  [[ $first != "$SORTED" ]] || fail "$api keyed gives byte order"

  # The key orders names; glob orders its paths, so it has an order of its own.
  if [[ $api != *glob* ]]; then
    keyed_reference=${keyed_reference:-$first}
    [[ $first == "$keyed_reference" ]] || fail "$api keyed differs from ${apis[0]} with one key"
  fi
  echo "ok: $api"
done

# glob without GLOB_NOSORT sorts by itself; a caller's comparator rules.
descending=$(LC_ALL=C sort -r <<<"$SORTED")
for config in passive fileorder=sorted "$KEY_A"; do
  list glob_sorted "$config" "$DIR"
  [[ $got == "$SORTED" ]] || fail "glob without GLOB_NOSORT under '$config' gives $(tr '\n' ' ' <<<"$got")"
  list scandir_compare "$config" "$DIR"
  [[ $got == "$descending" ]] || fail "scandir with a comparator under '$config' gives $(tr '\n' ' ' <<<"$got")"
done
echo "ok: glob's own sort and scandir's comparator untouched"

# The DIR stream: two listings agree, telldir/seekdir round trip, rewinddir
# shows a new file, many streams open at once, threads listing at once.
for config in fileorder=sorted "$KEY_A"; do
  for check in twice tell rewind many threads; do
    run_shim glibc "$config" "$WORK/out" "$PROBE" "$check" "$DIR" ||
      fail "$check under '$config': $(cat "$WORK/out") $(head -3 "$WORK/out.err")"
    [[ $(head -1 "$WORK/out") == ok* ]] || fail "$check under '$config': $(cat "$WORK/out")"
    [[ $check != many ]] || grep -qx "ok 40 of 40 in one order" "$WORK/out" ||
      fail "many streams under '$config': $(cat "$WORK/out")"
  done
done
echo "ok: twice, telldir/seekdir, rewinddir, 40 streams at once, 8 threads"

# More streams than the table holds: the rest pass through, whole, counted.
run_shim glibc "$KEY_A" "$WORK/out" "$PROBE" full "$DIR" || fail "full: $(cat "$WORK/out")"
if [[ $(cat "$WORK/out") == skip* ]]; then
  echo "note: $(cat "$WORK/out"), the full table is not checked"
else
  grep -qx "ok 1024 of 1100 in one order" "$WORK/out" || fail "full table: $(cat "$WORK/out")"
  [[ $(awk -F'\t' '$1 == "fileorder_unseen" && $2 == "readdir" { print $3 }' "$REPORT") == 76 ]] ||
    fail "full table: $(grep fileorder_unseen "$REPORT" | tr '\n' ' ')"
  echo "ok: 1100 streams, 76 passed through and counted"
fi

# The report: a listing of one entry counts but is not ordered, and only
# ordered listings are listed, with their directory and caller.
unseen() { awk -F'\t' -v api="$1" '$1 == "fileorder_unseen" && $2 == api { print $3 }' "$REPORT"; }
check_report() {
  local api=$1 directory=$2 caller=$3
  need_report
  expect_report fileorder_listings 2
  expect_report fileorder_ordered 1
  local lines
  lines=$(grep -c '^fileorder_listing	' "$REPORT")
  [[ $lines == 1 ]] || fail "$api: $lines listing lines ($REPORT)"
  awk -F'\t' -v api="$api" -v dir="$directory" -v caller="$caller" '
    $1 == "fileorder_listing" && $2 == 1 && $3 == api && $4 == 20 && $5 == dir &&
    index($6, caller) == 1 { found = 1 }
    END { exit !found }' "$REPORT" || fail "$api: listing line $(grep '^fileorder_listing	' "$REPORT")"
  [[ $(unseen nftw) == 0 && $(unseen ftw) == 0 && $(unseen readdir) == 0 ]] ||
    fail "$api: unseen $(grep fileorder_unseen "$REPORT" | tr '\n' ' ')"
}
for config in fileorder=sorted "$KEY_A"; do
  list readdir "$config" "$DIR" "$ONE"
  check_report readdir "$DIR" probe_fileorder+0x
  list scandir "$config" "$DIR" "$ONE"
  check_report scandir "$DIR" probe_fileorder+0x
  list glob_nosort "$config" "$DIR" "$ONE"
  check_report glob "$DIR/*" probe_fileorder+0x
done
list fts fileorder=sorted "$DIR"
need_report
grep -q "^fileorder_listing	[0-9]*	fts	20	$DIR	probe_fileorder+0x" "$REPORT" ||
  fail "fts: $(grep '^fileorder' "$REPORT" | tr '\n' ' ')"
echo "ok: report counts and listing lines"

# nftw and ftw: the library walks them in its order, visiting what glibc
# visits. The tree has files, a symlink to a file, a dangling one, one to
# itself, one to a directory elsewhere (on another device where /dev/shm
# is one, for FTW_MOUNT), an empty directory and an unreadable one.
TREE=$(cd "$WORK" && pwd -P)/tree
OUTSIDE=$(mktemp -d /dev/shm/memdet-fileorder.XXXXXX 2>/dev/null) || OUTSIDE=$WORK/outside
mkdir -p "$OUTSIDE"
trap 'chmod -R u+rwx "$WORK"; rm -rf "$WORK" "$OUTSIDE"' EXIT
mkdir -p "$TREE/Zeta/deep/deeper" "$TREE/e5" "$TREE/noread" "$OUTSIDE/sub"
for name in m07 B2 a_1 z9 -dash Zeta/c Zeta/A Zeta/b Zeta/_x Zeta/9 Zeta/deep/q Zeta/deep/P \
  Zeta/deep/3 Zeta/deep/deeper/f1 Zeta/deep/deeper/F2 noread/inside; do
  : >"$TREE/$name"
done
: >"$OUTSIDE/o1"
: >"$OUTSIDE/O2"
: >"$OUTSIDE/sub/s"
ln -s a_1 "$TREE/lnk"
ln -s nowhere "$TREE/dang"
ln -s . "$TREE/self"
ln -s "$OUTSIDE" "$TREE/dlink"
chmod 000 "$TREE/noread"
WALKER=$SOURCES/fileorder_walk.py

# walk CONFIG API FLAGS DESCRIPTORS ACTION: sets `got` to the visits.
walk() {
  run_shim glibc "$1" "$WORK/walk" "$PROBE" walk "$2" "$3" "$4" "$TREE" "$5" ||
    fail "walk $2 $3 under '$1' failed: $(head -3 "$WORK/walk.err")"
  got=$(<"$WORK/walk")
}
judge() { "$PYTHON" "$WALKER" "$@"; }

# In keyed order every directory's names come as a readdir listing of it
# gives them under the same key.
keyed_like_readdir() {
  local config=$1 directory names listed
  while IFS=$'\t' read -r directory names; do
    list readdir "$config" "$directory"
    listed=$(grep -Fxf <(tr ' ' '\n' <<<"$names") <<<"$got" | tr '\n' ' ')
    [[ "$listed" == "$names " ]] ||
      fail "walk under '$config' gives $directory as $names, readdir as $listed"
  done < <(judge children "$TREE" "$WORK/keyed")
}

check_walks() {
  if [[ $(id -u) == 0 ]]; then
    echo "note: running as root, the unreadable directory is read: FTW_DNR is not checked"
  fi
  walks=("nftw - 8 -" "nftw depth 8 -" "nftw phys 8 -" "nftw phys,depth 1 -" "nftw mount 8 -"
    "nftw phys,chdir 1 -" "nftw phys,chdir,depth 2 -" "nftw actionretval 8 skip=Zeta"
    "nftw phys,actionretval 2 skip=deep" "nftw64 phys 4 -" "ftw - 8 -" "ftw64 - 1 -")
  for case in "${walks[@]}"; do
    read -r api flags descriptors action <<<"$case"
    order=pre
    [[ $flags == *depth* ]] && order=post

    walk passive "$api" "$flags" "$descriptors" "$action"
    glibc=$got
    [[ $(judge structure "$TREE" $order "$WORK/walk") == ok ]] ||
      fail "$case passive: $(judge structure "$TREE" $order "$WORK/walk")"
    unreadable=$(awk -F'\t' '$2 == 2 { print $1 }' "$WORK/walk")
    if [[ $(id -u) == 0 ]]; then
      [[ -z $unreadable ]] || fail "$case as root: glibc gave FTW_DNR for $unreadable"
    else
      [[ $unreadable == "$TREE/noread" ]] || fail "$case: glibc gave FTW_DNR for '$unreadable'"
    fi

    walk fileorder=sorted "$api" "$flags" "$descriptors" "$action"
    [[ $(as_set "$got") == "$(as_set "$glibc")" ]] ||
      fail "$case sorted visits otherwise: $(comm -3 <(as_set "$glibc") <(as_set "$got"))"
    [[ $(judge structure "$TREE" $order "$WORK/walk") == ok ]] ||
      fail "$case sorted: $(judge structure "$TREE" $order "$WORK/walk")"
    [[ $(judge sorted "$TREE" "$WORK/walk") == ok ]] ||
      fail "$case sorted: $(judge sorted "$TREE" "$WORK/walk")"
    need_report
    [[ $(unseen nftw) == 0 && $(unseen ftw) == 0 && $(unseen readdir) == 0 ]] ||
      fail "$case: unseen $(grep fileorder_unseen "$REPORT" | tr '\n' ' ')"

    walk "$KEY_A" "$api" "$flags" "$descriptors" "$action"
    cp "$WORK/walk" "$WORK/keyed"
    first=$got
    walk "$KEY_A" "$api" "$flags" "$descriptors" "$action"
    [[ $got == "$first" ]] || fail "$case keyed twice with one key: two orders"
    walk "$KEY_B" "$api" "$flags" "$descriptors" "$action"
    [[ $got != "$first" ]] || fail "$case keyed with two keys: one order"
    [[ $(as_set "$first") == "$(as_set "$glibc")" ]] || fail "$case keyed visits otherwise"
    [[ $(judge structure "$TREE" $order "$WORK/keyed") == ok ]] ||
      fail "$case keyed: $(judge structure "$TREE" $order "$WORK/keyed")"
    keyed_like_readdir "$KEY_A"
    echo "ok: $case"
  done

  # Every directory walked is one listing, named by the walk's API.
  walk fileorder=sorted nftw - 8 -
  need_report
  read_dirs=$(awk -F'\t' '$2 == 1' "$WORK/walk" | grep -c .)
  expect_report fileorder_listings "$read_dirs"
  [[ $(grep -c "^fileorder_listing	[0-9]*	nftw	.*	probe_fileorder+0x" "$REPORT") -ge 3 ]] ||
    fail "nftw listings: $(grep '^fileorder_listing' "$REPORT" | head -3)"
  walk fileorder=sorted ftw - 8 -
  need_report
  expect_report fileorder_listings "$read_dirs"
  grep -q "^fileorder_listing	[0-9]*	ftw	[0-9]*	$TREE	probe_fileorder+0x" "$REPORT" ||
    fail "ftw listing of $TREE: $(grep '^fileorder_listing' "$REPORT" | head -3)"
  walk "$KEY_A;fileorder_window=2-2" nftw - 8 -
  expect_report fileorder_windowed 1
  echo "ok: each directory walked is one listing ($read_dirs), inside a window too"

  # The callback's non-zero return ends the walk and is returned; errors give
  # -1 and errno as glibc's.
  for case in "nftw - 8 stop=3:7" "nftw actionretval 8 stop=2:1" "ftw - 8 stop=4:-5" \
    "nftw64 depth 8 stop=5:42" "nftw unknown 8 -"; do
    read -r api flags descriptors action <<<"$case"
    walk passive "$api" "$flags" "$descriptors" "$action"
    glibc=$(tail -1 <<<"$got")
    glibc_visits=$(grep -vc '^return ' <<<"$got")
    for config in fileorder=sorted "$KEY_A"; do
      walk "$config" "$api" "$flags" "$descriptors" "$action"
      ending=$(tail -1 <<<"$got")
      visits=$(grep -vc '^return ' <<<"$got")
      [[ $ending == "$glibc" && $visits == "$glibc_visits" ]] ||
        fail "$case under '$config': $visits visits, $ending; glibc $glibc_visits, $glibc"
    done
  done
  for start in "$TREE/missing" ""; do
    run_plain glibc "$WORK/walk" "$PROBE" walk nftw - 8 "$start" -
    glibc=$(<"$WORK/walk")
    run_shim glibc fileorder=sorted "$WORK/walk" "$PROBE" walk nftw - 8 "$start" -
    [[ $(<"$WORK/walk") == "$glibc" && $glibc == "return -1 ENOENT" ]] ||
      fail "nftw of '$start': $(<"$WORK/walk"), glibc $glibc"
  done
  echo "ok: a callback's return stops the walk and is returned; errors as glibc's"
}
if [[ -x $PYTHON ]]; then
  check_walks
else
  echo "note: $PYTHON missing, the walks (judged in Python) are not checked"
fi

# A Python listing names the Python frames that made it.
if [[ -x $PYTHON ]]; then
  list py_listdir fileorder=sorted "$DIR"
  need_report
  grep "^fileorder_listing	[0-9]*	readdir	20	$DIR	" "$REPORT" | grep -q "|py:$LISTER:" ||
    fail "Python caller: $(grep "^fileorder_listing.*$DIR" "$REPORT")"
  echo "ok: Python listings name their frames"
fi

# fileorder_window: only the listings inside it take the keyed order.
list readdir "$KEY_A" "$DIR"
KEYED_A=$got
[[ $KEYED_A != "$SORTED" ]] || fail "key A happens to give byte order; the window check needs another key"
list readdir "$KEY_A;fileorder_window=2-2" "$DIR" "$DIR" "$DIR"
expected=$(printf '%s\n%s\n%s' "$SORTED" "$KEYED_A" "$SORTED")
[[ $got == "$expected" ]] || fail "window 2-2: listings 1 and 3 sorted, 2 keyed; got $(tr '\n' ' ' <<<"$got")"
expect_report fileorder_windowed 1
list readdir "$KEY_A;fileorder_window=4-9" "$DIR" "$DIR"
[[ $got == "$(printf '%s\n%s' "$SORTED" "$SORTED")" ]] || fail "a window past the listings keyed one"
echo "ok: fileorder_window keys only the listings inside it"
