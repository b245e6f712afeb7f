#!/usr/bin/env bash
# N Shoal hosts on one Linux machine, each in a network namespace of its
# own, wired to one bridge the way the Vagrant VMs share a private network.
#
#   scripts/netns-cluster.sh up N          build, start N hosts, wait until all agree
#   scripts/netns-cluster.sh down          stop everything, remove namespaces and state
#   scripts/netns-cluster.sh status        what runs where
#   scripts/netns-cluster.sh exec I CMD... run CMD in host I's namespace (shoal on PATH)
#   scripts/netns-cluster.sh link I down|up  pull host I's cable out, or put it back
#
# Host I is the namespace shoal-I with 10.77.0.(10+I)/24 on eth0, a veth
# whose other end is a port of bridge br0 in the namespace shoal-hub. The
# root namespace (its links, routes and firewall) is never touched. Each host
# runs `shoal agent --node host-I` on the default ports (gossip 7946 on eth0,
# HTTP 127.0.0.1:8500, DNS 127.0.0.1:8600: every namespace has its own
# loopback), joining host 1, and example services spread as in the
# Vagrantfile: user-service and the client on host 1, user-service on host 2,
# payment-service on host 3, then alternately user and payment.
#
# Environment:
#   SHOAL_NETNS_STATE    binaries, logs, pid files, data dirs (/run/shoal-netns)
#   SHOAL_NETNS_PREFIX   namespace names are PREFIX-I and PREFIX-hub (shoal)
#   SHOAL_NETNS_WAIT     seconds `up` waits for the agents to agree (60)
#   SHOAL_NETNS_EXAMPLES 0: agents only, no example services (1)
#   SHOAL_NETNS_CLIENT   0: no client on host 1 (1)
#   SHOAL_NETNS_KEEP     1: a failed `up` leaves what it started, to look at (0)
#   SHOAL_NETNS_DATA_SIZE  each host's data dir is a tmpfs of this size (such
#                        as 1m), to fill for a full-disk test (off)
#   SHOAL_BIN            a shoal binary to use instead of building one
#   SHOAL_AGENT_ARGS     more `shoal agent` flags, split on blanks; they come
#                        last, so they win
#   SHOAL_BIND           the --bind address or go-sockaddr template
#                        ({{ GetInterfaceIP "eth0" }})
#   SHOAL_*              the agent's own variables (SHOAL_RECONNECT_INTERVAL,
#                        SHOAL_LOG_LEVEL, ...) reach every agent
# sudo drops the environment: sudo SHOAL_RECONNECT_INTERVAL=1s scripts/... up 3
set -euo pipefail

PREFIX=${SHOAL_NETNS_PREFIX:-shoal}
STATE=${SHOAL_NETNS_STATE:-/run/shoal-netns}
WAIT=${SHOAL_NETNS_WAIT:-60}
SUBNET=10.77.0
HUB=$PREFIX-hub
BIN=$STATE/bin
MARK=$STATE/.netns-cluster # says the state dir is ours to delete
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# Every namespace has the agent on its own loopback at the default address;
# an address meant for some other agent must not leak into the hosts.
unset SHOAL_HTTP_ADDR

die() {
  echo "netns-cluster: $*" >&2
  exit 1
}
say() { echo "netns-cluster: $*"; }

usage() {
  sed -n '5,9p' "${BASH_SOURCE[0]}" | sed 's/^#  *//' >&2
  exit 2
}

[[ $PREFIX =~ ^[A-Za-z0-9][A-Za-z0-9_.-]*$ ]] || die "SHOAL_NETNS_PREFIX: letters, digits, _ . - only, got '$PREFIX'"
[[ $WAIT =~ ^[0-9]+$ ]] || die "SHOAL_NETNS_WAIT: whole seconds, got '$WAIT'"
[ -n "$STATE" ] && [ "$STATE" != / ] || die "SHOAL_NETNS_STATE: must name a directory other than /"

ns() { echo "$PREFIX-$1"; }
host_ip() { echo "$SUBNET.$((10 + $1))"; }

# our_namespaces lists the namespaces of this prefix: PREFIX-hub and
# PREFIX-<number>, whatever N the cluster was started with.
our_namespaces() {
  local re="^${PREFIX//./\\.}-(hub|[0-9]+)\$"
  ip netns list 2>/dev/null | awk '{ print $1 }' | grep -E "$re" || true
}

# alive says whether pid runs: a zombie no parent reaps is dead to us.
alive() {
  local st
  st=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1) || return 1
  [ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ]
}

# is_agent says whether pid is `shoal agent` (argv[1] is "agent").
is_agent() {
  [ "$(tr '\0' '\n' <"/proc/$1/cmdline" 2>/dev/null | sed -n 2p)" = agent ]
}

# terminate sends SIGTERM to the pids, waits up to 15 s for them to exit,
# then kills what is left.
terminate() {
  [ $# -gt 0 ] || return 0
  kill -TERM "$@" 2>/dev/null || true
  local deadline=$((SECONDS + 15)) left p
  while :; do
    left=()
    for p; do alive "$p" && left+=("$p"); done
    [ ${#left[@]} -gt 0 ] || return 0
    if [ $SECONDS -ge $deadline ]; then break; fi
    sleep 0.1
  done
  say "killing ${left[*]}: still running 15 s after SIGTERM"
  kill -KILL "${left[@]}" 2>/dev/null || true
  deadline=$((SECONDS + 5))
  while [ $SECONDS -lt $deadline ]; do
    left=()
    for p; do alive "$p" && left+=("$p"); done
    [ ${#left[@]} -gt 0 ] || return 0
    sleep 0.1
  done
  die "processes ${left[*]} survive SIGKILL"
}

cmd_down() {
  local nss=() agents=() others=() n pid f
  local -A seen=()
  mapfile -t nss < <(our_namespaces)
  for n in ${nss[@]+"${nss[@]}"}; do
    # Every process in our namespaces is ours, pid files or not (a run
    # left half up may not have written them).
    for pid in $(ip netns pids "$n" 2>/dev/null); do seen[$pid]=1; done
  done
  # And so is a process of a pid file still running our binaries, should
  # its namespace have been deleted under it.
  for f in "$STATE"/host-*/*.pid; do
    [ -e "$f" ] || continue
    pid=$(cat "$f")
    if [[ $pid =~ ^[0-9]+$ ]] && [[ $(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) == "$BIN/"* ]]; then
      seen[$pid]=1
    fi
  done
  for pid in "${!seen[@]}"; do
    if is_agent "$pid"; then agents+=("$pid"); else others+=("$pid"); fi
  done
  if [ ${#nss[@]} -eq 0 ] && [ ! -e "$MARK" ]; then
    say "nothing to stop (no namespace $PREFIX-*)"
    return 0
  fi
  # The services first, so that they deregister with their agents; then
  # the agents, which leave the cluster.
  if [ ${#others[@]} -gt 0 ]; then
    say "stopping ${#others[@]} example programs"
    terminate "${others[@]}"
  fi
  if [ ${#agents[@]} -gt 0 ]; then
    say "stopping ${#agents[@]} agents"
    terminate "${agents[@]}"
  fi
  for n in ${nss[@]+"${nss[@]}"}; do
    ip netns del "$n" 2>/dev/null || [ ! -e "/run/netns/$n" ] || die "cannot delete namespace $n"
  done
  [ ${#nss[@]} -eq 0 ] || say "deleted namespaces ${nss[*]}"
  if [ -e "$MARK" ]; then
    for f in "$STATE"/host-*/data; do
      if mountpoint -q "$f" 2>/dev/null; then umount -l "$f" || die "cannot unmount $f"; fi
    done
    rm -rf "$STATE"
    say "removed $STATE"
  fi
}

# examples_of prints the example programs host i of n runs: the
# Vagrantfile's layout for three, alternating user and payment beyond, and
# payment on the last host when there are fewer than three.
examples_of() {
  local i=$1 n=$2 list
  case $i in
    1) list="user-service" ;;
    2) list="user-service" ;;
    *) if [ $((i % 2)) -eq 1 ]; then list="payment-service"; else list="user-service"; fi ;;
  esac
  if [ "$n" -lt 3 ] && [ "$i" -eq "$n" ]; then list="$list payment-service"; fi
  echo "$list"
}

build() {
  local pkgs=() go
  mkdir -p "$BIN"
  if [ -n "${SHOAL_BIN:-}" ]; then
    [ -x "$SHOAL_BIN" ] || die "SHOAL_BIN=$SHOAL_BIN is not an executable"
    ln -sf "$(realpath "$SHOAL_BIN")" "$BIN/shoal"
  else
    pkgs+=(./cmd/shoal)
  fi
  if [ "${SHOAL_NETNS_EXAMPLES:-1}" != 0 ]; then
    pkgs+=(./examples/user-service ./examples/payment-service ./examples/client)
  fi
  [ ${#pkgs[@]} -gt 0 ] || return 0
  # sudo's secure_path usually leaves Go out.
  go=$(command -v go || true)
  [ -n "$go" ] || { [ -x /usr/local/go/bin/go ] && go=/usr/local/go/bin/go; } ||
    die "no go on PATH to build ${pkgs[*]} (or set SHOAL_BIN and SHOAL_NETNS_EXAMPLES=0)"
  say "building ${pkgs[*]#./} into $BIN"
  (cd "$ROOT" && "$go" build -o "$BIN/" "${pkgs[@]}")
}

network() {
  local n=$1 i h
  ip netns add "$HUB"
  ip -n "$HUB" link set lo up
  ip -n "$HUB" link add br0 type bridge
  ip -n "$HUB" link set br0 up
  for i in $(seq "$n"); do
    h=$(ns "$i")
    ip netns add "$h"
    ip -n "$h" link set lo up
    ip -n "$h" link add eth0 type veth peer name "h$i" netns "$HUB"
    ip -n "$HUB" link set "h$i" master br0 up
    ip -n "$h" addr add "$(host_ip "$i")/24" dev eth0
    ip -n "$h" link set eth0 up
  done
  say "namespaces $HUB (bridge br0) and $(ns 1)..$(ns "$n") on $SUBNET.0/24"
}

# start runs CMD in host i's namespace in the background, in a session of
# its own (so no terminal hangup reaches it), logging to NAME.log; its pid
# goes to NAME.pid. setsid does not fork here (a background job is not a
# process group leader) and `ip netns exec` execs, so $! is CMD's pid.
start() {
  local i=$1 name=$2 dir=$STATE/host-$1
  shift 2
  setsid ip netns exec "$(ns "$i")" "$@" </dev/null >>"$dir/$name.log" 2>&1 &
  echo $! >"$dir/$name.pid"
}

in_host() {
  local i=$1
  shift
  ip netns exec "$(ns "$i")" "$@"
}

# fail_with_log stops `up` with the tail of host i's NAME.log.
fail_with_log() {
  local i=$1 name=$2
  shift 2
  echo "netns-cluster: $*; the end of $STATE/host-$i/$name.log:" >&2
  tail -n 20 "$STATE/host-$i/$name.log" >&2 || true
  exit 1
}

cmd_up() {
  local n=${1:-}
  [[ $n =~ ^[1-9][0-9]*$ ]] && [ "$n" -le 200 ] || die "up: N must be 1 to 200, got '${n}'"
  if [ -n "$(our_namespaces)" ] || [ -e "$MARK" ]; then
    say "cleaning up what a previous run left"
    cmd_down
  fi
  # down deletes the state dir: never take over one with something else in it.
  if [ -d "$STATE" ] && [ -n "$(ls -A "$STATE")" ]; then
    die "SHOAL_NETNS_STATE=$STATE is not empty and was not made by this script"
  fi
  mkdir -p "$STATE"
  touch "$MARK"
  # A failed up takes down what it started (after printing why), unless
  # asked to keep it for a look.
  trap 'say "up failed; taking it all down (SHOAL_NETNS_KEEP=1 keeps it)"; [ "${SHOAL_NETNS_KEEP:-0}" = 1 ] || cmd_down' EXIT
  build
  network "$n"

  local bind=${SHOAL_BIND:-'{{ GetInterfaceIP "eth0" }}'} extra=() i dir deadline
  read -r -a extra <<<"${SHOAL_AGENT_ARGS:-}"
  # Gossip is encrypted, as it should be anywhere: one key for the
  # cluster, made once and kept with its state (0600), given to the agents
  # by environment so that it is not in their command lines.
  if [ ! -s "$STATE/gossip.key" ]; then
    (umask 077 && "$BIN/shoal" keygen >"$STATE/gossip.key")
  fi
  SHOAL_ENCRYPT=$(cat "$STATE/gossip.key")
  export SHOAL_ENCRYPT
  for i in $(seq "$n"); do
    dir=$STATE/host-$i
    mkdir -p "$dir/data"
    if [ -n "${SHOAL_NETNS_DATA_SIZE:-}" ]; then
      mount -t tmpfs -o "size=$SHOAL_NETNS_DATA_SIZE,mode=0700" tmpfs "$dir/data" ||
        die "cannot mount a tmpfs of $SHOAL_NETNS_DATA_SIZE on $dir/data"
    fi
    local join=()
    # Host 1 founds the cluster; the others find it there (and again,
    # after a restart, through the peers kept in their data dirs).
    [ "$i" -eq 1 ] || join=(--retry-join "$(host_ip 1)")
    start "$i" agent "$BIN/shoal" agent --node "host-$i" --bind "$bind" \
      ${join[@]+"${join[@]}"} --data-dir "$dir/data" ${extra[@]+"${extra[@]}"}
  done
  say "started $n agents; waiting for their HTTP APIs"
  deadline=$((SECONDS + WAIT))
  for i in $(seq "$n"); do
    until in_host "$i" "$BIN/shoal" members >/dev/null 2>&1; do
      alive "$(cat "$STATE/host-$i/agent.pid")" || fail_with_log "$i" agent "the agent of host $i exited"
      [ $SECONDS -lt $deadline ] || fail_with_log "$i" agent "the agent of host $i does not answer after ${WAIT}s"
      sleep 0.2
    done
  done

  if [ "${SHOAL_NETNS_EXAMPLES:-1}" != 0 ]; then
    local ex port
    for i in $(seq "$n"); do
      for ex in $(examples_of "$i" "$n"); do
        case $ex in
          user-service) port=8081 ;;
          payment-service) port=8082 ;;
        esac
        # Listening on (and registering) the host's own address, so that
        # a client on another host can call it.
        start "$i" "$ex" "$BIN/$ex" --addr "$(host_ip "$i"):$port"
      done
    done
    if [ "${SHOAL_NETNS_CLIENT:-1}" != 0 ]; then
      start 1 client "$BIN/client"
    fi
    say "started the example services"
  fi

  say "waiting up to ${WAIT}s for every agent to see $n members alive"
  local seen
  for i in $(seq "$n"); do
    while :; do
      seen=$(in_host "$i" "$BIN/shoal" members 2>/dev/null | awk 'NR > 1 && $3 == "alive"' | wc -l) || seen=0
      [ "$seen" -lt "$n" ] || break
      alive "$(cat "$STATE/host-$i/agent.pid")" || fail_with_log "$i" agent "the agent of host $i exited"
      [ $SECONDS -lt $deadline ] || fail_with_log "$i" agent "host $i sees $seen of $n members alive after ${WAIT}s"
      sleep 0.2
    done
    say "host-$i sees $n members alive"
  done
  # A template may resolve to another address than the one the others
  # join (an IPv6 one, say): check what each agent gossips on.
  local addr
  for i in $(seq "$n"); do
    addr=$(in_host "$i" "$BIN/shoal" members | awk -v n="host-$i" '$1 == n { print $2 }')
    case $addr in
      "$(host_ip "$i")":*) ;;
      *) fail_with_log "$i" agent "host $i gossips on '$addr', not $(host_ip "$i"): --bind '$bind' resolved elsewhere" ;;
    esac
  done

  trap - EXIT
  echo
  cmd_status
  cat <<EOF

Look around ($BIN is on PATH inside \`exec\`):
  $0 exec $n shoal members
  $0 exec $n shoal services
  ip netns exec $(ns "$n") $BIN/shoal services user --passing
  $0 exec $n curl -s '127.0.0.1:8500/v1/health/service/payment?passing'
  $0 exec $n dig @127.0.0.1 -p 8600 user.service.shoal. SRV
  tail -f $STATE/host-1/*.log
Pull a host's cable out and watch it fail, then heal:
  $0 link $n down; $0 link $n up
Stop it all:
  $0 down
EOF
}

cmd_status() {
  local nss=() n i pids pid what line found=0 link addr
  mapfile -t nss < <(our_namespaces | awk -F- '{ print $NF "\t" $0 }' | sort -n | cut -f2)
  local width=${#HUB}
  for n in ${nss[@]+"${nss[@]}"}; do
    [ "$n" != "$HUB" ] || continue
    found=1
    i=${n##*-}
    addr=$(ip -n "$n" -4 -o addr show dev eth0 2>/dev/null | awk '{ print $4 }')
    link=$(ip -n "$HUB" -o link show "h$i" 2>/dev/null | grep -q 'state UP' && echo up || echo down)
    line=""
    pids=$(ip netns pids "$n" 2>/dev/null || true)
    for pid in $pids; do
      what=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | awk '{ sub(".*/", "", $1); print ($2 == "agent" ? $1 " agent" : $1) }')
      if [ -n "$what" ]; then line="$line${line:+, }$what ($pid)"; fi
    done
    printf '%-8s  %-*s  %-15s  link %-4s  %s\n' "host-$i" "$width" "$n" "${addr:-?}" "$link" "${line:-nothing running}"
  done
  if [ "$found" = 0 ]; then
    say "no cluster up (no namespace $PREFIX-1..N)"
    return 0
  fi
  for n in ${nss[@]+"${nss[@]}"}; do
    [ "$n" != "$HUB" ] || continue
    i=${n##*-}
    echo
    echo "members as host-$i sees them:"
    in_host "$i" "$BIN/shoal" members 2>&1 | sed 's/^/  /' || true
    break
  done
}

cmd_exec() {
  local i=${1:-}
  [[ $i =~ ^[0-9]+$ ]] && [ $# -ge 2 ] || die "usage: exec I CMD..."
  [ -e "/run/netns/$(ns "$i")" ] || die "no host $i (namespace $(ns "$i")): is the cluster up?"
  shift
  exec ip netns exec "$(ns "$i")" env PATH="$BIN:$PATH" "$@"
}

cmd_link() {
  local i=${1:-} state=${2:-}
  [[ $i =~ ^[0-9]+$ ]] && [[ $state =~ ^(up|down)$ ]] || die "usage: link I down|up"
  ip -n "$HUB" link show "h$i" >/dev/null 2>&1 || die "no host $i on the bridge: is the cluster up?"
  ip -n "$HUB" link set "h$i" "$state"
  say "host-$i's link is $state"
}

[ $# -ge 1 ] || usage
[ "$(id -u)" -eq 0 ] || die "must run as root (it creates network namespaces): sudo $0 $*"
command -v ip >/dev/null || die "needs ip from iproute2"
cmd=$1
shift
case $cmd in
  up) cmd_up "$@" ;;
  down) cmd_down ;;
  status) cmd_status ;;
  exec) cmd_exec "$@" ;;
  link) cmd_link "$@" ;;
  *) usage ;;
esac
