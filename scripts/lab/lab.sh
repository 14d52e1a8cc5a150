#!/usr/bin/env bash
# conntrack-tools test lab: two firewall namespaces (fw1, fw2) joined by a
# dedicated sync link, an HA (VRRP) link, and a client/server pair routed
# through them.  Everything lives in network namespaces created here; nothing
# is routed toward the outside (no default routes anywhere).
#
# Topology (all addresses in 10.77.0.0/16, private to the lab):
#
#   ctcl (10.77.10.100 on br0) --lan1--- lan0 [fw1] wan0 ---wan1-- (br0 10.77.20.100) ctsv
#                            \--lan2--- lan0 [fw2] wan0 ---wan2--/
#   fw1 sync0 10.77.1.1/24  <==== sync link ====>  fw2 sync0 10.77.1.2/24
#   fw1 ha0   10.77.2.1/24  <==== VRRP link ====>  fw2 ha0   10.77.2.2/24
#   fw1 lan0 10.77.10.1  fw2 lan0 10.77.10.2  VIP 10.77.10.254 (gateway of ctcl)
#   fw1 wan0 10.77.20.1  fw2 wan0 10.77.20.2  VIP 10.77.20.254 (gateway of ctsv)
#
# LAB_FWS=3: a third firewall fw3 (.3 on every link, lan3/wan3 on the
# client's and server's bridges); the sync and VRRP links are then bridges
# (sync / ha) in a hub namespace (<prefix>cthub) with every firewall's
# sync0 / ha0 on them, conntrackd syncs over multicast only, and keepalived
# runs one VRRP instance with priorities 150 / 100 / 50.
#
# Usage: lab.sh <command> [args]
#   up                       create namespaces/links/nft rules (idempotent)
#   down                     stop everything started here, delete namespaces,
#                            restore host sysctls (idempotent)
#   status                   show what is up
#   netem LOSS [reorder P] [corrupt P] [delay MS] [dup P] [dev fw1|fw2|both] [engine tc|nft]
#                            (tc netem if the kernel has sch_netem, else nftables
#                            numgen-random drop / payload corruption at netdev
#                            ingress of sync0 in both fw namespaces)
#   netem off                remove netem from the sync link (also "netem 0")
#   sync MODE TRANSPORT      (re)start conntrackd in fw1+fw2
#                            MODE: ftfw|notrack|alarm  TRANSPORT: udp|mcast|tcp
#   stop                     stop the conntrackd daemons (by pid)
#   ctl fw1|fw2 ARGS...      run `conntrackd -C <generated conf> ARGS` in that ns
#   conf fw1|fw2             print path of the generated conntrackd.conf
#   vip fw1|fw2|none         put the LAN/WAN virtual IPs on fw1 or fw2 (or none)
#   flows tcp|udp N [...]    generate real flows ctcl -> ctsv through the VIP gateway
#   fill NS -n N [args]      fast-insert N conntrack entries into NS (ctperf fill)
#   ka start|stop|status     keepalived VRRP on the ha link (both fw namespaces)
#   exec NS CMD...           ip netns exec NS CMD...
#
# Env knobs: LAB_STATE (default /run/ctlab), LAB_CT_MAX (default 2097152),
#   LAB_CT_BUCKETS (default 524288), LAB_NL_BUF, LAB_NL_BUF_MAX, LAB_HASHLIMIT,
#   LAB_ALARM_REFRESH, LAB_ALARM_TIMEOUT, LAB_EXTRA_GENERAL, LAB_EXTRA_SYNC,
#   LAB_NO_VIP=1 (up without static VIPs), LAB_CONNTRACKD (binary path; or
#   LAB_CONNTRACKD_FW1 / LAB_CONNTRACKD_FW2 for a different binary on each side),
#   LAB_KA_CONNTRACKD=1 (ka start: the notify script runs dist/keepalived/primary-backup.sh
#   primary|backup|fault for the new state), LAB_PREFIX (namespace name prefix),
#   LAB_HOST_SYSCTL=1 (raise the host's nf_conntrack_max/buckets; restored by down).
#
# Copied from ../shared/lab/lab.sh and adapted for this project: namespace
# prefix, host sysctls left alone by default, the shipped primary-backup.sh,
# ctperf instead of ctfill.py, UDP echo flows in flowgen.py.
set -u
set -o pipefail

LAB_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
TOOLS="$LAB_DIR"
ROOT="$(cd "$LAB_DIR/../.." && pwd)"
PRIMARY_BACKUP="${LAB_PRIMARY_BACKUP:-$ROOT/dist/keepalived/primary-backup.sh}"
CTPERF="${LAB_CTPERF:-$ROOT/target/release/ctperf}"
STATE="${LAB_STATE:-/run/ctlab}"
CONNTRACKD="${LAB_CONNTRACKD:-conntrackd}"
# per-firewall binary, for mixed clusters: LAB_CONNTRACKD_FW1 / LAB_CONNTRACKD_FW2
ctd_bin() { local v="LAB_CONNTRACKD_${1^^}"; echo "${!v:-$CONNTRACKD}"; }
# LAB_PREFIX: prefix of every namespace name (several labs side by side,
# e.g. one per test run); fw1/fw2 stay the role names used below.
P=${LAB_PREFIX:-}
nsn() { case "$1" in fw1|fw2|fw3) echo "$P$1";; *) echo "$1";; esac; }
CL=${LAB_CL_NS:-${P}ctcl}
SV=${LAB_SV_NS:-${P}ctsv}
HUB=${P}cthub
NFW=${LAB_FWS:-2}
case "$NFW" in 2|3) ;; *) echo "[lab] ERROR: LAB_FWS must be 2 or 3" >&2; exit 1;; esac
if [ "$NFW" = 3 ]; then
	NSS=("${P}fw1" "${P}fw2" "${P}fw3" "$CL" "$SV" "$HUB")
	FWS=(fw1 fw2 fw3)
else
	NSS=("${P}fw1" "${P}fw2" "$CL" "$SV")
	FWS=(fw1 fw2)
fi
SYNC_DEV=sync0
HA_DEV=ha0
VIP_LAN=10.77.10.254
VIP_WAN=10.77.20.254
SYNC_PORT=3780
MCAST_GROUP=225.0.0.50

declare -A SYNC_IP=([fw1]=10.77.1.1 [fw2]=10.77.1.2 [fw3]=10.77.1.3)
declare -A HA_IP=([fw1]=10.77.2.1 [fw2]=10.77.2.2 [fw3]=10.77.2.3)
declare -A LAN_IP=([fw1]=10.77.10.1 [fw2]=10.77.10.2 [fw3]=10.77.10.3)
declare -A WAN_IP=([fw1]=10.77.20.1 [fw2]=10.77.20.2 [fw3]=10.77.20.3)
declare -A PEER=([fw1]=fw2 [fw2]=fw1 [fw3]=fw1)
declare -A IDX=([fw1]=1 [fw2]=2 [fw3]=3)
declare -A PRIO=([fw1]=150 [fw2]=100 [fw3]=50)
CL_IP=10.77.10.100
SV_IP=10.77.20.100

log() { printf '[lab] %s\n' "$*" >&2; }
die() { printf '[lab] ERROR: %s\n' "$*" >&2; exit 1; }
ns_exists() { ip netns list 2>/dev/null | awk '{print $1}' | grep -qx "$(nsn "$1")"; }
nsx() { local ns; ns=$(nsn "$1"); shift; ip netns exec "$ns" "$@"; }
ipn() { local ns; ns=$(nsn "$1"); shift; ip -n "$ns" "$@"; }
tcn() { local ns; ns=$(nsn "$1"); shift; tc -n "$ns" "$@"; }
link_exists() { ipn "$1" link show "$2" >/dev/null 2>&1; }
pid_alive() { [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null; }

need_root() { [ "$(id -u)" = 0 ] || die "must run as root"; }

# ---------------------------------------------------------------- host sysctl
save_host_sysctl() {
	mkdir -p "$STATE"
	# The host's table limits are left alone unless asked for (a benchmark
	# with millions of entries): LAB_HOST_SYSCTL=1.
	[ "${LAB_HOST_SYSCTL:-0}" = 1 ] || return 0
	if [ ! -f "$STATE/host-sysctl.orig" ]; then
		{
			echo "net.netfilter.nf_conntrack_max=$(sysctl -n net.netfilter.nf_conntrack_max)"
			echo "net.netfilter.nf_conntrack_buckets=$(sysctl -n net.netfilter.nf_conntrack_buckets)"
		} >"$STATE/host-sysctl.orig"
	fi
	# nf_conntrack_max / nf_conntrack_buckets are read-only inside non-init
	# namespaces on this kernel (6.18): they must be raised in init_net.
	sysctl -qw net.netfilter.nf_conntrack_max="${LAB_CT_MAX:-2097152}" || log "could not raise nf_conntrack_max"
	local b; b=$(sysctl -n net.netfilter.nf_conntrack_buckets)
	if [ "$b" != "${LAB_CT_BUCKETS:-524288}" ]; then
		sysctl -qw net.netfilter.nf_conntrack_buckets="${LAB_CT_BUCKETS:-524288}" || log "could not set nf_conntrack_buckets"
	fi
}

restore_host_sysctl() {
	[ -f "$STATE/host-sysctl.orig" ] || return 0
	while IFS== read -r k v; do
		[ -n "$k" ] && sysctl -qw "$k=$v" || true
	done <"$STATE/host-sysctl.orig"
	rm -f "$STATE/host-sysctl.orig"
}

# ------------------------------------------------------------------------ up
veth_pair() { # ns1 dev1 ns2 dev2
	local n1=$1 d1=$2 n2=$3 d2=$4
	if link_exists "$n1" "$d1" && link_exists "$n2" "$d2"; then return 0; fi
	ipn "$n1" link del "$d1" 2>/dev/null || true
	ipn "$n2" link del "$d2" 2>/dev/null || true
	ip link add "lab$$a" type veth peer name "lab$$b" || die "veth create failed"
	ip link set "lab$$a" netns "$(nsn "$n1")" && ipn "$n1" link set "lab$$a" name "$d1"
	ip link set "lab$$b" netns "$(nsn "$n2")" && ipn "$n2" link set "lab$$b" name "$d2"
}

fw_ruleset() {
	cat <<'EOF'
flush ruleset
table inet lab {
	# never track the sync and VRRP links themselves
	chain raw_pre {
		type filter hook prerouting priority raw; policy accept;
		iifname { "sync0", "ha0" } notrack
	}
	chain raw_out {
		type filter hook output priority raw; policy accept;
		oifname { "sync0", "ha0" } notrack
	}
	chain forward {
		type filter hook forward priority filter; policy drop;
		ct state established,related counter accept
		ct state invalid counter drop
		# a mid-stream TCP packet without state (e.g. after a failover
		# without conntrackd) is not picked up again
		tcp flags & (fin|syn|rst|ack) != syn ct state new counter drop
		iifname "lan0" oifname "wan0" ct state new counter accept
		counter comment "dropped"
	}
}
EOF
}

sv_ruleset() {
	# Silently drop the UDP flood so sv does not answer with ICMP port
	# unreachable. No ct expression -> no conntrack hooks in sv.
	cat <<'EOF'
flush ruleset
table inet sv {
	chain input {
		type filter hook input priority filter; policy accept;
		udp dport 20000-65535 drop
	}
}
EOF
}

cmd_up() {
	need_root
	mkdir -p "$STATE"
	save_host_sysctl
	local ns
	for ns in "${NSS[@]}"; do
		ns_exists "$ns" || ip netns add "$ns" || die "netns add $ns"
		ipn "$ns" link set lo up
	done
	# links
	if [ "$NFW" = 3 ]; then
		# sync and VRRP segments: bridges in the hub namespace
		local br
		for br in sync ha; do
			link_exists "$HUB" "$br" || ipn "$HUB" link add "$br" type bridge forward_delay 0 stp_state 0 mcast_snooping 0
			ipn "$HUB" link set "$br" up
		done
		local f
		for f in "${FWS[@]}"; do
			veth_pair "$HUB" "s${IDX[$f]}" "$f" "$SYNC_DEV"
			veth_pair "$HUB" "h${IDX[$f]}" "$f" "$HA_DEV"
			ipn "$HUB" link set "s${IDX[$f]}" master sync
			ipn "$HUB" link set "h${IDX[$f]}" master ha
			ipn "$HUB" link set "s${IDX[$f]}" up
			ipn "$HUB" link set "h${IDX[$f]}" up
		done
	else
		veth_pair fw1 "$SYNC_DEV" fw2 "$SYNC_DEV"
		veth_pair fw1 "$HA_DEV" fw2 "$HA_DEV"
	fi
	local f
	for f in "${FWS[@]}"; do
		veth_pair "$CL" "lan${IDX[$f]}" "$f" lan0
		veth_pair "$SV" "wan${IDX[$f]}" "$f" wan0
	done
	# bridges in cl / sv (the shared L2 segments on which the VIPs float)
	local side
	for side in "$CL" "$SV"; do
		link_exists "$side" br0 || ipn "$side" link add br0 type bridge forward_delay 0 stp_state 0
		ipn "$side" link set br0 up
	done
	for f in "${FWS[@]}"; do
		ip -n "$CL" link set "lan${IDX[$f]}" master br0
		ip -n "$SV" link set "wan${IDX[$f]}" master br0
		ip -n "$CL" link set "lan${IDX[$f]}" up
		ip -n "$SV" link set "wan${IDX[$f]}" up
	done
	ip -n "$CL" addr replace "$CL_IP/24" dev br0
	ip -n "$SV" addr replace "$SV_IP/24" dev br0
	# only lab-internal routes, never a default route
	ip -n "$CL" route replace 10.77.20.0/24 via "$VIP_LAN" dev br0 onlink
	ip -n "$SV" route replace 10.77.10.0/24 via "$VIP_WAN" dev br0 onlink
	local fw
	for fw in "${FWS[@]}"; do
		ipn "$fw" addr replace "${SYNC_IP[$fw]}/24" dev "$SYNC_DEV"
		ipn "$fw" addr replace "${HA_IP[$fw]}/24" dev "$HA_DEV"
		ipn "$fw" addr replace "${LAN_IP[$fw]}/24" dev lan0
		ipn "$fw" addr replace "${WAN_IP[$fw]}/24" dev wan0
		for dev in "$SYNC_DEV" "$HA_DEV" lan0 wan0; do ipn "$fw" link set "$dev" up; done
		nsx "$fw" sysctl -qw net.ipv4.ip_forward=1
		nsx "$fw" sysctl -qw net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0
		fw_ruleset | nsx "$fw" nft -f - || die "nft ruleset $fw"
	done
	sv_ruleset | nsx "$SV" nft -f - || die "nft ruleset sv"
	nsx "$SV" sysctl -qw net.ipv4.icmp_ratelimit=0 2>/dev/null || true
	if [ "${LAB_NO_VIP:-0}" != 1 ] && [ ! -f "$STATE/vip" ]; then cmd_vip fw1 >/dev/null; fi
	touch "$STATE/up"
	log "up: namespaces ${NSS[*]}; sync link ${SYNC_IP[fw1]} <-> ${SYNC_IP[fw2]} ($SYNC_DEV)"
}

# ------------------------------------------------------------------------ vip
vip_del() { # the LAN/WAN virtual IPs off one firewall (if there)
	ipn "$1" addr del "$VIP_LAN/24" dev lan0 2>/dev/null || true
	ipn "$1" addr del "$VIP_WAN/24" dev wan0 2>/dev/null || true
}

cmd_vip() {
	local who=${1:-}
	case "$who" in fw1|fw2|fw3|none) ;; *) die "usage: vip fw1|fw2|fw3|none";; esac
	local fw
	for fw in "${FWS[@]}"; do vip_del "$fw"; done
	if [ "$who" != none ]; then
		ipn "$who" addr add "$VIP_LAN/24" dev lan0
		ipn "$who" addr add "$VIP_WAN/24" dev wan0
	fi
	ip -n "$CL" neigh flush all 2>/dev/null || true
	ip -n "$SV" neigh flush all 2>/dev/null || true
	echo "$who" >"$STATE/vip"
	echo "vip: $who"
}

# ---------------------------------------------------------------------- netem
netem_available() { # cached: does this kernel have sch_netem?
	if [ ! -f "$STATE/netem_ok" ]; then
		if tcn fw1 qdisc add dev "$SYNC_DEV" root netem loss 0% 2>/dev/null; then
			tcn fw1 qdisc del dev "$SYNC_DEV" root 2>/dev/null; echo 1 >"$STATE/netem_ok"
		else
			echo 0 >"$STATE/netem_ok"
		fi
	fi
	[ "$(cat "$STATE/netem_ok")" = 1 ]
}

impair_off() {
	local fw
	for fw in fw1 fw2; do
		tcn "$fw" qdisc del dev "$SYNC_DEV" root 2>/dev/null || true
		nsx "$fw" nft delete table netdev labimpair 2>/dev/null || true
	done
}

# pct -> threshold out of 1000000 for "numgen random mod 1000000 < T"
pct2ppm() { awk -v p="$1" 'BEGIN{printf "%d", p*10000}'; }

cmd_netem() {
	[ $# -ge 1 ] || die "usage: netem LOSS%|off [reorder P] [corrupt P] [delay MS] [dup P] [dev fw1|fw2|both] [engine tc|nft]"
	ns_exists fw1 || die "lab is not up"
	local loss=${1%\%}; shift
	local reorder="" corrupt="" delay="" dup="" where=both engine=""
	while [ $# -gt 0 ]; do
		case "$1" in
		reorder) reorder=${2%\%}; shift 2;;
		corrupt) corrupt=${2%\%}; shift 2;;
		delay) delay=${2%ms}; shift 2;;
		dup|duplicate) dup=${2%\%}; shift 2;;
		dev) where=$2; shift 2;;
		engine) engine=$2; shift 2;;
		*) die "netem: unknown arg $1";;
		esac
	done
	local targets=()
	case "$where" in both) targets=(fw1 fw2);; fw1|fw2) targets=("$where");; *) die "dev fw1|fw2|both";; esac
	impair_off
	if [ "$loss" = off ] || { [ "$loss" = 0 ] && [ -z "$reorder$corrupt$delay$dup" ]; }; then
		echo "netem: off"
		return 0
	fi
	[ -z "$engine" ] && { if netem_available; then engine=tc; else engine=nft; fi; }
	local fw
	if [ "$engine" = tc ]; then
		local args=(loss "${loss}%")
		[ -n "$reorder" ] && [ -z "$delay" ] && delay=1   # netem reorder needs a delay
		[ -n "$delay" ] && args+=(delay "${delay}ms")
		[ -n "$reorder" ] && args+=(reorder "${reorder}%" 50%)
		[ -n "$corrupt" ] && args+=(corrupt "${corrupt}%")
		[ -n "$dup" ] && args+=(duplicate "${dup}%")
		for fw in "${targets[@]}"; do
			tcn "$fw" qdisc replace dev "$SYNC_DEV" root netem limit 100000 "${args[@]}" || die "tc netem on $fw"
		done
		for fw in fw1 fw2; do echo "$fw: $(tcn "$fw" qdisc show dev "$SYNC_DEV" | head -1)"; done
		return 0
	fi
	# Fallback: this kernel has no sch_netem (CONFIG_NET_SCH_NETEM unset), so
	# impair the sync link with nftables at netdev ingress of sync0 in each
	# namespace (so senders never see an error, unlike an egress drop which
	# makes sendmsg() fail with EPERM): random drop (numgen) and
	# random payload corruption (raw payload mangling of the conntrackd message
	# header).  Reorder/delay/duplicate need netem and are not available.
	[ -n "$reorder$delay$dup" ] && log "netem: reorder/delay/duplicate need sch_netem, not available here; ignoring"
	for fw in "${targets[@]}"; do
		{
			echo "table netdev labimpair {"
			echo "	chain in {"
			echo "		type filter hook ingress device \"$SYNC_DEV\" priority -500; policy accept;"
			[ "$loss" != 0 ] && echo "		numgen random mod 1000000 < $(pct2ppm "$loss") counter drop comment \"loss ${loss}%\""
			[ -n "$corrupt" ] && echo "		ip protocol udp numgen random mod 1000000 < $(pct2ppm "$corrupt") counter @ih,32,32 set 0xdeadbeef comment \"corrupt ${corrupt}%\""
			echo "	}"
			echo "}"
		} | nsx "$fw" nft -f - || die "nft impairment on $fw"
	done
	for fw in fw1 fw2; do echo "$fw: $(nsx "$fw" nft list table netdev labimpair 2>/dev/null | grep -E 'drop|set' | sed 's/^[[:space:]]*//' | tr '\n' ';' || true)"; done
}

# --------------------------------------------------------------------- sync
conf_path() { echo "$STATE/$1/conntrackd.conf"; }

gen_conf() { # fw mode transport
	local fw=$1 mode=$2 tr=$3 peer=${PEER[$1]}
	local d="$STATE/$fw"
	mkdir -p "$d"
	local modeblk trblk
	case "$mode" in
	ftfw) modeblk="	Mode FTFW {
		ResendQueueSize ${LAB_FTFW_RESEND_QUEUE:-131072}
		ACKWindowSize ${LAB_FTFW_WINDOW:-300}
		DisableExternalCache Off
	}";;
	notrack) modeblk="	Mode NOTRACK {
		DisableInternalCache Off
		DisableExternalCache Off
	}";;
	alarm) modeblk="	Mode ALARM {
		RefreshTime ${LAB_ALARM_REFRESH:-15}
		CacheTimeout ${LAB_ALARM_TIMEOUT:-180}
	}";;
	*) die "mode must be ftfw|notrack|alarm";;
	esac
	local bufs="		SndSocketBuffer ${LAB_SOCK_BUF:-24985600}
		RcvSocketBuffer ${LAB_SOCK_BUF:-24985600}
		Checksum on"
	if [ "$NFW" = 3 ] && [ "$tr" != mcast ]; then die "three firewalls sync over multicast only (sync MODE mcast)"; fi
	case "$tr" in
	udp) trblk="	UDP {
		IPv4_address ${SYNC_IP[$fw]}
		IPv4_Destination_Address ${SYNC_IP[$peer]}
		Port $SYNC_PORT
		Interface $SYNC_DEV
$bufs
	}";;
	mcast) trblk="	Multicast {
		IPv4_address $MCAST_GROUP
		Group $SYNC_PORT
		IPv4_interface ${SYNC_IP[$fw]}
		Interface $SYNC_DEV
$bufs
	}";;
	tcp) trblk="	TCP {
		IPv4_address ${SYNC_IP[$fw]}
		IPv4_Destination_Address ${SYNC_IP[$peer]}
		Port $SYNC_PORT
		Interface $SYNC_DEV
$bufs
	}";;
	*) die "transport must be udp|mcast|tcp";;
	esac
	cat >"$d/conntrackd.conf" <<EOF
# generated by lab.sh for $fw: mode=$mode transport=$tr
Sync {
$modeblk
$trblk
	Options {
		TCPWindowTracking Off
		ExpectationSync Off
	}
${LAB_EXTRA_SYNC:-}
}
General {
	Systemd off
	HashSize ${LAB_HASHSIZE:-65536}
	HashLimit ${LAB_HASHLIMIT:-4194304}
	LogFile $d/conntrackd.log
	Syslog off
	LockFile $d/conntrackd.lock
	UNIX {
		Path $d/conntrackd.ctl
	}
	NetlinkBufferSize ${LAB_NL_BUF:-8388608}
	NetlinkBufferSizeMaxGrowth ${LAB_NL_BUF_MAX:-268435456}
	NetlinkOverrunResync On
	EventIterationLimit 100
	Filter From Userspace {
		Protocol Accept {
			TCP
			UDP
			ICMP
			SCTP
			DCCP
		}
		Address Ignore {
			IPv4_address 127.0.0.1
			IPv4_address 10.77.1.0/24
			IPv4_address 10.77.2.0/24
			IPv4_address ${LAN_IP[fw1]}
			IPv4_address ${LAN_IP[fw2]}
			IPv4_address ${WAN_IP[fw1]}
			IPv4_address ${WAN_IP[fw2]}
			IPv4_address ${LAN_IP[fw3]}
			IPv4_address ${WAN_IP[fw3]}
			IPv4_address $VIP_LAN
			IPv4_address $VIP_WAN
		}
	}
${LAB_EXTRA_GENERAL:-}
}
EOF
	echo "$mode $tr" >"$d/mode"
}

find_ctd_pid() { # fw -> pid of conntrackd using our conf in that netns
	local fw=$1 conf; conf=$(conf_path "$fw")
	local p
	for p in $(ip netns pids "$(nsn "$fw")" 2>/dev/null); do
		[ "$(cat /proc/$p/comm 2>/dev/null)" = conntrackd ] || continue
		tr '\0' ' ' </proc/$p/cmdline 2>/dev/null | grep -qF -- "$conf" || continue
		# skip short-lived client invocations (-s, -e, -c ...)
		tr '\0' '\n' </proc/$p/cmdline | grep -qE '^-(s|e|i|c|f|n|R|B|t|k|x)' && continue
		echo "$p"; return 0
	done
	return 1
}

cmd_sync() {
	[ $# -ge 2 ] || die "usage: sync ftfw|notrack|alarm udp|mcast|tcp"
	local mode=${1,,} tr=${2,,}
	case "$mode" in ftfw|notrack|alarm) ;; *) die "bad mode $mode";; esac
	case "$tr" in udp|mcast|multicast) ;; tcp) ;; *) die "bad transport $tr";; esac
	[ "$tr" = multicast ] && tr=mcast
	[ -f "$STATE/up" ] && ns_exists fw1 && ns_exists fw2 || die "lab is not up (run: lab.sh up)"
	[ "$tr" = tcp ] && [ "$mode" != notrack ] && log "note: upstream documents TCP transport as sensible only with NOTRACK"
	cmd_stop >/dev/null 2>&1
	local fw
	for fw in "${FWS[@]}"; do
		gen_conf "$fw" "$mode" "$tr"
		local d="$STATE/$fw"
		rm -f "$d/conntrackd.lock" "$d/conntrackd.ctl"
		: >"$d/conntrackd.out"
		: >"$d/conntrackd.log"
		# foreground mode (no -d): we keep the pid; setsid detaches it from our tty
		setsid ip netns exec "$(nsn "$fw")" "$(ctd_bin "$fw")" -C "$d/conntrackd.conf" \
			</dev/null >>"$d/conntrackd.out" 2>&1 &
	done
	for fw in "${FWS[@]}"; do
		local d="$STATE/$fw" pid="" i
		for i in $(seq 1 50); do
			pid=$(find_ctd_pid "$fw") && [ -S "$d/conntrackd.ctl" ] && break
			sleep 0.1
		done
		[ -n "$pid" ] || { cat "$d/conntrackd.out" "$d/conntrackd.log" 2>/dev/null | tail -5 >&2; die "conntrackd failed to start in $fw"; }
		echo "$pid" >"$d/conntrackd.pid"
		log "$fw: conntrackd pid $pid mode=$mode transport=$tr conf=$d/conntrackd.conf"
	done
	if [ "$tr" = tcp ]; then
		local ok=0 i
		for i in $(seq 1 50); do
			if nsx fw1 "$(ctd_bin fw1)" -C "$(conf_path fw1)" -s 2>/dev/null | grep -q 'client=connected' &&
			   nsx fw2 "$(ctd_bin fw2)" -C "$(conf_path fw2)" -s 2>/dev/null | grep -q 'client=connected'; then ok=1; break; fi
			sleep 0.2
		done
		[ $ok = 1 ] && log "tcp channel connected" || log "warning: tcp channel not connected after 10s"
	fi
	local pids="" f
	for f in "${FWS[@]}"; do pids="$pids $f pid $(cat "$STATE/$f/conntrackd.pid")"; done
	echo "sync: $mode/$tr running ($pids )"
}

cmd_stop() {
	local fw any=0
	for fw in "${FWS[@]}"; do
		local d="$STATE/$fw" pid=""
		[ -f "$d/conntrackd.pid" ] && pid=$(cat "$d/conntrackd.pid")
		if ! pid_alive "$pid" || [ "$(cat /proc/$pid/comm 2>/dev/null)" != conntrackd ]; then
			pid=$(find_ctd_pid "$fw" 2>/dev/null) || pid=""
		fi
		if pid_alive "$pid"; then
			kill -TERM "$pid" 2>/dev/null
			local i
			for i in $(seq 1 50); do pid_alive "$pid" || break; sleep 0.1; done
			pid_alive "$pid" && { log "$fw: SIGKILL $pid"; kill -KILL "$pid"; }
			log "$fw: stopped conntrackd pid $pid"
			any=1
		fi
		rm -f "$d/conntrackd.pid" "$d/conntrackd.lock" "$d/conntrackd.ctl"
	done
	[ $any = 1 ] && echo "stop: daemons stopped" || echo "stop: nothing running"
}

cmd_ctl() {
	local fw=${1:-}; shift || true
	case "$fw" in fw1|fw2|fw3) ;; *) die "usage: ctl fw1|fw2|fw3 ARGS";; esac
	nsx "$fw" "$(ctd_bin "$fw")" -C "$(conf_path "$fw")" "$@"
}

# ---------------------------------------------------------------- keepalived
ka_conf() { # fw prio state
	local fw=$1 prio=$2 st=$3 d="$STATE/$fw"
	mkdir -p "$d"
	# LAB_KA_CONNTRACKD=1 at "ka start": on MASTER run the primary-backup.sh
	# sequence (commit external cache, flush caches, resync from kernel, bulk
	# send); on BACKUP/FAULT request a resync from the new master (-n).
	local ctd=0; [ "${LAB_KA_CONNTRACKD:-0}" = 1 ] && ctd=1
	cat >"$d/notify.sh" <<EOF
#!/bin/sh
# keepalived notify: \$1=GROUP|INSTANCE \$2=name \$3=state \$4=prio
echo "\$(date +%s.%N) $fw \$1 \$2 \$3 \$4" >> $d/notify.log
if [ $ctd = 1 ]; then
	# conntrackd through the shipped primary-backup.sh, in this namespace
	export CONNTRACKD_BIN="$(ctd_bin "$fw")" CONNTRACKD_CONFIG="$(conf_path "$fw")" CONNTRACKD_LOCK="$d/conntrackd.lock"
	case "\$3" in
	MASTER) st=primary;; BACKUP) st=backup;; FAULT) st=fault;; *) exit 0;;
	esac
	ip netns exec $(nsn $fw) $PRIMARY_BACKUP \$st >> $d/notify.log 2>&1
	echo "\$(date +%s.%N) $fw primary-backup.sh-\$st-done rc=\$?" >> $d/notify.log
fi
exit 0
EOF
	chmod +x "$d/notify.sh"
	cat >"$d/keepalived.conf" <<EOF
global_defs {
	router_id lab_$fw
	enable_script_security
	script_user root
	max_auto_priority -1
}
vrrp_instance LAB {
	state $st
	interface $HA_DEV
	virtual_router_id 77
	priority $prio
	advert_int ${LAB_KA_ADVERT:-1}
	nopreempt
	unicast_src_ip ${HA_IP[$fw]}
	unicast_peer {
$(for f in "${FWS[@]}"; do [ "$f" != "$fw" ] && printf '\t\t%s\n' "${HA_IP[$f]}"; done)
	}
	virtual_ipaddress {
		$VIP_LAN/24 dev lan0
		$VIP_WAN/24 dev wan0
	}
	notify $d/notify.sh
}
EOF
}

# our own record of the keepalived main pid (keepalived's -p pidfile must not be
# pre-written: keepalived would find "itself" there and exit "already running")
# keepalived (2.2.7) re-spawns itself even with -n, so $! is not the daemon:
# use the pidfile keepalived writes itself (-p), recorded into ka.pid.
ka_pid() {
	local d="$STATE/$1"
	if [ -s "$d/keepalived.pid" ]; then cat "$d/keepalived.pid"
	elif [ -s "$d/ka.pid" ]; then cat "$d/ka.pid"; fi
}

cmd_ka() {
	local sub=${1:-status}; shift || true
	command -v keepalived >/dev/null || die "keepalived not installed (apt-get install keepalived)"
	case "$sub" in
	start)
		local only=${1:-}
		local fw
		if [ -z "$only" ]; then
			cmd_vip none >/dev/null
		else
			# one firewall (back after a stop or a kill): only its own
			# stale VIPs go; the current master keeps serving
			vip_del "$only"
		fi
		for fw in "${FWS[@]}"; do
			[ -n "$only" ] && [ "$only" != "$fw" ] && continue
			local d="$STATE/$fw" pid
			pid=$(ka_pid "$fw")
			if pid_alive "$pid"; then log "$fw: keepalived already running ($pid)"; continue; fi
			ka_conf "$fw" "${PRIO[$fw]}" BACKUP
			nsx "$fw" keepalived -f "$d/keepalived.conf" -p "$d/keepalived.pid" \
				-r "$d/vrrp.pid" -c "$d/checkers.pid" -D -l -n \
				--vrrp </dev/null >>"$d/keepalived.out" 2>&1 &
			local i
			for i in $(seq 1 50); do [ -s "$d/keepalived.pid" ] && break; sleep 0.1; done
			cp "$d/keepalived.pid" "$d/ka.pid" 2>/dev/null || die "$fw: keepalived did not start (see $d/keepalived.out)"
			log "$fw: keepalived pid $(cat "$d/ka.pid")"
		done
		;;
	stop)
		local only=${1:-} fw
		for fw in "${FWS[@]}"; do
			[ -n "$only" ] && [ "$only" != "$fw" ] && continue
			local pid; pid=$(ka_pid "$fw")
			if pid_alive "$pid"; then
				kill -TERM "$pid"
				local i; for i in $(seq 1 50); do pid_alive "$pid" || break; sleep 0.1; done
				pid_alive "$pid" && kill -KILL "$pid"
				log "$fw: keepalived $pid stopped"
			fi
			rm -f "$STATE/$fw/ka.pid" "$STATE/$fw/keepalived.pid" "$STATE/$fw/vrrp.pid" "$STATE/$fw/checkers.pid"
		done
		;;
	status)
		local fw
		for fw in "${FWS[@]}"; do
			local pid; pid=$(ka_pid "$fw")
			echo "$fw: keepalived $(pid_alive "$pid" && echo "running pid $pid" || echo stopped); VIPs: $(ipn "$fw" -4 -o addr show 2>/dev/null | awk '/\.254\//{print $4}' | tr '\n' ' ')"
		done
		;;
	*) die "usage: ka start|stop|status [fw1|fw2]";;
	esac
}

# ----------------------------------------------------------------- flows/fill
cmd_flows() {
	local kind=${1:-}; shift || die "usage: flows tcp|udp N [args]"
	[ -f "$STATE/up" ] || die "lab is not up"
	case "$kind" in
	tcp)
		local n=${1:-10}; shift || true
		# server (accept + hold) in sv, clients in cl
		local spid
		nsx "$SV" python3 "$TOOLS/flowgen.py" tcp-server --bind "$SV_IP" --port 8080 --time "${LAB_FLOW_HOLD:-5}" --count "$n" &
		spid=$!
		sleep 0.5
		nsx "$CL" python3 "$TOOLS/flowgen.py" tcp-client --dst "$SV_IP" --port 8080 --count "$n" --hold "${LAB_FLOW_HOLD:-5}" "$@"
		wait "$spid" 2>/dev/null || true
		;;
	udp)
		local n=${1:-1000}; shift || true
		nsx "$CL" python3 "$TOOLS/flowgen.py" udp --dst "$SV_IP" --count "$n" "$@"
		;;
	*) die "usage: flows tcp|udp N";;
	esac
}

cmd_fill() {
	local ns=${1:-}; shift || die "usage: fill NS N [ctfill args]"
	ns_exists "$ns" || die "no namespace $ns"
	nsx "$ns" "$CTPERF" fill "$@"
}

# ------------------------------------------------------------------- status
cmd_status() {
	local ns
	for ns in "${NSS[@]}"; do
		if ns_exists "$ns"; then
			local cnt
			cnt=$(nsx "$ns" cat /proc/sys/net/netfilter/nf_conntrack_count 2>/dev/null || echo '?')
			echo "$ns: up, conntrack entries=$cnt"
		else
			echo "$ns: down"
		fi
	done
	local fw
	for fw in "${FWS[@]}"; do
		local pid=""; [ -f "$STATE/$fw/conntrackd.pid" ] && pid=$(cat "$STATE/$fw/conntrackd.pid")
		if pid_alive "$pid"; then echo "$fw: conntrackd pid $pid ($(cat "$STATE/$fw/mode" 2>/dev/null))"; else echo "$fw: conntrackd not running"; fi
		ns_exists "$fw" && echo "$fw: qdisc $(tcn "$fw" qdisc show dev "$SYNC_DEV" 2>/dev/null | head -1); impairment: $(nsx "$fw" nft list table netdev labimpair 2>/dev/null | grep -Eo 'comment "[^"]*"' | tr '\n' ' ' || true)"
	done
	[ -f "$STATE/vip" ] && echo "vip: $(cat "$STATE/vip")"
	echo "host: nf_conntrack_max=$(sysctl -n net.netfilter.nf_conntrack_max) buckets=$(sysctl -n net.netfilter.nf_conntrack_buckets)"
}

# --------------------------------------------------------------------- down
cmd_down() {
	need_root
	cmd_ka stop >/dev/null 2>&1 || true
	cmd_stop >/dev/null 2>&1 || true
	local ns p
	for ns in "${NSS[@]}"; do
		if ns_exists "$ns"; then
			# kill by pid whatever we left running in our namespaces
			for p in $(ip netns pids "$ns" 2>/dev/null); do kill -TERM "$p" 2>/dev/null || true; done
			sleep 0.2
			for p in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$p" 2>/dev/null || true; done
			ip netns del "$ns" || log "could not delete $ns"
		fi
	done
	restore_host_sysctl
	rm -rf "$STATE"
	echo "down: lab removed"
}

# ---------------------------------------------------------------------- main
cmd=${1:-}; shift || true
case "$cmd" in
up) cmd_up "$@";;
down) cmd_down "$@";;
status) cmd_status "$@";;
netem) cmd_netem "$@";;
sync) cmd_sync "$@";;
stop) cmd_stop "$@";;
ctl) cmd_ctl "$@";;
conf) conf_path "${1:?fw1|fw2|fw3}";;
vip) cmd_vip "$@";;
flows) cmd_flows "$@";;
fill) cmd_fill "$@";;
ka|keepalived) cmd_ka "$@";;
exec) ns=${1:?ns}; shift; nsx "$ns" "$@";;
""|-h|--help|help) sed -n '2,/^set -u/p' "$0" | sed 's/^# \{0,1\}//' | grep -v '^set -u';;
*) die "unknown command: $cmd (see lab.sh help)";;
esac
