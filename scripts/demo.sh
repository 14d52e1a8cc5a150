#!/usr/bin/env bash
# Self-contained demo of `conntrack` (ours): builds it, makes a throw-away
# network namespace, fills its connection-tracking table with sample flows
# of several protocols, lists and filters them in every output format,
# watches events while flows are updated and deleted, fills 100k entries
# with `ctperf` and times a listing, then removes the namespace.
# Needs root (network namespaces) and iproute2. Touches nothing outside
# the namespace it creates.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" != 0 ]; then
  echo "demo: needs root (it creates a network namespace)" >&2
  exit 1
fi
command -v ip >/dev/null || { echo "demo: needs iproute2 (apt-get install -y iproute2)" >&2; exit 1; }

echo "### building (release)"
cargo build --release -q -p ct-tools
CT="$PWD/target/release/conntrack"
PERF="$PWD/target/release/ctperf"
NS="ctdemo-$$"
ip netns add "$NS"
trap 'ip netns pids "$NS" 2>/dev/null | xargs -r kill 2>/dev/null; ip netns del "$NS" 2>/dev/null || true' EXIT
ip -n "$NS" link set lo up
run() { echo; echo "\$ conntrack $*"; ip netns exec "$NS" "$CT" "$@"; }

echo "### a fresh namespace $NS with an empty table"
run -C

echo "### creating sample flows"
run -I -p tcp -s 10.1.0.1 -d 10.2.0.1 --sport 40000 --dport 443 --state ESTABLISHED -t 600 -u SEEN_REPLY,ASSURED -m 7
run -I -p tcp -s 10.1.0.2 -d 10.2.0.1 --sport 40001 --dport 22 --state SYN_SENT -t 120
run -I -p udp -s 10.1.0.3 -d 10.2.0.53 --sport 5353 --dport 53 -t 30
run -I -p icmp -s 10.1.0.4 -d 10.2.0.1 --icmp-type 8 --icmp-code 0 --icmp-id 77 -t 30
run -I -p udp -s 2001:db8::1 -d 2001:db8::2 --sport 1000 --dport 2000 -t 60 -w 5
run -I -p tcp -s 10.1.0.5 -d 10.2.0.80 --sport 40002 --dport 80 --state ESTABLISHED -t 300 --dst-nat 10.3.0.80:8080

echo "### listing, filtering, formats"
run -L
run -L -p tcp --state ESTABLISHED
run -L -s 10.1.0.0/24 -o extended
run -L -f ipv6 -o save
run -L --dst-nat
run -L -m 7 -o xml
run -L -p udp -o json
run -G -p tcp -s 10.1.0.1 -d 10.2.0.1 --sport 40000 --dport 443

echo "### watching events while creating, updating and deleting"
echo "(the kernel only reports events for entries created while someone listens)"
ip netns exec "$NS" "$CT" -E -o timestamp > "/tmp/$NS.events" 2>&1 &
EV=$!
sleep 0.3
run -I -p udp -s 10.1.0.9 -d 10.2.0.9 --sport 7 --dport 7 -t 30 >/dev/null 2>&1
run -U -p udp -s 10.1.0.9 -m 9 >/dev/null 2>&1
run -D -p udp -s 10.1.0.9 >/dev/null 2>&1
sleep 0.3
kill -INT "$EV"; wait "$EV" || true
echo; echo "\$ conntrack -E -o timestamp   (what the listener saw)"
cat "/tmp/$NS.events"; rm -f "/tmp/$NS.events"

echo "### 100k entries through batched netlink, then a timed listing"
ip netns exec "$NS" "$PERF" fill -n 100000
start=$(date +%s.%N)
n=$(ip netns exec "$NS" "$CT" -L 2>/dev/null | wc -l)
end=$(date +%s.%N)
printf 'conntrack -L printed %s entries in %.3f s\n' "$n" "$(echo "$end - $start" | bc)"
run -C
run -F
run -C
echo; echo "### done: namespace $NS removed"
