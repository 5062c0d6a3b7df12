#!/usr/bin/env bash
# A real one-node Slurm on this machine, for the tests of almr's Slurm job
# arrays. No systemd: the daemons are started and stopped by hand.
#
#   scripts/slurm-local.sh start     install if missing, start what is not running, wait for the node
#   scripts/slurm-local.sh stop      cancel our jobs, stop the daemons this script started (pid files)
#   scripts/slurm-local.sh status    daemons, sinfo, and the `export SLURM_CONF=...` line; rc 0 iff all up
#   scripts/slurm-local.sh env       only the `export SLURM_CONF=...` line: eval "$(scripts/slurm-local.sh env)"
#   scripts/slurm-local.sh selftest  start, job array + dependency + cancel/resubmit one index, stop; rc != 0 on failure
#
# Installs (as root, only when missing): Debian's slurmctld slurmd slurm-client
# munge, with `apt-get install -y --no-install-recommends` (`apt-get update`
# and one retry only if that fails). Where /usr/sbin/policy-rc.d is absent, a
# temporary one (exit 101) is put there for the install and removed after, so
# that the packages' postinst scripts do not start system munged/slurmd/
# slurmctld through /etc/init.d. Debian 12 ships Slurm 22.05.
#
# State: everything under STATE=${ALMR_SLURM_DIR:-/tmp/almr-slurm}:
#   slurm.conf          written on every start (node size from `slurmd -C`)
#   munge/              munge:munge 0711: munge.key (munge:munge 0400, made once
#                       from /dev/urandom if absent), munge.socket, munged.pid,
#                       munged.log, munged.seed. /etc/munge/munge.key and
#                       /run/munge are not used.
#   ctld/ spool/        StateSaveLocation, SlurmdSpoolDir
#   log/                slurmctld.log slurmd.log
#   run/                slurmctld.pid slurmd.pid
# Nothing outside STATE is written, except the temporary policy-rc.d above.
# Root is required for start/stop/selftest (munged runs as the munge user via
# runuser; slurmctld and slurmd run as root: SlurmUser=root, simplest for CI).
#
# Callers: Debian's Slurm reads /etc/slurm/slurm.conf unless SLURM_CONF names
# another file; every Slurm command and daemon honours SLURM_CONF. This script
# does not create /etc/slurm/slurm.conf; callers do
#     eval "$(scripts/slurm-local.sh env)"   # export SLURM_CONF=$STATE/slurm.conf
# before sbatch/squeue/scancel/scontrol/sinfo. Jobs inherit it (sbatch exports
# the environment). The munge socket is in STATE and reaches Slurm through
# AuthInfo=socket=... in slurm.conf, so nothing else needs to know it.
#
# Knobs: ALMR_SLURM_DIR (state dir), ALMR_SLURMCTLD_PORT (6817),
# ALMR_SLURMD_PORT (6818) -- change both ports to run two of these at once,
# ALMR_SLURM_TIMEOUT (seconds start waits for the node, 30),
# ALMR_SLURM_KEEP_STATE=1 (slurmctld recovers the jobs of its last run; by
# default it starts cold, with `slurmctld -c`, so each start begins empty).
#
# Timings here (Debian 12 VM, 2 cores, load ~2 from other builds): install
# plus first start 8 s; `start` 0.5 s once installed; `stop` 0.5 s;
# `selftest` 12 s end to end (start 0.5 s, jobs 10 s: Slurm schedules in 1 s
# passes, so each step of the chain waits up to a second).
#
# Pitfalls met: the munge socket can live anywhere, but every Slurm process
# (daemons and clients) must be told through AuthInfo=socket=..., which
# SLURM_CONF carries; munged wants its key munge-owned 0400 and directories
# not writable by others (/tmp's sticky bit is accepted). No cgroup.conf is
# needed with proctrack/linuxproc + task/none. Harmless log noise: the mpi/pmix
# plugins fail to load (no libpmix without Recommends), and munged logs
# "Unauthorized credential for client UID=0" at each job launch. Where PID 1
# does not reap (containers without an init), stopped daemons linger as
# zombies (<defunct>) until it does; they are dead and hold no ports.
set -euo pipefail

STATE=${ALMR_SLURM_DIR:-/tmp/almr-slurm}
CTLD_PORT=${ALMR_SLURMCTLD_PORT:-6817}
SLURMD_PORT=${ALMR_SLURMD_PORT:-6818}
TIMEOUT=${ALMR_SLURM_TIMEOUT:-30}
NODE=localhost
PACKAGES=(slurmctld slurmd slurm-client munge)

CONF=$STATE/slurm.conf
MUNGE_DIR=$STATE/munge
MUNGE_KEY=$MUNGE_DIR/munge.key
MUNGE_SOCKET=$MUNGE_DIR/munge.socket
MUNGE_PID=$MUNGE_DIR/munged.pid
CTLD_PID=$STATE/run/slurmctld.pid
SLURMD_PID=$STATE/run/slurmd.pid

say() { printf 'slurm-local: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

# One EXIT trap for everything that must be undone.
CLEANUP=()
run_cleanup() {
	local c
	for c in "${CLEANUP[@]}"; do eval "$c" || true; done
}
trap run_cleanup EXIT
set -E
trap 'say "failed at line $LINENO: $BASH_COMMAND"' ERR

is_root() { [ "$(id -u)" = 0 ]; }

missing_packages() {
	local p out=()
	for p in "${PACKAGES[@]}"; do
		if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
			out+=("$p")
		fi
	done
	echo "${out[*]}"
}

ensure_packages() {
	local missing
	missing=$(missing_packages)
	[ -z "$missing" ] && return 0
	is_root || die "Slurm packages missing ($missing); run as root (it installs them with apt-get) or install: apt-get install -y --no-install-recommends ${PACKAGES[*]}"
	say "installing $missing"
	if [ ! -e /usr/sbin/policy-rc.d ]; then
		# Keep postinst from starting system daemons (there is an
		# /etc/init.d script for each); removed again on exit.
		printf '#!/bin/sh\n# temporary, from almr scripts/slurm-local.sh\nexit 101\n' >/usr/sbin/policy-rc.d
		chmod 755 /usr/sbin/policy-rc.d
		CLEANUP+=("rm -f /usr/sbin/policy-rc.d")
	fi
	local apt=(env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${PACKAGES[@]}")
	if ! "${apt[@]}"; then
		say "install failed; apt-get update and one retry"
		DEBIAN_FRONTEND=noninteractive apt-get update
		"${apt[@]}"
	fi
	missing=$(missing_packages)
	[ -z "$missing" ] || die "still missing after apt-get: $missing"
}

# pid of a daemon of ours: the pid file names a live process whose command
# line mentions STATE (every daemon is started with a path into STATE), so a
# reused pid or someone else's daemon is never taken for ours.
our_pid() {
	local file=$1 pid
	[ -s "$file" ] || return 1
	pid=$(tr -dc '0-9' <"$file")
	[ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] || return 1
	{ tr '\0' ' ' <"/proc/$pid/cmdline"; } 2>/dev/null | grep -qF -- "$STATE/" || return 1
	echo "$pid"
}

wait_for() { # seconds command...: poll every 0.1 s
	local deadline=$((SECONDS + $1))
	shift
	until "$@"; do
		[ "$SECONDS" -lt "$deadline" ] || return 1
		sleep 0.1
	done
}

log_tails() {
	local f
	for f in "$MUNGE_DIR/munged.log" "$STATE/log/slurmctld.log" "$STATE/log/slurmd.log"; do
		[ -f "$f" ] || continue
		say "--- tail of $f"
		tail -n 25 "$f" >&2 || true
	done
}

node_info() { # "cpus mem" of this machine
	local line cpus mem
	line=$(slurmd -C 2>/dev/null | head -n1 || true)
	cpus=$(sed -n 's/.*\bCPUs=\([0-9]*\).*/\1/p' <<<"$line")
	mem=$(sed -n 's/.*\bRealMemory=\([0-9]*\).*/\1/p' <<<"$line")
	[ -n "$cpus" ] || cpus=$(nproc)
	[ -n "$mem" ] || mem=$(awk '/^MemTotal:/ {print int($2 / 1024)}' /proc/meminfo)
	echo "$cpus $mem"
}

write_conf() {
	local cpus mem
	read -r cpus mem < <(node_info)
	mkdir -p "$STATE/ctld" "$STATE/spool" "$STATE/log" "$STATE/run"
	cat >"$CONF.tmp" <<EOF
# Written by almr scripts/slurm-local.sh on every start; edits are lost.
ClusterName=almr-local
SlurmctldHost=$NODE
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
# Root runs the daemons: simplest for a CI machine that is root anyway.
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$MUNGE_SOCKET
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/spool/%n
SlurmctldPidFile=$CTLD_PID
SlurmdPidFile=$SLURMD_PID
SlurmctldLogFile=$STATE/log/slurmctld.log
SlurmdLogFile=$STATE/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
# No cgroups, no systemd.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
SwitchType=switch/none
# One task per CPU, several at once.
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=1,bf_interval=1,batch_sched_delay=0,sched_min_interval=0
PriorityType=priority/basic
# Fast: small timeouts, a node that comes back by itself.
MessageTimeout=5
TCPTimeout=2
SlurmctldTimeout=10
SlurmdTimeout=10
KillWait=2
InactiveLimit=0
MinJobAge=300
MailProg=/bin/true
ReturnToService=2
NodeName=$NODE NodeAddr=127.0.0.1 NodeHostname=$NODE CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
EOF
	mv "$CONF.tmp" "$CONF"
}

ensure_munge_key() {
	mkdir -p "$MUNGE_DIR"
	chown munge:munge "$MUNGE_DIR"
	chmod 0711 "$MUNGE_DIR"
	if [ ! -s "$MUNGE_KEY" ]; then
		(umask 077 && dd if=/dev/urandom of="$MUNGE_KEY" bs=1024 count=1 status=none)
	fi
	chown munge:munge "$MUNGE_KEY"
	chmod 0400 "$MUNGE_KEY"
}

munge_works() { munge -n -S "$MUNGE_SOCKET" 2>/dev/null | unmunge -S "$MUNGE_SOCKET" >/dev/null 2>&1; }

start_munged() {
	local pid
	if pid=$(our_pid "$MUNGE_PID"); then
		say "munged already running (pid $pid)"
		return 0
	fi
	ensure_munge_key
	rm -f "$MUNGE_PID"
	runuser -u munge -- /usr/sbin/munged \
		--socket="$MUNGE_SOCKET" --key-file="$MUNGE_KEY" --pid-file="$MUNGE_PID" \
		--log-file="$MUNGE_DIR/munged.log" --seed-file="$MUNGE_DIR/munged.seed" ||
		{ log_tails; die "munged did not start"; }
	wait_for 10 munge_works || { log_tails; die "munged started but munge/unmunge through $MUNGE_SOCKET fails"; }
	say "started munged (pid $(our_pid "$MUNGE_PID"))"
}

start_slurmctld() {
	local pid
	if pid=$(our_pid "$CTLD_PID"); then
		say "slurmctld already running (pid $pid)"
		return 0
	fi
	rm -f "$CTLD_PID"
	# -c: a cold start, without the jobs and node states of an earlier run
	# (a job recovered as running would hold CPUs until slurmd disowns it).
	local cold=(-c)
	[ "${ALMR_SLURM_KEEP_STATE:-0}" = 1 ] && cold=()
	SLURM_CONF=$CONF slurmctld -f "$CONF" "${cold[@]}" || { log_tails; die "slurmctld did not start"; }
	wait_for 10 ctld_up || { log_tails; die "slurmctld does not answer (scontrol ping)"; }
	say "started slurmctld (pid $(our_pid "$CTLD_PID"))"
}

ctld_up() { scontrol ping 2>/dev/null | grep -q 'is UP'; }

start_slurmd() {
	local pid
	if pid=$(our_pid "$SLURMD_PID"); then
		say "slurmd already running (pid $pid)"
		return 0
	fi
	rm -f "$SLURMD_PID"
	mkdir -p "$STATE/spool/$NODE"
	SLURM_CONF=$CONF slurmd -f "$CONF" -N "$NODE" || { log_tails; die "slurmd did not start"; }
	wait_for 10 our_pid "$SLURMD_PID" >/dev/null || { log_tails; die "slurmd did not stay up"; }
	say "started slurmd (pid $(our_pid "$SLURMD_PID"))"
}

node_state() { sinfo -h -N -n "$NODE" -o '%T' 2>/dev/null | head -n1; }
# Up and responding ("*" is appended when not responding). A fresh node is
# idle; one that a restarted slurmd finds busy with surviving jobs is not.
node_ready() { case $(node_state) in idle | mixed | allocated | completing) return 0 ;; *) return 1 ;; esac; }

all_up() {
	our_pid "$MUNGE_PID" >/dev/null && our_pid "$CTLD_PID" >/dev/null && our_pid "$SLURMD_PID" >/dev/null
}

cmd_start() {
	local t0=$EPOCHREALTIME
	ensure_packages
	is_root || die "start needs root (munged runs as munge, slurmd as root)"
	export SLURM_CONF=$CONF
	if all_up; then
		say "already running (munged $(our_pid "$MUNGE_PID"), slurmctld $(our_pid "$CTLD_PID"), slurmd $(our_pid "$SLURMD_PID")); nothing to do"
		echo "export SLURM_CONF=$CONF"
		return 0
	fi
	mkdir -p "$STATE"
	# The conf is rewritten only while slurmctld is down, so a running
	# controller and the file never disagree.
	our_pid "$CTLD_PID" >/dev/null || write_conf
	start_munged
	start_slurmctld
	start_slurmd
	# A drained node (e.g. by an earlier run) is resumed at once; a down one
	# after 3 s (ReturnToService=2 brings it back when slurmd registers).
	local began=$SECONDS resumed="" st
	until node_ready; do
		st=$(node_state)
		if [ -z "$resumed" ] && { [[ $st == drain* || $st == inval* || $st == fail* ]] ||
			{ [[ $st == down* ]] && [ $((SECONDS - began)) -ge 3 ]; }; }; then
			say "node $NODE is $st; resuming it"
			scontrol update nodename="$NODE" state=resume >/dev/null 2>&1 || true
			resumed=1
		fi
		if [ $((SECONDS - began)) -ge "$TIMEOUT" ]; then
			sinfo -N -l >&2 || true
			scontrol show node "$NODE" >&2 || true
			log_tails
			die "node $NODE not up after $TIMEOUT s (state: $(node_state || true))"
		fi
		sleep 0.1
	done
	say "up in $(awk "BEGIN {printf \"%.1f\", $EPOCHREALTIME - $t0}") s; node $NODE $(node_state)"
	echo "export SLURM_CONF=$CONF"
}

stop_pid() { # name pidfile
	local name=$1 file=$2 pid
	if ! pid=$(our_pid "$file"); then
		rm -f "$file"
		return 0
	fi
	kill -TERM "$pid" 2>/dev/null || true
	if ! wait_for 10 not_alive "$pid"; then
		say "$name (pid $pid) ignores SIGTERM; SIGKILL"
		kill -KILL "$pid" 2>/dev/null || true
		wait_for 5 not_alive "$pid" || say "$name (pid $pid) still alive"
	fi
	rm -f "$file"
	say "stopped $name (pid $pid)"
	STOPPED=$((STOPPED + 1))
}

not_alive() { [ ! -e "/proc/$1" ] || grep -q '^State:.*Z' "/proc/$1/status" 2>/dev/null; }

# Helpers of our daemons that can outlive them (slurmstepd of a running job,
# slurmscriptd): live processes with that name that carry our SLURM_CONF,
# which they inherit from our slurmd/slurmctld.
our_helpers() {
	local p c
	for p in /proc/[0-9]*; do
		c=$(cat "$p/comm" 2>/dev/null) || continue
		[ "$c" = slurmstepd ] || [ "$c" = slurmscriptd ] || continue
		grep -q '^State:.*Z' "$p/status" 2>/dev/null && continue
		{ tr '\0' '\n' <"$p/environ"; } 2>/dev/null | grep -qxF "SLURM_CONF=$CONF" && echo "${p#/proc/}"
	done
	return 0
}

# "pid ppid" of every process, from /proc (procps may be absent in CI).
proc_parents() {
	local st rest ppid
	for st in /proc/[0-9]*/stat; do
		rest=$(cat "$st" 2>/dev/null) || continue
		rest=${rest##*) } # past "pid (comm) "; comm may hold spaces
		read -r _ ppid _ <<<"$rest"
		st=${st#/proc/}
		echo "${st%/stat} $ppid"
	done
}

descendants() { # pids...: them and all their descendants
	proc_parents | awk -v roots="$*" '
		BEGIN { n = split(roots, r, " "); for (i = 1; i <= n; i++) keep[r[i]] = 1 }
		{ parent[$1] = $2 }
		END {
			do { grew = 0; for (p in parent) if (!(p in keep) && (parent[p] in keep)) { keep[p] = 1; grew = 1 } } while (grew)
			for (p in keep) print p
		}'
}

no_active_jobs() { [ -z "$(squeue -h -t PD,R,CG,CF,S -o %A 2>/dev/null)" ]; }

cmd_stop() {
	is_root || die "stop needs root"
	export SLURM_CONF=$CONF
	STOPPED=0
	if our_pid "$CTLD_PID" >/dev/null && ctld_up; then
		local jobs
		jobs=$(squeue -h -t PD,R,CG,CF,S -o %A 2>/dev/null | sort -u | tr '\n' ' ')
		if [ -n "${jobs// /}" ]; then
			say "cancelling jobs: $jobs"
			# shellcheck disable=SC2086
			scancel $jobs 2>/dev/null || true
			wait_for 15 no_active_jobs || say "jobs still active after 15 s: $(squeue -h -o %A | tr '\n' ' ')"
		fi
	fi
	stop_pid slurmd "$SLURMD_PID"
	stop_pid slurmctld "$CTLD_PID"
	stop_pid munged "$MUNGE_PID"
	# Only if jobs outlived the cancel above (e.g. slurmctld was already
	# gone): their slurmstepd and the job's processes under it.
	local left
	left=$(our_helpers)
	if [ -n "$left" ]; then
		# shellcheck disable=SC2086
		left=$(descendants $left | tr '\n' ' ')
		say "left by jobs of this cluster: $left; SIGKILL"
		# shellcheck disable=SC2086
		kill -KILL $left 2>/dev/null || true
	fi
	[ "$STOPPED" -gt 0 ] || say "nothing of ours was running in $STATE"
}

cmd_status() {
	local name file pid rc=0
	for name in munged slurmctld slurmd; do
		case $name in
		munged) file=$MUNGE_PID ;;
		slurmctld) file=$CTLD_PID ;;
		slurmd) file=$SLURMD_PID ;;
		esac
		if pid=$(our_pid "$file"); then
			echo "$name: running (pid $pid)"
		else
			echo "$name: not running"
			rc=1
		fi
	done
	if [ "$rc" = 0 ]; then
		SLURM_CONF=$CONF sinfo -N -o '%N %T %c %m %P' || rc=1
	fi
	echo "export SLURM_CONF=$CONF"
	return "$rc"
}

# ---------------------------------------------------------------- selftest

fail() {
	say "SELFTEST FAILED: $*"
	squeue -t all -o '%i %T %r' >&2 || true
	log_tails
	exit 1
}

job_states() { squeue -h -t all -j "$1" -o '%i %T' 2>/dev/null | sort; }

# Waits until no record of the jobs (comma list) is pending/running.
wait_jobs_done() {
	local ids=$1 deadline=$((SECONDS + ${2:-30})) states
	while :; do
		states=$(job_states "$ids")
		if [ -n "$states" ] && ! grep -qE ' (PENDING|RUNNING|CONFIGURING|COMPLETING|SUSPENDED|REQUEUED)' <<<"$states"; then
			echo "$states"
			return 0
		fi
		[ "$SECONDS" -lt "$deadline" ] || fail "jobs $ids not done in time: $(tr '\n' ' ' <<<"$states")"
		sleep 0.2
	done
}

expect_state() { # states id state
	grep -qx "$2 $3" <<<"$1" || fail "expected $2 $3, got: $(tr '\n' ' ' <<<"$1")"
}

cmd_selftest() {
	local t0=$EPOCHREALTIME tmp pids
	is_root || die "selftest needs root"
	ensure_packages
	export SLURM_CONF=$CONF
	if our_pid "$MUNGE_PID" >/dev/null || our_pid "$CTLD_PID" >/dev/null || our_pid "$SLURMD_PID" >/dev/null; then
		die "a cluster is already running in $STATE; stop it or set ALMR_SLURM_DIR (and ports) for the selftest"
	fi
	tmp=$(mktemp -d /tmp/almr-slurm-selftest.XXXXXX)
	CLEANUP+=("cmd_stop >/dev/null 2>&1" "rm -rf '$tmp'")
	cmd_start >/dev/null
	local t_start=$EPOCHREALTIME
	pids="$(our_pid "$MUNGE_PID") $(our_pid "$CTLD_PID") $(our_pid "$SLURMD_PID")"
	sinfo -N -o '%N %T %c %m %P'
	cd "$tmp"
	mkdir out out2 log t
	local cpus
	cpus=$(sinfo -h -N -n "$NODE" -o %c)

	# 1. An array of 3, at most 2 at once, then a job that needs all 3.
	local job dep
	# shellcheck disable=SC2016
	job=$(sbatch --parsable --array=0-2%2 --chdir="$tmp" --output="$tmp/log/%A_%a.out" \
		--wrap 'echo $SLURM_ARRAY_TASK_ID > out/$SLURM_ARRAY_TASK_ID; date +%s.%N > t/$SLURM_ARRAY_TASK_ID.start; sleep 1; date +%s.%N > t/$SLURM_ARRAY_TASK_ID.end')
	job=${job%%;*}
	dep=$(sbatch --parsable --dependency=afterok:"$job" --kill-on-invalid-dep=yes --chdir="$tmp" \
		--output="$tmp/log/%j.out" --wrap 'cat out/0 out/1 out/2 > out/all')
	dep=${dep%%;*}
	echo "array $job (0-2%2), dependent $dep"
	local states
	states=$(wait_jobs_done "$job,$dep")
	echo "$states"
	for i in 0 1 2; do
		expect_state "$states" "${job}_$i" COMPLETED
		[ "$(cat "out/$i" 2>/dev/null)" = "$i" ] || fail "out/$i is '$(cat "out/$i" 2>/dev/null)'"
	done
	expect_state "$states" "$dep" COMPLETED
	[ "$(tr '\n' ' ' <out/all)" = "0 1 2 " ] || fail "out/all is '$(cat out/all)'"
	# The dependent job started after every task ended.
	local last_end dep_start
	last_end=$(cat t/*.end | sort -n | tail -n1)
	dep_start=$(date -d "$(scontrol show job "$dep" | sed -n 's/.*StartTime=\([^ ]*\).*/\1/p')" +%s)
	awk -v a="$dep_start" -v b="$last_end" 'BEGIN {exit !(a >= int(b))}' || fail "dependent job started ($dep_start) before the last task ended ($last_end)"
	# Two tasks ran at once (2 CPUs), never three (throttle %2).
	if [ "$cpus" -ge 2 ]; then
		local pairs triple
		pairs=$(for pair in 0:1 0:2 1:2; do
			i=${pair%:*} j=${pair#*:}
			awk -v s1="$(cat "t/$i.start")" -v e1="$(cat "t/$i.end")" -v s2="$(cat "t/$j.start")" -v e2="$(cat "t/$j.end")" \
				'BEGIN {if (s1 < e2 && s2 < e1) print "x"}'
		done | wc -l)
		triple=$(cat t/0.start t/1.start t/2.start t/0.end t/1.end t/2.end | tr '\n' ' ' |
			awk '{s = $1; if ($2 > s) s = $2; if ($3 > s) s = $3; e = $4; if ($5 < e) e = $5; if ($6 < e) e = $6; print (s < e) ? 1 : 0}')
		[ "$pairs" -ge 1 ] || fail "no two tasks of the array ran at once"
		[ "$triple" = 0 ] || fail "three tasks ran at once despite %2"
		echo "tasks ran 2 at once, never 3 ($pairs overlapping pairs)"
	fi

	# 2. afterok on a failed job with --kill-on-invalid-dep=yes: cancelled.
	local bad baddep
	bad=$(sbatch --parsable --chdir="$tmp" --output="$tmp/log/%j.out" --wrap 'exit 3')
	bad=${bad%%;*}
	baddep=$(sbatch --parsable --dependency=afterok:"$bad" --kill-on-invalid-dep=yes --chdir="$tmp" \
		--output="$tmp/log/%j.out" --wrap 'touch out/never')
	baddep=${baddep%%;*}
	states=$(wait_jobs_done "$bad,$baddep")
	echo "$states"
	expect_state "$states" "$bad" FAILED
	expect_state "$states" "$baddep" CANCELLED
	[ ! -e out/never ] || fail "job after a failed afterok dependency ran"

	# 3. Cancel one task of an array, then run only that index again.
	local arr
	# shellcheck disable=SC2016
	arr=$(sbatch --parsable --array=0-2 --chdir="$tmp" --output="$tmp/log/%A_%a.out" \
		--wrap 'if [ $SLURM_ARRAY_TASK_ID = 1 ]; then sleep 60; fi; echo $SLURM_ARRAY_TASK_ID > out2/$SLURM_ARRAY_TASK_ID')
	arr=${arr%%;*}
	wait_for 20 task1_running_others_done "$arr" || fail "array $arr: task 1 not running with 0 and 2 done: $(job_states "$arr" | tr '\n' ' ')"
	scancel "${arr}_1"
	states=$(wait_jobs_done "$arr")
	echo "$states"
	expect_state "$states" "${arr}_0" COMPLETED
	expect_state "$states" "${arr}_1" CANCELLED
	expect_state "$states" "${arr}_2" COMPLETED
	[ ! -e out2/1 ] || fail "cancelled task 1 wrote out2/1"
	local again
	# shellcheck disable=SC2016
	again=$(sbatch --parsable --array=1 --chdir="$tmp" --output="$tmp/log/%A_%a.out" \
		--wrap 'echo $SLURM_ARRAY_TASK_ID > out2/$SLURM_ARRAY_TASK_ID')
	again=${again%%;*}
	states=$(wait_jobs_done "$again")
	echo "$states"
	expect_state "$states" "${again}_1" COMPLETED
	for i in 0 1 2; do
		[ "$(cat "out2/$i" 2>/dev/null)" = "$i" ] || fail "out2/$i is '$(cat "out2/$i" 2>/dev/null)'"
	done
	local t_jobs=$EPOCHREALTIME

	# 4. Stop: nothing we started is left; a second stop is harmless.
	cd /
	cmd_stop
	local p
	for p in $pids; do
		not_alive "$p" || fail "pid $p ($(cat "/proc/$p/comm" 2>/dev/null)) still alive after stop"
	done
	[ -z "$(our_helpers)" ] || fail "slurmstepd/slurmscriptd left after stop: $(our_helpers)"
	local strays q
	strays=$(for q in /proc/[0-9]*; do
		case $(cat "$q/comm" 2>/dev/null) in munged | slurmctld | slurmd | slurmstepd) ;; *) continue ;; esac
		grep -q '^State:.*Z' "$q/status" 2>/dev/null && continue
		{ tr '\0' ' ' <"$q/cmdline"; } 2>/dev/null | grep -F -- "$STATE/" | sed "s|^|${q#/proc/} |"
	done)
	[ -z "$strays" ] || fail "daemons naming $STATE left: $strays"
	cmd_stop 2>&1 | grep -q 'nothing of ours was running' || fail "second stop did not say nothing was running"
	echo "selftest OK: start $(awk "BEGIN {printf \"%.1f\", $t_start - $t0}") s, jobs $(awk "BEGIN {printf \"%.1f\", $t_jobs - $t_start}") s, total $(awk "BEGIN {printf \"%.1f\", $EPOCHREALTIME - $t0}") s"
}

task1_running_others_done() {
	local s
	s=$(job_states "$1")
	grep -qx "${1}_1 RUNNING" <<<"$s" && grep -qx "${1}_0 COMPLETED" <<<"$s" && grep -qx "${1}_2 COMPLETED" <<<"$s"
}

case ${1:-} in
start) cmd_start ;;
stop) cmd_stop ;;
status) cmd_status || exit 1 ;;
env) echo "export SLURM_CONF=$CONF" ;;
selftest) cmd_selftest ;;
*)
	echo "usage: $0 start|stop|status|env|selftest   (state: ${ALMR_SLURM_DIR:-/tmp/almr-slurm})" >&2
	exit 2
	;;
esac
