#!/usr/bin/env bash
# A real single-node SLURM on this machine, for testing the workflow's SLURM profile.
#
#   bash tests/cluster/slurm.sh start    # install slurm-wlm + munge if missing, start munge,
#                                        # slurmctld and slurmd; returns once the node is idle
#   bash tests/cluster/slurm.sh status   # sinfo / squeue
#   bash tests/cluster/slurm.sh stop     # cancel jobs, stop the daemons, remove /etc/slurm/slurm.conf
#
# Needs root. No systemd, no cgroups, no accounting database (slurmdbd): use the plugin's
# `--slurm-status-command squeue`, since `sacct` cannot work without it.
#
# /etc/slurm/slurm.conf is the only place every SLURM command (and the jobs the Snakemake plugin
# starts, which lose SLURM_* variables) reads the config from. A leftover one without a running
# controller makes every later snakemake call stall, so `stop` removes it; the script only ever
# writes or removes a slurm.conf that carries its own marker line, never a real cluster's.
#
# The node has two fake GPUs (gres.conf, also ours and removed by `stop`) so that GPU requests
# can be scheduled and checked; nothing can run CUDA on them.
#
# Exit codes of `start`: 0 up; 2 not root; 3 the packages cannot be installed; 1 anything else.
# State, spool, pid and log files live in $TRAINSET_SLURM_DIR (default /tmp/trainset-slurm).
set -uo pipefail

DIR="${TRAINSET_SLURM_DIR:-/tmp/trainset-slurm}"
CONF=/etc/slurm/slurm.conf
GRES_CONF=/etc/slurm/gres.conf
MARKER="# written by trainset tests/cluster/slurm.sh"

log() { echo "slurm.sh: $*" >&2; }

ours() { [[ -f $CONF ]] && grep -qF "$MARKER" "$CONF"; }

gres_ours() { [[ -f $GRES_CONF ]] && grep -qF "$MARKER" "$GRES_CONF"; }

# Two fake GPUs, so jobs asking for `--gpus` are scheduled and their GPU requests show in
# `scontrol show job` (TRES gres/gpu=N). SLURM needs character devices (plain files drain the
# node); these are copies of /dev/null (1:3), and nothing here uses CUDA.
write_gres() {
  mkdir -p "$DIR/dev"
  local i
  for i in 0 1; do
    [[ -c $DIR/dev/fakegpu$i ]] || mknod "$DIR/dev/fakegpu$i" c 1 3 || return 1
  done
  if [[ -f $GRES_CONF ]] && ! gres_ours; then
    log "$GRES_CONF exists and was not written by this script; refusing to touch it"
    return 1
  fi
  printf '%s\nName=gpu File=%s/dev/fakegpu[0-1]\n' "$MARKER" "$DIR" >"$GRES_CONF"
}


munge_works() { timeout 5 munge -n 2>/dev/null | timeout 5 unmunge >/dev/null 2>&1; }

install_packages() {
  if command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v munged >/dev/null \
      && command -v sbatch >/dev/null; then
    return 0
  fi
  if ! command -v apt-get >/dev/null; then
    log "slurm-wlm/munge are not installed and there is no apt-get to install them"
    return 3
  fi
  log "installing slurm-wlm and munge (apt-get)"
  if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge; } \
      >"$DIR/apt.log" 2>&1; then
    tail -20 "$DIR/apt.log" >&2
    log "apt-get could not install slurm-wlm munge (log: $DIR/apt.log)"
    return 3
  fi
}

start_munge() {
  if munge_works; then
    log "munged already answers; using it"
    return 0
  fi
  if [[ ! -s /etc/munge/munge.key ]]; then
    mkdir -p /etc/munge
    if command -v mungekey >/dev/null; then mungekey --create --keyfile /etc/munge/munge.key --force
    else dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024 status=none; fi
    chown munge:munge /etc/munge/munge.key && chmod 0400 /etc/munge/munge.key
  fi
  mkdir -p /run/munge /var/lib/munge /var/log/munge
  chown munge:munge /run/munge /var/lib/munge /var/log/munge
  chmod 0755 /run/munge
  rm -f /run/munge/munged.pid
  # munged daemonizes itself and writes /run/munge/munged.pid
  runuser -u munge -- /usr/sbin/munged || { log "munged did not start"; return 1; }
  cp /run/munge/munged.pid "$DIR/munged.pid" 2>/dev/null
  for _ in $(seq 50); do munge_works && return 0; sleep 0.1; done
  log "munged started but credentials do not verify"
  return 1
}

write_conf() {
  local host node_line cpus mem
  host=$(hostname -s)
  # `slurmd -C` prints this machine's node line (CPUs, sockets, cores, threads, RealMemory)
  node_line=$(slurmd -C 2>/dev/null | head -1)
  cpus=$(sed -n 's/.*CPUs=\([0-9]*\).*/\1/p' <<<"$node_line")
  mem=$(sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p' <<<"$node_line")
  [[ -n $cpus ]] || cpus=$(nproc)
  [[ -n $mem ]] || mem=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 ))
  mem=$(( mem * 9 / 10 ))  # leave the rest to the OS; a node claiming more than it has is drained
  local topology
  topology=$(grep -o 'Boards=[0-9]* SocketsPerBoard=[0-9]* CoresPerSocket=[0-9]* ThreadsPerCore=[0-9]*' <<<"$node_line")
  mkdir -p /etc/slurm
  cat >"$CONF" <<EOF
$MARKER
# A single-node test cluster; \`bash tests/cluster/slurm.sh stop\` removes this file.
ClusterName=trainset
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
# no cgroups on these machines
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
# without a default a job asking for no memory would take the whole node
DefMemPerCPU=500
# two fake GPUs (write_gres), for checking the jobs' GPU requests
GresTypes=gpu
# finished jobs stay visible to squeue/scontrol for 15 min (the plugin's squeue status check;
# the tests read finished jobs' states, minutes later on a loaded machine)
MinJobAge=900
ReturnToService=2
InactiveLimit=0
KillWait=5
Waittime=0
SlurmctldTimeout=60
SlurmdTimeout=60
SlurmctldPort=6817
SlurmdPort=6818
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus ${topology} RealMemory=$mem Gres=gpu:2 State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
}

node_state() { timeout 5 sinfo -h -N -n "$(hostname -s)" -o %T 2>/dev/null | head -1; }

stop() {
  local pidfile pid
  if [[ -f $CONF ]] && ! ours; then
    log "$CONF was not written by this script; leaving it and its cluster alone"
    return 1
  fi
  if ours; then
    # cancel every job, then give slurmd a moment to end them
    local jobs
    jobs=$(timeout 5 squeue -h -o %A 2>/dev/null | tr '\n' ' ')
    if [[ -n ${jobs// /} ]]; then
      timeout 10 scancel $jobs 2>/dev/null
      for _ in $(seq 20); do
        [[ -z $(timeout 5 squeue -h -t R,CG,PD -o %A 2>/dev/null) ]] && break
        sleep 0.5
      done
    fi
    timeout 10 scontrol shutdown >/dev/null 2>&1
  fi
  # the daemons we started, by their recorded pids
  for pidfile in "$DIR/slurmd.pid" "$DIR/slurmctld.pid" "$DIR/munged.pid"; do
    [[ -f $pidfile ]] || continue
    pid=$(cat "$pidfile" 2>/dev/null)
    if [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null; then
      kill -TERM "$pid" 2>/dev/null
      for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
    fi
    rm -f "$pidfile"
  done
  ours && rm -f "$CONF"
  gres_ours && rm -f "$GRES_CONF"
  rm -rf "$DIR/state" "$DIR/spool"
  log "stopped; $CONF removed"
  return 0
}

start() {
  local t0=$SECONDS
  if [[ $(id -u) -ne 0 ]]; then
    log "must run as root (installs packages, starts munged/slurmctld/slurmd)"
    return 2
  fi
  if [[ -f $CONF ]] && ! ours; then
    log "$CONF exists and was not written by this script: a real SLURM? refusing to touch it"
    return 1
  fi
  mkdir -p "$DIR"
  install_packages || return $?
  stop >/dev/null 2>&1  # a previous run's daemons and state, if any
  mkdir -p "$DIR/state" "$DIR/spool" "$DIR/log"
  start_munge || return 1
  write_gres || return 1
  write_conf
  /usr/sbin/slurmctld || { log "slurmctld did not start"; tail -20 "$DIR/log/slurmctld.log" >&2; return 1; }
  /usr/sbin/slurmd || { log "slurmd did not start"; tail -20 "$DIR/log/slurmd.log" >&2; return 1; }
  local state=""
  for _ in $(seq 60); do
    state=$(node_state)
    case $state in
      idle*) log "single-node SLURM up in $((SECONDS - t0)) s (node $(hostname -s), partition debug, 2 fake GPUs)"; return 0 ;;
      down*|drain*) timeout 5 scontrol update nodename="$(hostname -s)" state=resume >/dev/null 2>&1 ;;
    esac
    sleep 0.5
  done
  log "the node did not become idle within 30 s (state: ${state:-no answer})"
  timeout 5 scontrol show node "$(hostname -s)" >&2
  tail -n 20 "$DIR/log/slurmctld.log" "$DIR/log/slurmd.log" >&2
  return 1
}

status() {
  ours || { echo "no test cluster ($CONF absent or not ours)"; return 1; }
  timeout 5 sinfo
  timeout 5 squeue
}

case "${1:-}" in
  start) start; code=$?; if [[ $code -eq 1 ]]; then stop >/dev/null 2>&1; fi; exit $code ;;
  stop) stop ;;
  status) status ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 64 ;;
esac
