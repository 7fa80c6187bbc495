# Release builds of git revisions for the benchmarks that compare one with another
# (bench/load.sh, bench/webhooks.sh). Sourced; the caller defines REPO, TMP, say and die, and may
# set BASE_ROOT (where the builds live) and BASE_KEEP (how many are kept).
BASE_ROOT="${BASE_ROOT:-$REPO/build-release-baseline}"
BASE_KEEP="${BASE_KEEP:-3}"

commit_of() {  # rev -> full sha of that commit
  git -C "$REPO" rev-parse --verify --quiet "$1^{commit}" || die "not a git revision: '$1'"
}
describe() {  # sha -> "abc1234 subject"
  git -C "$REPO" log -1 --format='%h %s' "$1" | cut -c1-70
}

# Builds a git revision in Release in $BASE_ROOT/<sha>, from a copy of the revision extracted
# into the temp dir (deleted right after). A directory holding a finished build of that commit
# (its .bench-built stamp) is reused as it is. Sets REV_BIN and REV_PLANS.
build_revision() {  # rev
  local sha dir src
  sha="$(commit_of "$1")"
  dir="$BASE_ROOT/$sha"
  mkdir -p "$BASE_ROOT"
  if [[ -f "$dir/.bench-built" && -x "$dir/billing" && -f "$dir/plans.json" ]]; then
    say "$1 ($(describe "$sha")): reusing the Release build in $dir"
  else
    say "$1 ($(describe "$sha")): Release build in $dir"
    rm -rf "$dir"
    src="$TMP/src-$sha"
    mkdir -p "$src"
    git -C "$REPO" archive "$sha" | tar -x -C "$src" || die "could not extract $1 from git"
    cmake -S "$src" -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=Release -DBILLING_WERROR=ON >/dev/null ||
      die "cmake failed for $1"
    ninja -C "$dir" billing || die "the build of $1 failed"
    cp "$src/config/plans.json" "$dir/plans.json"
    echo "$sha" >"$dir/.bench-built"
    rm -rf "$src"
  fi
  touch "$dir"  # most recently used: pruning keeps it
  REV_BIN="$dir/billing"
  REV_PLANS="$dir/plans.json"
}

# Keeps the $BASE_KEEP most recently used revision builds (only <40 hex digits> directories).
prune_revisions() {
  local d n=0
  while IFS= read -r d; do
    [[ "$(basename "$d")" =~ ^[0-9a-f]{40}$ ]] || continue
    n=$((n + 1))
    ((n > BASE_KEEP)) && rm -rf -- "$d"
  done < <(ls -1dt "$BASE_ROOT"/*/ 2>/dev/null)
  return 0
}
