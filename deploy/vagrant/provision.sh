#!/usr/bin/env bash
# Vagrant shell provisioner for one Shoal VM (see ../../Vagrantfile).
#
# Installs the shoal binary and the example services, the hardened systemd
# unit, /etc/shoal/agent.json, and starts the agent and this VM's examples.
# Safe to run again (`vagrant provision`): it rewrites everything and
# restarts what changed.
#
# Binaries come from /vagrant/dist/ (built on the host, see the Vagrantfile).
# A binary missing there is built here with the official Go tarball from
# go.dev, at the version go.mod names, checked against the .sha256 file
# published beside it. Debian's golang packages are not used: bookworm has
# Go 1.19 and bookworm-backports is also older than the Go 1.26 go.mod asks
# for.
#
# Environment (set by the Vagrantfile):
#   SHOAL_NODE_NAME   node_name, e.g. shoal-1
#   SHOAL_IP          this VM's private-network address, e.g. 192.168.56.11
#   SHOAL_RETRY_JOIN  space-separated addresses to retry-join
#   SHOAL_EXAMPLES    space-separated example services to run here
set -euo pipefail

: "${SHOAL_NODE_NAME:?}" "${SHOAL_IP:?}"
SHOAL_RETRY_JOIN=${SHOAL_RETRY_JOIN:-}
SHOAL_EXAMPLES=${SHOAL_EXAMPLES:-}

SRC=/vagrant
DIST=$SRC/dist
EXAMPLES_DIR=/usr/local/lib/shoal-examples
ALL_EXAMPLES="user-service payment-service client"

log() { echo "provision[$SHOAL_NODE_NAME]: $*"; }

# ensure_go installs the Go toolchain go.mod asks for into /usr/local/go,
# once.
ensure_go() {
  local want arch url tgz
  want="go$(sed -n 's/^go //p' "$SRC/go.mod")"
  if [ -x /usr/local/go/bin/go ] && [ "$(/usr/local/go/bin/go env GOVERSION)" = "$want" ]; then
    return
  fi
  arch=$(dpkg --print-architecture) # amd64, arm64: the names go.dev uses
  url="https://dl.google.com/go/$want.linux-$arch.tar.gz"
  log "installing $want from $url"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends curl ca-certificates
  tgz=$(mktemp)
  curl -fsSL -o "$tgz" "$url"
  echo "$(curl -fsSL "$url.sha256")  $tgz" | sha256sum -c --quiet -
  rm -rf /usr/local/go
  tar -C /usr/local -xzf "$tgz"
  rm -f "$tgz"
}

# install_bin NAME PKG DEST copies dist/NAME to DEST, or builds the main
# package in directory PKG (relative to the source tree) into DEST. go -C
# works whether PKG is in the main module or is a module of its own.
install_bin() {
  local name=$1 pkg=$2 dest=$3
  if [ -x "$DIST/$name" ]; then
    log "installing $dest from dist/$name"
    install -m 0755 "$DIST/$name" "$dest"
    return
  fi
  if [ ! -d "$SRC/$pkg" ]; then
    log "ERROR: no dist/$name and no $pkg to build it from"
    return 1
  fi
  ensure_go
  log "dist/$name is missing: building $pkg in the VM"
  CGO_ENABLED=0 GOFLAGS=-buildvcs=false HOME=/root \
    /usr/local/go/bin/go build -C "$SRC/$pkg" -trimpath -o "$dest.new" .
  mv -f "$dest.new" "$dest"
}

# --- the agent

install_bin shoal cmd/shoal /usr/local/bin/shoal
install -m 0644 "$SRC/deploy/systemd/shoal.service" /etc/systemd/system/shoal.service

# bind_addr is a go-sockaddr template, resolved by the agent at start. The
# private network is eth1 on the Debian boxes; look it up rather than trust
# that.
iface=$(ip -o -4 addr show | awk -v ip="$SHOAL_IP" 'index($4, ip "/") == 1 { print $2; exit }')
if [ -z "$iface" ]; then
  log "ERROR: no interface has $SHOAL_IP"
  exit 1
fi

join_json=""
for ip in $SHOAL_RETRY_JOIN; do
  join_json="$join_json${join_json:+, }\"$ip\""
done

install -d -m 0755 /etc/shoal
# The gossip key the Vagrantfile made for the three VMs; only root reads it
# (systemd passes it to the agent).
if [ -z "${SHOAL_GOSSIP_KEY:-}" ]; then
  log "ERROR: SHOAL_GOSSIP_KEY is not set (the Vagrantfile passes it)"
  exit 1
fi
(umask 077 && printf 'SHOAL_ENCRYPT=%s\n' "$SHOAL_GOSSIP_KEY" >/etc/shoal/gossip.env)
cat >/etc/shoal/agent.json.new <<JSON
{
  "node_name": "$SHOAL_NODE_NAME",
  "bind_addr": "{{ GetInterfaceIP \"$iface\" }}",
  "retry_join": [$join_json],
  "data_dir": "/var/lib/shoal",
  "log_level": "info"
}
JSON
chmod 0644 /etc/shoal/agent.json.new
mv -f /etc/shoal/agent.json.new /etc/shoal/agent.json

systemctl daemon-reload
systemctl enable shoal.service
systemctl restart shoal.service

for _ in $(seq 30); do
  if /usr/local/bin/shoal members >/dev/null 2>&1; then break; fi
  sleep 1
done
/usr/local/bin/shoal members || { journalctl -u shoal --no-pager -n 30; exit 1; }
# GetInterfaceIP takes the interface's first forwardable address, which is
# an IPv6 one if the interface has a global IPv6 address too: make sure the
# agent gossips on the address the others retry-join.
addr=$(/usr/local/bin/shoal members | awk -v n="$SHOAL_NODE_NAME" '$1 == n { print $2 }')
if [ "$addr" != "$SHOAL_IP:7946" ]; then
  log "ERROR: the agent gossips on $addr, not $SHOAL_IP:7946; set bind_addr in /etc/shoal/agent.json to $SHOAL_IP"
  exit 1
fi

# --- the example services

# One template unit runs any example: shoal-example@user-service.service
# runs $EXAMPLES_DIR/user-service. They talk to the local agent on
# 127.0.0.1:8500 (SHOAL_HTTP_ADDR and CONSUL_HTTP_ADDR both say so);
# /etc/default/shoal-example-NAME gives this VM's address and any flags.
cat >/etc/systemd/system/shoal-example@.service <<UNIT
[Unit]
Description=Shoal example service %i
Wants=shoal.service
After=shoal.service network-online.target

[Service]
Environment=SHOAL_HTTP_ADDR=127.0.0.1:8500 CONSUL_HTTP_ADDR=127.0.0.1:8500
EnvironmentFile=-/etc/default/shoal-example-%i
ExecStart=$EXAMPLES_DIR/%i \$ARGS
Restart=on-failure
RestartSec=2s
DynamicUser=yes
ProtectSystem=strict
ProtectHome=yes
PrivateTmp=yes
NoNewPrivileges=yes
CapabilityBoundingSet=
RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX AF_NETLINK
SystemCallFilter=@system-service

[Install]
WantedBy=multi-user.target
UNIT
install -d -m 0755 "$EXAMPLES_DIR"
systemctl daemon-reload

failed=""
for name in $ALL_EXAMPLES; do
  case " $SHOAL_EXAMPLES " in
    *" $name "*) ;;
    *)
      systemctl disable --now "shoal-example@$name.service" 2>/dev/null || true
      continue
      ;;
  esac
  if ! install_bin "$name" "examples/$name" "$EXAMPLES_DIR/$name"; then
    failed="$failed $name"
    continue
  fi
  # The services listen on (and register) the private address, so that
  # the client on another VM can reach them.
  case "$name" in
    user-service) args="--addr $SHOAL_IP:8081" ;;
    payment-service) args="--addr $SHOAL_IP:8082" ;;
    *) args="" ;;
  esac
  printf 'HOST_IP=%s\nARGS=%s\n' "$SHOAL_IP" "$args" >"/etc/default/shoal-example-$name"
  systemctl enable "shoal-example@$name.service"
  systemctl restart "shoal-example@$name.service"
done

if [ -n "$failed" ]; then
  log "ERROR: could not install:$failed"
  exit 1
fi
log "agent and examples ($SHOAL_EXAMPLES) running"
