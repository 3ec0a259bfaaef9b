#!/usr/bin/env bash
# Makes this machine ready for `npm test`: openssl, Java and Maven (Kafka comes through them from Maven
# Central, started by the tests themselves via infra/kafka/kafka.sh), a PostgreSQL server
# on 127.0.0.1:5432 with a database "test", and QEMU with a Debian cloud kernel and a static
# busybox (the qemu compute driver's tests boot real guests: scripts/build-test-image.sh), and Open
# vSwitch with iproute2, ethtool, ping and dnsmasq (the network agent's tests start their own
# userspace-datapath OVS via infra/ovs/ovs.sh and send real packets between network namespaces;
# nothing here starts the Debian openvswitch service). Installs Debian packages only when something is
# missing and we are root; otherwise it says what to install.
set -euo pipefail

missing=()
command -v java >/dev/null || missing+=(default-jre-headless)
command -v mvn >/dev/null || missing+=(maven)
command -v pg_ctlcluster >/dev/null || missing+=(postgresql)
# The identity API makes its TLS certificates with openssl.
command -v openssl >/dev/null || missing+=(openssl)
# The qemu compute driver and its test image.
installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'ok installed'; }
command -v qemu-system-x86_64 >/dev/null || missing+=(qemu-system-x86)
command -v qemu-img >/dev/null || missing+=(qemu-utils)
ls /boot/vmlinuz-*-cloud-amd64 >/dev/null 2>&1 || missing+=(linux-image-cloud-amd64)
installed busybox-static || missing+=(busybox-static)
# The OVS network agent: ovsdb-server/ovs-vswitchd/ovs-vsctl/ovs-ofctl, namespaces and veths,
# veth offloads off (ethtool), ping for the packet tests, dnsmasq for DHCP.
command -v ovs-vswitchd >/dev/null || missing+=(openvswitch-switch)
command -v ip >/dev/null || missing+=(iproute2)
command -v ethtool >/dev/null || missing+=(ethtool)
command -v ping >/dev/null || missing+=(iputils-ping)
command -v dnsmasq >/dev/null || missing+=(dnsmasq-base)
command -v iptables-restore >/dev/null && command -v conntrack >/dev/null || missing+=(iptables conntrack)  # the L3 agent's router namespaces
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "test-env: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >/dev/null
    apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "test-env: please install ${missing[*]} (Debian packages)" >&2
    exit 1
  fi
fi

pg_url="${STRATA_TEST_PG_URL:-postgres://postgres:postgres@127.0.0.1:5432/test}"
if ! pg_isready -q -h 127.0.0.1 -p 5432; then
  version=$(ls /etc/postgresql | sort -V | tail -n 1)
  echo "test-env: starting PostgreSQL $version"
  pg_ctlcluster --skip-systemctl-redirect "$version" main start
  for _ in $(seq 1 50); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 0.2; done
fi
if ! psql "$pg_url" -qAtc 'select 1' >/dev/null 2>&1; then
  # A fresh Debian cluster asks TCP clients for a password: give postgres the one the tests use.
  if [ "$(id -u)" = 0 ]; then
    su postgres -c "psql -qAtc \"ALTER USER postgres PASSWORD 'postgres'\"" >/dev/null
    su postgres -c "psql -qAtc \"SELECT 1 FROM pg_database WHERE datname = 'test'\"" | grep -q 1 \
      || su postgres -c "createdb test"
  fi
  psql "$pg_url" -qAtc 'select 1' >/dev/null || { echo "test-env: cannot reach $pg_url" >&2; exit 1; }
fi
echo "test-env: java, maven, openssl, PostgreSQL, qemu, the test image packages and Open vSwitch ready"
