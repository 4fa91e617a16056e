#!/usr/bin/env bash
# Runs README.md's walk-through top to bottom against a fresh server, as a new user would paste it.
#
#   scripts/readme-walk.sh            build (npm run build), then run node dist/server.js
#   scripts/readme-walk.sh --no-build reuse the existing dist/ (fails if there is none)
#   scripts/readme-walk.sh --source   run src/server.ts through tsx, no build (what the test does)
#
# It reads the ```sh and ```bash blocks of README.md from the top through the "## Configuration" section,
# in order, and:
#   - skips a block preceded by the line <!-- readme-walk: skip --> (npm ci, npm test, ...);
#   - does not run the block preceded by <!-- readme-walk: server --> but starts the server itself with the
#     NAME=value assignments in front of that block's `npm start` (ADMIN_EMAIL, ADMIN_PASSWORD), on the
#     embedded database in a temporary DATA_DIR, on a free port, every other setting at its default;
#   - runs every other block, in one bash with `set -Eeuo pipefail`, in a temporary directory (the files
#     the walk writes land there), with the walk's one `API=http://127.0.0.1:8000` line pointed at that
#     port. No other line may name 127.0.0.1:8000 or localhost:8000: every call goes through $API.
# Any failing command fails the walk (exit 1) with the README line it is near; the server is stopped
# (SIGTERM) and the temporary directories removed in every case. Needs bash, curl, jq and node.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
readme="$root/README.md"
mode=build
case "${1:-}" in
  '') ;;
  --no-build) mode=dist ;;
  --source) mode=source ;;
  *)
    echo "usage: $0 [--no-build | --source]" >&2
    exit 2
    ;;
esac

die() {
  printf 'readme-walk: %s\n' "$*" >&2
  exit 1
}

for tool in curl jq node; do
  command -v "$tool" >/dev/null || die "$tool is not installed (the README's walk uses it)"
done

work=$(mktemp -d "${TMPDIR:-/tmp}/readme-walk.XXXXXX")
server_pid=""
cleanup() {
  local status=$?
  if [[ -n "$server_pid" ]] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid" 2>/dev/null || true
    for _ in $(seq 1 150); do
      kill -0 "$server_pid" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$server_pid" 2>/dev/null; then
      echo "readme-walk: the server did not stop within 15 s of SIGTERM; killing it" >&2
      kill -KILL "$server_pid" 2>/dev/null || true
      status=1
    fi
    wait "$server_pid" 2>/dev/null || true
  fi
  if [[ $status -ne 0 && -s "$work/server.log" ]]; then
    echo "----- the server's last 40 log lines -----" >&2
    tail -n 40 "$work/server.log" >&2
  fi
  rm -rf -- "$work"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---- the blocks: "kind<TAB>README line<TAB>file" per block, kind run or server ----
awk -v out="$work/block" '
  !inside && /^## / { if (configuration) exit; if ($0 ~ /^## Configuration[[:space:]]*$/) configuration = 1 }
  !inside && /^```(sh|bash)[[:space:]]*$/ {
    inside = 1; n++; file = out n; printf "" > file
    kind = marker == "skip" ? "skip" : marker == "server" ? "server" : "run"
    printf "%s\t%d\t%s\n", kind, NR + 1, file
    marker = ""; next
  }
  inside && /^```[[:space:]]*$/ { inside = 0; close(file); next }
  inside { print > file; next }
  /^<!-- readme-walk: (skip|server) -->[[:space:]]*$/ { marker = $3; next }
  /[^[:space:]]/ { marker = "" }
  END { if (inside) { print "unclosed code fence in README.md" > "/dev/stderr"; exit 1 } }
' "$readme" >"$work/blocks.tsv"
grep -q '^## Configuration[[:space:]]*$' "$readme" || die "README.md has no \"## Configuration\" section"

server_block=""
run_blocks=()
while IFS=$'\t' read -r kind line file; do
  case "$kind" in
    server)
      [[ -z "$server_block" ]] || die "README.md line $line: a second <!-- readme-walk: server --> block"
      [[ ${#run_blocks[@]} -eq 0 ]] || die "README.md line $line: the server block must come before the blocks that call it"
      server_block=$file
      ;;
    run) run_blocks+=("$line"$'\t'"$file") ;;
  esac
done <"$work/blocks.tsv"
[[ -n "$server_block" ]] || die "README.md has no block marked <!-- readme-walk: server -->"
[[ ${#run_blocks[@]} -gt 0 ]] || die "README.md has no shell block to run"

# The server's settings: the NAME=value words in front of `npm start` in the server block.
start_line=$(grep -E '(^|[[:space:]])npm start[[:space:]]*$' "$server_block" | tail -n 1) ||
  die "the <!-- readme-walk: server --> block has no line ending in \`npm start\`"
server_settings=()
read -ra words <<<"${start_line%npm start*}"
for word in "${words[@]}"; do
  [[ "$word" =~ ^[A-Z][A-Z0-9_]*=[^[:space:]]*$ ]] || die "cannot read \"$word\" in front of npm start (only NAME=value words)"
  server_settings+=("$word")
done

# ---- the walk as one script ----
port=$(node -e '
  const server = require("node:net").createServer();
  server.listen(0, "127.0.0.1", () => { console.log(server.address().port); server.close(); });
')
api="http://127.0.0.1:$port"
walk="$work/walk.sh"
{
  cat <<'HEADER'
set -Eeuo pipefail
readme_offset=0
# Where it failed, in README lines (LINENO counts lines of this generated file); said once, by the walk's
# own shell, not again by each command substitution the failure passed through.
trap '[[ $BASHPID == "$$" ]] && echo "readme-walk: FAILED near README.md line $((LINENO + readme_offset)): $BASH_COMMAND" >&2' ERR
# The README's `curl -fsS` fails on an error status but shows only the status. Here, where the answer
# is not written to a file (-o), a failed call also prints the server's problem+json to stderr.
curl() {
  local arg args=() body status fsS=0 to_file=0
  for arg in "$@"; do
    [[ $arg == -fsS ]] && fsS=1
    [[ $arg == -o ]] && to_file=1
  done
  if [[ $fsS == 0 || $to_file == 1 ]]; then
    command curl "$@"
    return
  fi
  for arg in "$@"; do
    if [[ $arg == -fsS ]]; then args+=(-sS -w '\n%{http_code}'); else args+=("$arg"); fi
  done
  body=$(command curl "${args[@]}") || return
  status=${body##*$'\n'}
  body=${body%$'\n'*}
  if [[ ! $status =~ ^[23] ]]; then
    printf 'readme-walk: HTTP %s from curl %s\n%s\n' "$status" "$*" "$body" >&2
    return 22
  fi
  printf '%s\n' "$body"
}
HEADER
} >"$walk"
api_lines=0
for entry in "${run_blocks[@]}"; do
  line=${entry%%$'\t'*}
  file=${entry#*$'\t'}
  if grep -nE '(127\.0\.0\.1|localhost):8000' "$file" | grep -vE '^[0-9]+:API=http://127\.0\.0\.1:8000[[:space:]]*$' >"$work/stray"; then
    die "README.md block at line $line names the server's address outside the API= line (use \$API): $(head -n 1 "$work/stray")"
  fi
  api_lines=$((api_lines + $(grep -cE '^API=http://127\.0\.0\.1:8000[[:space:]]*$' "$file" || true)))
  generated_start=$(($(wc -l <"$walk") + 2))
  {
    printf 'echo "### README.md line %d" >&2; readme_offset=%d\n' "$line" "$((line - generated_start))"
    sed -E "s#^API=http://127\\.0\\.0\\.1:8000[[:space:]]*\$#API=$api#" "$file"
  } >>"$walk"
done
[[ $api_lines -eq 1 ]] || die "the walk must set API=http://127.0.0.1:8000 on a line of its own exactly once (found $api_lines)"

# ---- the server ----
cd "$root"
case "$mode" in
  build)
    echo "readme-walk: npm run build" >&2
    npm run build >"$work/build.log" 2>&1 || {
      cat "$work/build.log" >&2
      die "npm run build failed"
    }
    server_command=(node dist/server.js)
    ;;
  dist)
    [[ -f dist/server.js ]] || die "no dist/server.js to reuse: run npm run build, or drop --no-build"
    server_command=(node dist/server.js)
    ;;
  source) server_command=(node --import tsx src/server.ts) ;;
esac

# Every setting of the README's configuration table (and NODE_ENV) set empty, which counts as unset and
# also overrides a developer's .env: the walk sees the defaults a new user gets.
blank=(NODE_ENV=)
while read -r name; do blank+=("$name="); done < <(
  awk '/^## Configuration/ { on = 1; next } on && /^## / { exit } on && /^\|/' "$readme" | cut -d'|' -f2 |
    grep -oE '`[A-Z][A-Z0-9_]*`' | tr -d '`' | sort -u
)
env -i PATH="$PATH" HOME="${HOME:-/tmp}" "${blank[@]}" \
  DATA_DIR="$work/data" PORT="$port" HOST=127.0.0.1 "${server_settings[@]}" \
  "${server_command[@]}" >"$work/server.log" 2>&1 &
server_pid=$!
echo "readme-walk: server pid $server_pid on $api (${server_command[*]}), DATA_DIR $work/data" >&2

started=$SECONDS
until curl -fsS -o /dev/null "$api/health" 2>/dev/null; do
  kill -0 "$server_pid" 2>/dev/null || die "the server exited before answering /health"
  ((SECONDS - started < 120)) || die "no answer from $api/health within 120 s"
  sleep 0.2
done
echo "readme-walk: the server answered /health after $((SECONDS - started)) s" >&2

# ---- the walk ----
mkdir "$work/cwd"
walk_started=$SECONDS
(cd "$work/cwd" && bash "$walk") || die "the walk failed (its output is above)"
echo "readme-walk: OK, ${#run_blocks[@]} blocks in $((SECONDS - walk_started)) s" >&2
