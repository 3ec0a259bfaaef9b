#!/usr/bin/env bash
# A private Open vSwitch (ovsdb-server + ovs-vswitchd) for development and tests: its own
# database, run directory and unix sockets, userspace datapath only (bridges must use
# datapath_type=netdev; the openvswitch kernel module is neither needed nor touched), no systemd.
#
#   ovs.sh up        create the database if needed, start both daemons unless they run, wait
#                    until ovs-vswitchd answers; prints OVS_DIR=, OVS_RUNDIR= and OVS_DB= lines
#   ovs.sh down      stop both daemons (their bridges go with them) and remove the state
#   ovs.sh status    whether the daemons run
#   ovs.sh env       the OVS_DIR=, OVS_RUNDIR=, OVS_DB= lines (for `eval`), whether or not it runs
#
# Talk to it with:  OVS_RUNDIR=$OVS_RUNDIR ovs-vsctl --db=$OVS_DB ...   (ovs-ofctl finds the
# bridges' management sockets, <bridge>.mgmt, in OVS_RUNDIR; ovs-appctl the daemons' .ctl there).
# Environment: STRATA_OVS_DIR (state, default /tmp/strata-ovs; keep it short: unix socket
# paths are limited to 107 bytes); STRATA_OVS_NETNS (run both daemons inside that existing
# network namespace: a simulated host with its own interfaces and routing table, which the
# userspace datapath's tunnels use; the sockets stay reachable from anywhere). Needs root (veth ports are opened with AF_PACKET, the
# bridges' internal ports are tap devices).
set -euo pipefail

state="${STRATA_OVS_DIR:-/tmp/strata-ovs}"
db="unix:$state/db.sock"
schema="${STRATA_OVS_SCHEMA:-/usr/share/openvswitch/vswitch.ovsschema}"

die() { echo "ovs.sh: $*" >&2; exit 1; }

export OVS_RUNDIR="$state" OVS_LOGDIR="$state" OVS_DBDIR="$state" OVS_SYSCONFDIR="$state"

# Alive and not a zombie: detached daemons are children of init, which may reap them late.
alive() { kill -0 "$1" 2>/dev/null && ! grep -q '^[0-9]* ([^)]*) Z' "/proc/$1/stat" 2>/dev/null; }
running() { local f="$state/$1.pid"; [ -f "$f" ] && alive "$(cat "$f")"; }
netns="${STRATA_OVS_NETNS:-}"
# Runs a daemon in the namespace, if one is set.
in_ns() { if [ -n "$netns" ]; then ip netns exec "$netns" "$@"; else "$@"; fi; }
vsctl() { ovs-vsctl --db="$db" --timeout=10 "$@"; }

print_env() { printf 'OVS_DIR=%s\nOVS_RUNDIR=%s\nOVS_DB=%s\n' "$state" "$state" "$db"; }

stop_pid() {
  local name=$1 pid deadline=$((SECONDS + 10))
  [ -f "$state/$name.pid" ] || return 0
  pid=$(cat "$state/$name.pid")
  kill -TERM "$pid" 2>/dev/null || return 0
  while alive "$pid"; do
    if [ "$SECONDS" -ge "$deadline" ]; then kill -KILL "$pid" 2>/dev/null || true; break; fi
    sleep 0.02
  done
}

up() {
  for c in ovsdb-tool ovsdb-server ovs-vswitchd ovs-vsctl ovs-ofctl; do
    command -v "$c" >/dev/null || die "$c is not installed (apt-get install openvswitch-switch)"
  done
  [ "$(id -u)" = 0 ] || die "must run as root (AF_PACKET ports and tap devices)"
  if running ovsdb-server && running ovs-vswitchd && vsctl show >/dev/null 2>&1 \
      && ovs-appctl -t "$state/ovs-vswitchd.ctl" version >/dev/null 2>&1; then
    print_env
    return 0
  fi
  # Half up (one daemon died, or a stale pidfile after a reboot): start over on the same db.
  stop_pid ovs-vswitchd
  stop_pid ovsdb-server
  mkdir -p "$state"
  [ -f "$state/conf.db" ] || ovsdb-tool create "$state/conf.db" "$schema"
  rm -f "$state/db.sock"
  in_ns ovsdb-server "$state/conf.db" --remote="punix:$state/db.sock" \
    --pidfile="$state/ovsdb-server.pid" --unixctl="$state/ovsdb-server.ctl" \
    --log-file="$state/ovsdb-server.log" -vconsole:off --detach --no-chdir \
    || die "ovsdb-server did not start (log: $state/ovsdb-server.log)"
  vsctl --no-wait init
  # Bridges left in the db from an earlier run would be recreated with ports whose devices
  # (veths, namespaces) are gone: a fresh vswitchd starts with no bridges.
  for br in $(vsctl --no-wait list-br); do vsctl --no-wait del-br "$br"; done
  # --disable-system: no kernel datapath at all; only datapath_type=netdev bridges work.
  in_ns ovs-vswitchd "$db" --disable-system \
    --pidfile="$state/ovs-vswitchd.pid" --unixctl="$state/ovs-vswitchd.ctl" \
    --log-file="$state/ovs-vswitchd.log" -vconsole:off --detach --no-chdir \
    || die "ovs-vswitchd did not start (log: $state/ovs-vswitchd.log)"
  # ovs-vswitchd has applied the configuration once `vsctl` (which waits for it) returns.
  local deadline=$((SECONDS + 20))
  until vsctl set Open_vSwitch . external_ids:strata=dev >/dev/null 2>&1; do
    running ovs-vswitchd || { tail -n 20 "$state/ovs-vswitchd.log" >&2; die "ovs-vswitchd exited"; }
    [ "$SECONDS" -lt "$deadline" ] || die "ovs-vswitchd did not answer within 20 s (log: $state/ovs-vswitchd.log)"
    sleep 0.1
  done
  print_env
}

down() {
  stop_pid ovs-vswitchd
  stop_pid ovsdb-server
  rm -rf "$state"
  echo "OVS down"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  env) print_env ;;
  status)
    for d in ovsdb-server ovs-vswitchd; do
      if running "$d"; then echo "$d: running (pid $(cat "$state/$d.pid"))"; else echo "$d: stopped"; fi
    done ;;
  *) sed -n '2,/^set -e/p' "$0" | grep '^#' | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
