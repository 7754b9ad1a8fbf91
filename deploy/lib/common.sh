# Shared by every deploy/ script: paths, ports, logging, process bookkeeping.
# shellcheck shell=bash
set -Eeuo pipefail

DEPLOY_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
REPO_DIR=$(cd "$DEPLOY_DIR/.." && pwd)
# shellcheck source=../versions.env
source "$DEPLOY_DIR/versions.env"

MEDCERT_CACHE=${MEDCERT_CACHE:-$HOME/.cache/medcert}
DEFAULT_RUN=$REPO_DIR/.run
MEDCERT_RUN=${MEDCERT_RUN:-$DEFAULT_RUN}
# The hospitals' key services keep their secrets beside the run directory, never in it:
# whoever copies the run directory (identities, logs, the description) opens no record.
MEDCERT_KEYS=${MEDCERT_KEYS:-${MEDCERT_RUN%/}.keys}
# deploy/up leaves this file in every run directory (and key directory) it makes, so that
# it empties only directories it made.
RUN_MARKER=.medcert-run
BIN_DIR=$MEDCERT_CACHE/bin
# shellcheck disable=SC2034 # read by the scripts that source this file
{
  FABRIC_HOME=$MEDCERT_CACHE/fabric-$FABRIC_VERSION
  KUBO_HOME=$MEDCERT_CACHE/kubo-$KUBO_VERSION
  ANVIL_HOME=$MEDCERT_CACHE/anvil-$ANVIL_VERSION
  S3_HOME=$MEDCERT_CACHE/medcert-s3-$S3S_FS_VERSION
  DOMAIN=medcert.local
  CHAINCODE_NAME=hospital
  # Hospital counts, each defined here only: deploy/up without --hospitals, the demo's
  # network (deploy/demo) and the test command's (deploy/test).
  DEFAULT_HOSPITALS=2
  DEMO_HOSPITALS=${DEMO_HOSPITALS:-3}
  TEST_HOSPITALS=${TEST_HOSPITALS:-10}
  # The topology deploy/up builds without --peers and --orderers: each hospital's peers
  # (its chaincode needs endorsements from a majority of them) and the Raft ordering
  # cluster's nodes.
  DEFAULT_PEERS=2
  DEFAULT_ORDERERS=3
  # The loopback address of the shared services and the ordering organisation.
  SHARED_HOST=127.0.0.1
}
export PATH="$BIN_DIR:$PATH"

# Every port can be overridden from the environment. The shared services (anvil, Kubo,
# S3) and the ordering organisation listen on 127.0.0.1; hospital i's peers, chaincode
# server and key service on its own loopback address, 127.0.0.(i+1) (org_host).
ANVIL_PORT=${ANVIL_PORT:-8545}
ANVIL_CHAIN_ID=${ANVIL_CHAIN_ID:-31337}
KUBO_API_PORT=${KUBO_API_PORT:-5001}
KUBO_GATEWAY_PORT=${KUBO_GATEWAY_PORT:-8080}
S3_PORT=${S3_PORT:-9000}
# Orderer k (0-based) listens on ORDERER_PORT + 10k, its admin on ORDERER_ADMIN_PORT + 10k,
# its operations on ORDERER_OPS_PORT + k.
ORDERER_PORT=${ORDERER_PORT:-7050}
ORDERER_ADMIN_PORT=${ORDERER_ADMIN_PORT:-7053}
ORDERER_OPS_PORT=${ORDERER_OPS_PORT:-8443}
# On each hospital's address: peer p (0-based) on PEER_BASE_PORT + 2p and its chaincode
# listener on the next port, its operations on PEER_OPS_BASE_PORT + p; the chaincode
# server on CHAINCODE_BASE_PORT, the key service on KEY_SERVICE_BASE_PORT.
PEER_BASE_PORT=${PEER_BASE_PORT:-7051}
PEER_OPS_BASE_PORT=${PEER_OPS_BASE_PORT:-9444}
CHAINCODE_BASE_PORT=${CHAINCODE_BASE_PORT:-9999}
KEY_SERVICE_BASE_PORT=${KEY_SERVICE_BASE_PORT:-7600}

S3_BUCKET=${S3_BUCKET:-medcert}
S3_ACCESS_KEY=${S3_ACCESS_KEY:-medcert}
S3_REGION=${S3_REGION:-us-east-1}

log() { printf '[deploy] %s\n' "$*" >&2; }
die() { printf '[deploy] error: %s\n' "$*" >&2; exit 1; }

# The loopback address of the shared services and the ordering organisation (below), and
# of hospital i's services.
org_host() { echo "127.0.0.$(($1 + 1))"; }
orderer_port() { echo $((ORDERER_PORT + 10 * $1)); }
orderer_admin_port() { echo $((ORDERER_ADMIN_PORT + 10 * $1)); }
orderer_ops_port() { echo $((ORDERER_OPS_PORT + $1)); }
peer_port() { echo $((PEER_BASE_PORT + 2 * $1)); }
peer_ops_port() { echo $((PEER_OPS_BASE_PORT + $1)); }
# The run directory's name of each process (its pid file, its log).
orderer_name() { echo "orderer$1"; }
peer_name() { echo "hospital$1-peer$2"; }

# require_tool NAME: fail with the install step that provides NAME.
require_tool() {
  command -v "$1" >/dev/null 2>&1 || die "$1 is not installed: run deploy/install"
}

# the_one FILE...: the single file a glob matched (an unmatched glob stays as written).
the_one() {
  if (($# != 1)) || [[ ! -f $1 ]]; then die "expected exactly one file, found: $*"; fi
  echo "$1"
}

# port_in_use HOST PORT
port_in_use() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

# ensure_port_free HOST PORT SERVICE
ensure_port_free() {
  if port_in_use "$1" "$2"; then
    die "port $2 (wanted by $3) is already in use on $1: free it or set another port in the environment"
  fi
}

pid_file() { echo "$MEDCERT_RUN/pids/$1.pid"; }

is_running() {
  local f
  f=$(pid_file "$1")
  [[ -f $f ]] && kill -0 "$(cat "$f")" 2>/dev/null
}

# start_service NAME [env VAR=VALUE...] CMD...: run CMD in the background in its own
# process group, with the VARs in its environment, logging to $MEDCERT_RUN/logs/NAME.log,
# and remember its pid. The VARs are exported, never passed as arguments: a process's
# arguments are readable by every local user (ps), its environment by its owner only.
start_service() {
  local name=$1
  shift
  mkdir -p "$MEDCERT_RUN/pids" "$MEDCERT_RUN/logs"
  (
    if [[ $1 == env ]]; then
      shift
      while [[ $1 == *=* ]]; do
        export "${1?}"
        shift
      done
    fi
    exec setsid "$@" >>"$MEDCERT_RUN/logs/$name.log" 2>&1 </dev/null
  ) &
  echo $! >"$(pid_file "$name")"
}

# start_network_service NAME CMD...: like start_service, except under
# MEDCERT_SERVICES=external, where it only writes the service's specification
# ($MEDCERT_RUN/services/NAME.json: tool, args, env) for someone else to start — the
# container tests start each one from its image with testcontainers.
start_network_service() {
  local name=$1
  shift
  if [[ ${MEDCERT_SERVICES:-processes} != external ]]; then
    start_service "$name" "$@"
    return
  fi
  local env=()
  if [[ $1 == env ]]; then
    shift
    while [[ $1 == *=* ]]; do env+=("$1"); shift; done
  fi
  local tool=$1
  shift
  # A specification may hold a secret in its environment (the S3 server's key).
  (umask 077 && mkdir -p "$MEDCERT_RUN/services")
  # NUL-separated lists, so that no argument is ever read as a jq option.
  local env_json='{}' args_json='[]'
  if ((${#env[@]})); then
    env_json=$(printf '%s\0' "${env[@]}" | jq -Rs \
      '[split("\u0000")[] | select(. != "") | capture("^(?<key>[^=]*)=(?<value>.*)$")] | from_entries')
  fi
  if (($#)); then args_json=$(printf '%s\0' "$@" | jq -Rs 'split("\u0000") | map(select(. != ""))'); fi
  # The environment goes through jq's input, not its arguments.
  (umask 077 && jq --arg name "$name" --arg tool "$tool" --argjson args "$args_json" \
    '{name: $name, tool: $tool, env: ., args: $args}' <<<"$env_json" \
    >"$MEDCERT_RUN/services/$name.json")
}

# stop_service NAME: SIGTERM the process group, then SIGKILL after a grace period.
stop_service() {
  local name=$1 f pid
  f=$(pid_file "$name")
  [[ -f $f ]] || return 0
  pid=$(cat "$f")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL -- "-$pid" 2>/dev/null || true
  fi
  rm -f "$f"
}

# wait_until SECONDS WHAT CMD...: poll CMD until it succeeds.
wait_until() {
  local timeout=$1 what=$2
  shift 2
  local deadline=$((SECONDS + timeout))
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || die "$what did not become ready within ${timeout}s (see $MEDCERT_RUN/logs)"
    sleep 0.2
  done
}

http_ok() { curl -fsS --max-time 2 "$@" >/dev/null; }

# logged_to NAME CMD...: CMD with its output appended to $MEDCERT_RUN/logs/NAME.log.
logged_to() {
  local name=$1
  shift
  "$@" >>"$MEDCERT_RUN/logs/$name.log" 2>&1
}

# is_precious PATH (canonical): /, a top-level directory, or $HOME or the repository or
# a directory above either.
is_precious() {
  local p=$1 home
  home=$(realpath -m -- "$HOME")
  [[ $p != /*/* || $home == "$p" || $home == "$p"/* || $REPO_DIR == "$p" || $REPO_DIR == "$p"/* ]]
}

# is_inside PATH ROOT: PATH (canonical) is strictly below ROOT, and ROOT is not precious.
is_inside() {
  local root
  root=$(realpath -m -- "$2")
  ! is_precious "$root" && [[ $1 == "$root"/?* ]]
}

# run_dir_is_ours: deploy/up may empty the run directory: it is the default one, or it
# holds the marker deploy/up leaves, or it does not exist yet.
run_dir_is_ours() {
  local run
  run=$(realpath -m -- "$MEDCERT_RUN")
  ! is_precious "$run" &&
    [[ $run == "$(realpath -m -- "$DEFAULT_RUN")" || -f $run/$RUN_MARKER || ! -e $run ]]
}

# key_dir_is_ours: the key services' directory holds deploy/up's marker, or does not
# exist yet, and is not a precious path.
key_dir_is_ours() {
  local keys
  keys=$(realpath -m -- "$MEDCERT_KEYS")
  ! is_precious "$keys" && [[ -f $keys/$RUN_MARKER || ! -e $keys ]]
}

# is_ours PATH (canonical): inside the cache, the run directory or what is in it when
# deploy/up made it, the key services' directory deploy/up made, or a directory made by
# mktemp.
is_ours() {
  local p=$1 run tmp
  run=$(realpath -m -- "$MEDCERT_RUN")
  tmp=$(realpath -m -- "${TMPDIR:-/tmp}")
  is_inside "$p" "$MEDCERT_CACHE" && return 0
  [[ $p == "$run" || $p == "$run"/?* ]] && run_dir_is_ours && return 0
  key_dir_is_ours && [[ $p == "$(realpath -m -- "$MEDCERT_KEYS")" ]] && return 0
  [[ $p == "$tmp"/tmp.* && $p != "$tmp"/*/* ]]
}

# safe_rm_rf PATH...: rm -rf of medcert's own paths only. MEDCERT_CACHE and MEDCERT_RUN
# come from the environment: an empty or mistaken value must not remove anything else.
safe_rm_rf() {
  local p real
  for p in "$@"; do
    [[ -n $p ]] || die "refusing to remove an empty path"
    real=$(realpath -m -- "$p")
    if is_precious "$real"; then
      die "refusing to remove $p: it is /, a top-level directory, HOME, the repository or above them"
    fi
    is_ours "$real" || die "refusing to remove $p: it is not inside $MEDCERT_CACHE, a run" \
      "directory made by deploy/up (holding $RUN_MARKER), or a directory made by mktemp"
    rm -rf -- "$p"
  done
}
