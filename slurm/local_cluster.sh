#!/usr/bin/env bash
# local_cluster.sh - a real, one-node SLURM cluster on 127.0.0.1, for tests and CI.
#
# It installs the Debian packages, writes a minimal slurm.conf and starts munged, slurmctld
# and slurmd on this machine, so that sbatch / srun / squeue and submitit's SLURM executor
# work against a real scheduler. This is for a SINGLE TEST MACHINE (a CI runner, a dev box
# or container), not for a real cluster: it overwrites /etc/slurm/slurm.conf, runs every
# daemon as root, and has no accounting (no slurmdbd, so `sacct` does not work).
#
# Needs root (apt-get, /etc/slurm, /etc/munge, the daemons) and Debian/Ubuntu (apt-get).
#
# Usage:
#   slurm/local_cluster.sh install   apt-get update + install slurmctld slurmd slurm-client munge
#                                    (skipped when sbatch, slurmctld, slurmd, munged are on PATH)
#   slurm/local_cluster.sh start     write the config, start munged, slurmctld, slurmd (only those
#                                    not running yet) and wait until the node is idle; idempotent.
#                                    Exit 2 if the packages are missing, 1 if the cluster does not
#                                    come up within $LOCAL_SLURM_TIMEOUT seconds (default 30).
#   slurm/local_cluster.sh stop      cancel all jobs, stop slurmd, slurmctld and munged and wait
#                                    until they are gone; idempotent.
#   slurm/local_cluster.sh status    print sinfo and squeue; exit 0 if the cluster is up, 1 if not.
#
# Notes for submitit (checked with submitit 1.5.4): a job counts as done as soon as its
# result pickle exists, so results come back without accounting. `sacct` is only used as a
# fallback, for a job that died without writing a result (scancel, node failure, ...): here
# it fails (submitit logs "Bypassing sacct error") and such a job stays UNKNOWN, so
# job.result() would wait forever - tests should put their own timeout around it.
set -euo pipefail

export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"

PACKAGES="slurmctld slurmd slurm-client munge"
COMMANDS="sbatch slurmctld slurmd munged"

SLURM_CONF=/etc/slurm/slurm.conf        # where Debian's slurm 22.05 packages read it
MUNGE_KEY=/etc/munge/munge.key
STATE_DIR=/var/spool/slurmctld
SPOOL_DIR=/var/spool/slurmd
LOG_DIR=/var/log/slurm
CTLD_LOG=$LOG_DIR/slurmctld.log
SLURMD_LOG=$LOG_DIR/slurmd.log
CTLD_PID=/run/slurmctld.pid
SLURMD_PID=/run/slurmd.pid
MUNGE_RUN=/run/munge
TIMEOUT=${LOCAL_SLURM_TIMEOUT:-30}

NODE=$(hostname -s)

die() {
    local code=$1
    shift
    echo "local_cluster.sh: $*" >&2
    exit "$code"
}

need_root() {
    [ "$(id -u)" -eq 0 ] || die 2 "'$1' needs root (it manages system daemons and /etc/slurm)."
}

missing_commands() {
    local c missing=""
    for c in $COMMANDS; do
        command -v "$c" >/dev/null 2>&1 || missing="$missing $c"
    done
    echo "${missing# }"
}

is_running() {  # is_running NAME: a live (not zombie) process with exactly this name runs
    # the daemons fork into the background; the exited parent can linger as a zombie with the
    # same name until its parent reaps it, so pgrep -x alone is not enough
    ps -e -o stat=,comm= | awk -v n="$1" '$1 !~ /^Z/ && $2 == n { f = 1 } END { exit !f }'
}

q() {  # q CMD...: a query to slurmctld, bounded in time (a hung controller must not hang us)
    timeout 5 "$@" 2>/dev/null
}

node_state() {
    local out
    out=$(q sinfo -h -n "$NODE" -o %T) || true
    echo "${out%%$'\n'*}"
}

cluster_up() {  # slurmctld answers and the node is usable
    local ping
    ping=$(q scontrol ping) || return 1
    case "$ping" in *"is UP"*) ;; *) return 1 ;; esac
    case "$(node_state)" in
        idle | mixed | allocated | completing) return 0 ;;
        *) return 1 ;;
    esac
}

# ---------------------------------------------------------------------------------------------
cmd_install() {
    local missing
    missing=$(missing_commands)
    if [ -z "$missing" ]; then
        echo "slurm and munge are already installed ($COMMANDS on PATH); nothing to do."
        return 0
    fi
    need_root install
    command -v apt-get >/dev/null 2>&1 || die 2 "apt-get not found: install $PACKAGES by hand."
    echo "installing $PACKAGES (missing: $missing) ..."
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # shellcheck disable=SC2086
    apt-get install -y -qq -o Dpkg::Use-Pty=0 $PACKAGES >/dev/null
    missing=$(missing_commands)
    [ -z "$missing" ] || die 1 "installed $PACKAGES, but still not on PATH: $missing"
    echo "installed: slurm $(dpkg-query -W -f='${Version}' slurmctld 2>/dev/null || echo '?')"
}

# ---------------------------------------------------------------------------------------------
write_config() {  # prints "changed" when slurm.conf was (re)written
    local cpus mem_kb mem_mb real_mem tmp
    cpus=$(nproc)
    mem_kb=$(awk '/^MemTotal:/ {print $2}' /proc/meminfo)
    mem_mb=$((mem_kb / 1024))
    # slurmd drains a node whose configured RealMemory is above what it finds; keep a margin
    # of 10% (at least 512 MB) below the total.
    real_mem=$((mem_mb - (mem_mb / 10 > 512 ? mem_mb / 10 : 512)))
    [ "$real_mem" -ge 256 ] || real_mem=256

    mkdir -p /etc/slurm
    tmp=$(mktemp)
    cat >"$tmp" <<EOF
# Written by hpc_fed slurm/local_cluster.sh: a one-node test cluster on 127.0.0.1.
# Not for a real cluster. Rewritten on every 'local_cluster.sh start'.
ClusterName=local
SlurmctldHost=${NODE}(127.0.0.1)
AuthType=auth/munge
CryptoType=crypto/munge
SlurmUser=root
SlurmdUser=root
SlurmctldPort=6817
SlurmdPort=6818
StateSaveLocation=${STATE_DIR}
SlurmdSpoolDir=${SPOOL_DIR}
SlurmctldPidFile=${CTLD_PID}
SlurmdPidFile=${SLURMD_PID}
SlurmctldLogFile=${CTLD_LOG}
SlurmdLogFile=${SLURMD_LOG}
SlurmctldDebug=info
SlurmdDebug=info
# no cgroups anywhere: plain process tracking, no task binding, no job accounting
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
MailProg=/bin/true
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
# start batch jobs at once (the default batch_sched_delay=3 holds a new sbatch job up to 3 s)
SchedulerParameters=batch_sched_delay=0
ReturnToService=2
# fast tests: finished jobs stay visible to squeue / scontrol show job for 300 s (there is
# no sacct), cancelled jobs get SIGKILL 5 s after SIGTERM
MinJobAge=300
KillWait=5
CompleteWait=0
InactiveLimit=0
Waittime=0
SlurmctldTimeout=30
SlurmdTimeout=30
NodeName=${NODE} NodeAddr=127.0.0.1 CPUs=${cpus} RealMemory=${real_mem} State=UNKNOWN
PartitionName=debug Nodes=${NODE} Default=YES MaxTime=INFINITE State=UP
EOF
    if [ -f "$SLURM_CONF" ] && cmp -s "$tmp" "$SLURM_CONF"; then
        rm -f "$tmp"
    else
        install -m 0644 "$tmp" "$SLURM_CONF"
        rm -f "$tmp"
        echo changed
    fi
}

start_munge() {
    if [ ! -s "$MUNGE_KEY" ]; then
        mkdir -p "$(dirname "$MUNGE_KEY")"
        mungekey -c -k "$MUNGE_KEY"
    fi
    chown munge:munge "$MUNGE_KEY"
    chmod 0400 "$MUNGE_KEY"
    mkdir -p "$MUNGE_RUN" /var/lib/munge /var/log/munge
    chown munge:munge "$MUNGE_RUN" /var/lib/munge /var/log/munge
    chmod 0755 "$MUNGE_RUN"
    if ! is_running munged; then
        runuser -u munge -- munged || die 1 "munged failed to start; see /var/log/munge/munged.log"
    fi
    for _ in $(seq 1 50); do
        munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    die 1 "munged does not answer (munge -n | unmunge fails); see /var/log/munge/munged.log"
}

show_logs() {
    local f
    for f in "$CTLD_LOG" "$SLURMD_LOG"; do
        echo "----- tail of $f -----" >&2
        if [ -f "$f" ]; then tail -n 30 "$f" >&2; else echo "(missing)" >&2; fi
    done
}

cmd_start() {
    local missing changed rc state="" deadline last_resume=-10 started=0
    missing=$(missing_commands)
    if [ -n "$missing" ]; then
        die 2 "SLURM is not installed (missing: $missing). Install the Debian packages" \
            "$PACKAGES with (as root): slurm/local_cluster.sh install"
    fi
    need_root start
    if [ -f "$SLURM_CONF" ] && ! grep -q "Written by hpc_fed" "$SLURM_CONF" \
            && [ "${LOCAL_SLURM_FORCE:-0}" != 1 ]; then
        die 2 "$SLURM_CONF exists and was not written by this script: this machine may have a real" \
            "SLURM setup, which start would overwrite (and stop would shut down). Move the file away," \
            "or set LOCAL_SLURM_FORCE=1 if this is a scratch test machine."
    fi

    changed=$(write_config)
    mkdir -p "$STATE_DIR" "$SPOOL_DIR" "$LOG_DIR"
    if [ -n "$changed" ] && { is_running slurmctld || is_running slurmd; }; then
        echo "slurm.conf changed: restarting slurmctld and slurmd"
        stop_slurm_daemons
    fi

    start_munge
    if ! is_running slurmctld; then
        slurmctld || { rc=$?; show_logs; die 1 "slurmctld failed to start (exit $rc)"; }
        started=1
    fi
    if ! is_running slurmd; then
        # -N: the node name slurmd registers as, the same as NodeName in slurm.conf
        slurmd -N "$NODE" || { rc=$?; show_logs; die 1 "slurmd failed to start (exit $rc)"; }
        started=1
    fi

    deadline=$((SECONDS + TIMEOUT))
    while [ "$SECONDS" -lt "$deadline" ]; do
        if cluster_up; then
            # After a restart slurmctld reports the node idle from its saved state, before
            # slurmd has registered: run a tiny job to be sure that jobs really run (skipped when
            # jobs are queued: it could wait behind them). Note: for ~3 s after slurmctld starts
            # it does not schedule batch jobs yet, so the first sbatch job may wait that long.
            if [ "$started" -eq 1 ] && [ -z "$(q squeue -h -o %A)" ]; then
                if ! timeout $((deadline > SECONDS ? deadline - SECONDS : 1)) \
                    srun -N1 -n1 -t 1 -J local_cluster_probe true >/dev/null 2>&1; then
                    echo "local_cluster.sh: a probe job (srun true) did not run within" \
                        "${TIMEOUT}s" >&2
                    show_logs
                    exit 1
                fi
            fi
            echo "local SLURM cluster is up (node $NODE, $(nproc) CPUs)."
            sinfo
            return 0
        fi
        state=$(node_state)
        case "$state" in
            down* | drain* | fail*)
                # e.g. "Node unexpectedly rebooted" or a drain from an earlier run
                if [ $((SECONDS - last_resume)) -ge 5 ]; then
                    q scontrol update nodename="$NODE" state=resume >/dev/null || true
                    last_resume=$SECONDS
                fi
                ;;
        esac
        sleep 0.5
    done
    echo "local_cluster.sh: the cluster did not come up within ${TIMEOUT}s" \
        "(node state: ${state:-unknown}); clean up with: slurm/local_cluster.sh stop" >&2
    q scontrol ping >&2 || true
    show_logs
    exit 1
}

# ---------------------------------------------------------------------------------------------
wait_gone() {  # wait_gone SECONDS NAME...: wait until no process has one of these names
    local secs=$1 n
    shift
    for _ in $(seq 1 $((secs * 10))); do
        for n in "$@"; do
            is_running "$n" && break
            n=""
        done
        [ -z "$n" ] && return 0
        sleep 0.1
    done
    return 1
}

kill_named() {  # kill_named SIGNAL NAME...
    local sig=$1 n
    shift
    for n in "$@"; do
        pkill "-$sig" -x "$n" 2>/dev/null || true
    done
}

stop_slurm_daemons() {
    if is_running slurmctld; then
        # shuts down slurmctld and all slurmd it knows of
        q scontrol shutdown >/dev/null || true
    fi
    wait_gone 10 slurmctld slurmd && return 0
    kill_named TERM slurmctld slurmd
    wait_gone 10 slurmctld slurmd && return 0
    kill_named KILL slurmctld slurmd
    wait_gone 5 slurmctld slurmd || die 1 "slurmctld/slurmd do not stop"
}

cmd_stop() {
    need_root stop
    local jobs
    if command -v squeue >/dev/null 2>&1 && is_running slurmctld; then
        jobs=$(q squeue -h -o %A || true)
        if [ -n "$jobs" ]; then
            # shellcheck disable=SC2086
            q scancel $jobs || true
            # let the jobs end while slurmd is still there to clean them up (KillWait=5)
            for _ in $(seq 1 30); do
                [ -z "$(q squeue -h -o %A || true)" ] && break
                sleep 0.5
            done
        fi
    fi
    stop_slurm_daemons
    # job steps of a killed slurmd
    if is_running slurmstepd; then
        kill_named TERM slurmstepd
        wait_gone 5 slurmstepd || kill_named KILL slurmstepd
        wait_gone 5 slurmstepd || die 1 "slurmstepd does not stop"
    fi
    if is_running munged; then
        kill_named TERM munged
        wait_gone 10 munged || kill_named KILL munged
        wait_gone 5 munged || die 1 "munged does not stop"
    fi
    echo "local SLURM cluster is stopped."
}

# ---------------------------------------------------------------------------------------------
cmd_status() {
    if [ -n "$(missing_commands)" ]; then
        echo "SLURM is not installed (run: slurm/local_cluster.sh install)."
        return 1
    fi
    if ! is_running slurmctld; then
        echo "local SLURM cluster is not running (no slurmctld)."
        return 1
    fi
    timeout 5 sinfo || true
    timeout 5 squeue || true
    if cluster_up; then
        return 0
    fi
    echo "local SLURM cluster is not up (slurmctld or node $NODE not ready)."
    return 1
}

usage() {
    sed -n '12,21p' "$0" | sed 's/^# \{0,1\}//'
}

case "${1:-}" in
    install) cmd_install ;;
    start) cmd_start ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    -h | --help | help)
        usage
        ;;
    *)
        usage >&2
        exit 2
        ;;
esac
