#!/bin/sh
#
# keepalived notify script for conntrackd (ours or 1.4.x): the same states
# and conntrackd calls as conntrack-tools' doc/sync/primary-backup.sh.
#
#   primary-backup.sh primary|backup|fault
#
# primary: commit the external cache into the kernel (-c), flush the
#          caches (-f), resync the internal cache with the kernel (-R) and
#          send a bulk update to the backups (-B);
# backup:  start the daemon if it is not running (removing a stale lock
#          file), schedule the kernel flush after PurgeTimeout (-t) and ask
#          the new primary for a resync (-n);
# fault:   schedule the kernel flush (-t).
#
# The variables below can be overridden from the environment (the lab and
# the fail-over test run one daemon per network namespace).

CONNTRACKD_BIN=${CONNTRACKD_BIN:-/usr/sbin/conntrackd}
CONNTRACKD_LOCK=${CONNTRACKD_LOCK:-/var/lock/conntrack.lock}
CONNTRACKD_CONFIG=${CONNTRACKD_CONFIG:-/etc/conntrackd/conntrackd.conf}

run() {
	$CONNTRACKD_BIN -C $CONNTRACKD_CONFIG "$@"
	if [ $? -eq 1 ]
	then
		logger "ERROR: failed to invoke conntrackd $*"
	fi
}

case "$1" in
  primary)
    run -c
    run -f
    run -R
    run -B
    ;;
  backup)
    $CONNTRACKD_BIN -C $CONNTRACKD_CONFIG -s > /dev/null 2>&1
    if [ $? -eq 1 ]
    then
        # the daemon is not reachable: clean up a stale lock and start it
        if [ -f $CONNTRACKD_LOCK ]
        then
            logger "WARNING: conntrackd was not cleanly stopped."
            logger "If you suspect that it has crashed:"
            logger "1) Enable coredumps"
            logger "2) Try to reproduce the problem"
            logger "3) Post the coredump to netfilter-devel@vger.kernel.org"
            rm -f $CONNTRACKD_LOCK
        fi
        $CONNTRACKD_BIN -C $CONNTRACKD_CONFIG -d
        if [ $? -eq 1 ]
        then
            logger "ERROR: cannot launch conntrackd"
            exit 1
        fi
    fi
    run -t
    run -n
    ;;
  fault)
    run -t
    ;;
  *)
    logger "ERROR: unknown state transition"
    echo "Usage: primary-backup.sh {primary|backup|fault}"
    exit 1
    ;;
esac

exit 0
