#!/usr/bin/env bash
# A real Apache Kafka (KRaft, combined broker+controller nodes) on loopback, for development,
# tests and benchmarks. The broker jars come from Maven Central through Maven into a cache.
#
#   kafka.sh up [--nodes 1|3]    fetch jars if needed, format, start, wait until every broker serves
#   kafka.sh down                stop every node (TERM, then KILL after 20 s) and remove the data
#   kafka.sh kill-node I         SIGKILL node I (0-based), for failover tests
#   kafka.sh start-node I        start node I again on its existing data and wait until it serves
#   kafka.sh status              print the nodes and whether they run
#
# Node i listens on 127.0.0.1:$((19092+i)) (clients) and 127.0.0.1:$((19192+i)) (controller).
# Environment: STRATA_KAFKA_DIR (state, default /tmp/strata-kafka), STRATA_KAFKA_CACHE (jars),
# KAFKA_HEAP_OPTS (default -Xmx512m -Xms256m per node).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
version="$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$here/pom.xml")"
state="${STRATA_KAFKA_DIR:-/tmp/strata-kafka}"
cache="${STRATA_KAFKA_CACHE:-$HOME/.cache/strata/kafka/$version}"
heap="${KAFKA_HEAP_OPTS:--Xmx512m -Xms256m}"

die() { echo "kafka.sh: $*" >&2; exit 1; }

fetch() {
  [ -f "$cache/.complete" ] && return 0
  command -v java >/dev/null || die "java is not installed (apt-get install default-jre-headless)"
  command -v mvn >/dev/null || die "maven is not installed (apt-get install maven)"
  echo "fetching Apache Kafka $version from Maven Central into $cache" >&2
  mkdir -p "$cache/libs"
  if ! out=$(mvn -q -B -f "$here/pom.xml" dependency:copy-dependencies -DincludeScope=runtime \
      -DoutputDirectory="$cache/libs" 2>&1); then
    echo "$out" >&2
    die "could not fetch the Kafka jars with Maven (see the error above)"
  fi
  touch "$cache/.complete"
}

port() { echo $((19092 + $1)); }
cport() { echo $((19192 + $1)); }
pidfile() { echo "$state/node-$1.pid"; }
running() { local f; f=$(pidfile "$1"); [ -f "$f" ] && kill -0 "$(cat "$f")" 2>/dev/null; }
node_count() { cat "$state/nodes" 2>/dev/null || echo 0; }

write_config() {
  local i=$1 n=$2 rf min voters="" j
  for ((j = 0; j < n; j++)); do voters+="${voters:+,}$((j + 1))@127.0.0.1:$(cport "$j")"; done
  if [ "$n" -ge 3 ]; then rf=3; min=2; else rf=1; min=1; fi
  mkdir -p "$state/node-$i/data" "$state/node-$i/logs"
  cat > "$state/node-$i/server.properties" <<PROPS
process.roles=broker,controller
node.id=$((i + 1))
controller.quorum.voters=$voters
listeners=PLAINTEXT://127.0.0.1:$(port "$i"),CONTROLLER://127.0.0.1:$(cport "$i")
advertised.listeners=PLAINTEXT://127.0.0.1:$(port "$i")
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
log.dirs=$state/node-$i/data
num.partitions=1
auto.create.topics.enable=false
default.replication.factor=$rf
min.insync.replicas=$min
offsets.topic.replication.factor=$rf
offsets.topic.num.partitions=8
transaction.state.log.replication.factor=$rf
transaction.state.log.min.isr=$min
transaction.state.log.num.partitions=8
group.initial.rebalance.delay.ms=0
transaction.abort.timed.out.transaction.cleanup.interval.ms=2000
transaction.remove.expired.transaction.cleanup.interval.ms=10000
unclean.leader.election.enable=false
# A killed node is fenced, and its partitions get new leaders, after 3 s rather than 9 s.
broker.session.timeout.ms=3000
broker.heartbeat.interval.ms=500
log.segment.bytes=67108864
num.network.threads=2
num.io.threads=2
num.replica.fetchers=1
background.threads=2
log.cleaner.threads=1
log.cleaner.dedupe.buffer.size=16777216
PROPS
  cat > "$state/node-$i/log4j.properties" <<PROPS
log4j.rootLogger=WARN, file
log4j.appender.file=org.apache.log4j.RollingFileAppender
log4j.appender.file.File=$state/node-$i/logs/server.log
log4j.appender.file.MaxFileSize=20MB
log4j.appender.file.MaxBackupIndex=2
log4j.appender.file.layout=org.apache.log4j.PatternLayout
log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka=INFO
log4j.logger.org.apache.kafka=INFO
PROPS
}

# Sets JAVA_CMD (an array: the class path's * must reach java unexpanded) for node $1.
java_cmd() {
  local i=$1
  # shellcheck disable=SC2206
  JAVA_CMD=(java $heap -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Djava.awt.headless=true
    "-Dlog4j.configuration=file:$state/node-$i/log4j.properties" -cp "$cache/libs/*")
}

start_node() {
  local i=$1
  running "$i" && return 0
  java_cmd "$i"
  nohup "${JAVA_CMD[@]}" kafka.Kafka "$state/node-$i/server.properties" \
    > "$state/node-$i/logs/stdout.log" 2>&1 &
  echo $! > "$(pidfile "$i")"
}

# Serves when a client connects and sees the expected number of brokers.
wait_serving() {
  local want=$1 deadline=$((SECONDS + ${2:-120}))
  until node "$here/probe.mjs" "127.0.0.1:$(port 0),127.0.0.1:$(port $((want > 1 ? 1 : 0)))" "$want" >/dev/null 2>&1; do
    for ((j = 0; j < $(node_count); j++)); do
      if [ -f "$(pidfile "$j")" ] && ! running "$j"; then
        tail -n 30 "$state/node-$j/logs/stdout.log" >&2 || true
        die "node $j exited while starting (log: $state/node-$j/logs)"
      fi
    done
    [ "$SECONDS" -lt "$deadline" ] || die "Kafka did not serve within ${2:-120}s (logs: $state/node-*/logs)"
    sleep 0.5
  done
}

bootstrap() {
  local n=$1 out="" j
  for ((j = 0; j < n; j++)); do out+="${out:+,}127.0.0.1:$(port "$j")"; done
  echo "$out"
}

up() {
  local n=1
  while [ $# -gt 0 ]; do
    case "$1" in
      --nodes) n="$2"; shift 2 ;;
      --nodes=*) n="${1#*=}"; shift ;;
      *) die "unknown option $1 (usage: kafka.sh up [--nodes 1|3])" ;;
    esac
  done
  [[ "$n" =~ ^[13]$ ]] || die "--nodes must be 1 or 3, got $n"
  if [ "$(node_count)" = "$n" ]; then
    local all=1 j
    for ((j = 0; j < n; j++)); do running "$j" || all=0; done
    if [ "$all" = 1 ]; then
      wait_serving "$n" 60
      echo "Kafka $version already up with $n node(s): $(bootstrap "$n")"
      return 0
    fi
  fi
  [ "$(node_count)" = 0 ] || down
  fetch
  mkdir -p "$state"
  local cluster_id j
  java_cmd 0
  cluster_id=$("${JAVA_CMD[@]}" kafka.tools.StorageTool random-uuid 2>/dev/null | tail -n 1)
  [ -n "$cluster_id" ] || die "kafka.tools.StorageTool random-uuid printed nothing (java: $(java -version 2>&1 | head -1))"
  echo "$cluster_id" > "$state/cluster-id"
  echo "$n" > "$state/nodes"
  for ((j = 0; j < n; j++)); do
    write_config "$j" "$n"
    java_cmd "$j"
    "${JAVA_CMD[@]}" kafka.tools.StorageTool format -t "$cluster_id" \
      -c "$state/node-$j/server.properties" --ignore-formatted > "$state/node-$j/logs/format.log" 2>&1 \
      || { cat "$state/node-$j/logs/format.log" >&2; die "formatting node $j failed"; }
  done
  for ((j = 0; j < n; j++)); do start_node "$j"; done
  wait_serving "$n" 180
  echo "Kafka $version up with $n node(s): $(bootstrap "$n")"
}

stop_pid() {
  local pid=$1 deadline=$((SECONDS + 20))
  kill -TERM "$pid" 2>/dev/null || return 0
  while kill -0 "$pid" 2>/dev/null; do
    if [ "$SECONDS" -ge "$deadline" ]; then kill -KILL "$pid" 2>/dev/null || true; break; fi
    sleep 0.2
  done
}

down() {
  local n j
  n=$(node_count)
  # Stop all nodes at once: a controller quorum stopping one by one waits for the others.
  for ((j = 0; j < n; j++)); do running "$j" && kill -TERM "$(cat "$(pidfile "$j")")" 2>/dev/null || true; done
  for ((j = 0; j < n; j++)); do [ -f "$(pidfile "$j")" ] && stop_pid "$(cat "$(pidfile "$j")")"; done
  rm -rf "$state"
  echo "Kafka down"
}

case "${1:-}" in
  up) shift; up "$@" ;;
  down) down ;;
  kill-node)
    [ -n "${2:-}" ] || die "usage: kafka.sh kill-node I"
    running "$2" && kill -KILL "$(cat "$(pidfile "$2")")"
    while running "$2"; do sleep 0.1; done
    echo "node $2 killed" ;;
  start-node)
    [ -n "${2:-}" ] || die "usage: kafka.sh start-node I"
    [ -f "$state/node-$2/server.properties" ] || die "node $2 was never configured"
    fetch; start_node "$2"; wait_serving "$(node_count)" 120; echo "node $2 serving" ;;
  status)
    n=$(node_count)
    [ "$n" != 0 ] || { echo "Kafka is not up"; exit 0; }
    for ((j = 0; j < n; j++)); do
      if running "$j"; then echo "node $j: running, 127.0.0.1:$(port "$j")"; else echo "node $j: stopped"; fi
    done ;;
  *) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
