#!/usr/bin/env bash
# A real single-node Slurm on this machine, from Debian's packages (groundwork for issue 13: servers as Slurm
# jobs). As root: installs slurmd, slurmctld, slurm-client and munge if missing, writes a one-node config
# (this host, all its CPUs, proctrack/cgroup so that a job's whole tree is killed, escapees included), starts
# munged, slurmctld and slurmd, and waits until the node is idle. Idempotent; `scripts/slurm-local.sh stop`
# stops the daemons. Tried on 2026-12-04 on this project's machine (Debian 12, cgroup v1, a container):
# an sbatch job's forked and setsid'd children were all killed by scancel.
set -euo pipefail
[ "$(id -u)" = 0 ] || { echo "slurm-local.sh: needs root (apt-get, daemons)" >&2; exit 2; }
if [ "${1:-}" = stop ]; then
  pkill -x slurmd || true; pkill -x slurmctld || true; pkill -x munged || true
  exit 0
fi
if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v munged >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q slurmd slurmctld slurm-client munge >/dev/null \
    || { apt-get update -q >/dev/null && apt-get install -y -q slurmd slurmctld slurm-client munge >/dev/null; }
fi
host=$(hostname -s)
cpus=$(nproc)
mem=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 * 9 / 10 ))
mkdir -p /etc/slurm /var/spool/slurmctld /var/spool/slurmd /var/log/slurm /run/munge
chown munge:munge /run/munge
cgroup=v1
[ -f /sys/fs/cgroup/cgroup.controllers ] && cgroup=v2
cat > /etc/slurm/slurm.conf <<CONF
ClusterName=tether
SlurmctldHost=$host
AuthType=auth/munge
ProctrackType=proctrack/cgroup
TaskPlugin=task/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
ReturnToService=2
NodeName=$host CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP OverSubscribe=FORCE:4
CONF
cat > /etc/slurm/cgroup.conf <<CONF
CgroupPlugin=cgroup/$cgroup
ConstrainCores=no
ConstrainRAMSpace=no
CONF
pgrep -x munged >/dev/null || munged --force
pgrep -x slurmctld >/dev/null || slurmctld
pgrep -x slurmd >/dev/null || slurmd
for _ in $(seq 1 100); do
  state=$(sinfo -h -n "$host" -o %t 2>/dev/null || true)
  case "$state" in idle|mix|alloc) echo "slurm-local.sh: node $host is $state"; exit 0 ;; esac
  sleep 0.1   # a daemon's start, polled; nothing here waits on a guess
done
echo "slurm-local.sh: node $host did not become idle (state '${state:-none}'); see /var/log/slurm/" >&2
exit 1
