#!/usr/bin/env bash
# The fail-over demo: builds our tools, brings up the lab (two firewalls
# with keepalived and our conntrackd, a client and a server routed through
# the firewalls' virtual IPs, a stateful ruleset), starts a TCP stream and
# UDP flows through fw1, shows them replicated into fw2's external cache,
# kills fw1 (links cut, keepalived and conntrackd killed -9), shows fw2
# taking over and committing, the connections living on, fw1 coming back
# and taking the traffic back; then tears everything down.
# Needs root. Installs keepalived, nftables, iproute2 and python3 with
# apt-get when they are missing. Touches nothing outside the namespaces
# it creates.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" != 0 ]; then
  echo "demo: needs root (it creates network namespaces)" >&2
  exit 1
fi
have() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ] || [ -x "/sbin/$1" ]; }
missing=()
have keepalived || missing+=(keepalived)
have nft || missing+=(nftables)
have ip || missing+=(iproute2)
have python3 || missing+=(python3)
if [ "${#missing[@]}" -gt 0 ]; then
  command -v apt-get >/dev/null || { echo "demo: please install ${missing[*]}" >&2; exit 1; }
  echo "### installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

echo "### building (release)"
cargo build --release -q -p ct-tools
echo "### the lab: fw1 and fw2 (keepalived + our conntrackd, FT-FW over UDP), client, server"
python3 scripts/failover.py --failure kill --failback --narrate --secs 16 "$@"
