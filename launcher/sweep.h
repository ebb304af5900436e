/* sweep.h - end what a dead node daemon left running on this host.
 *
 * A daemon forks each rank with PR_SET_PDEATHSIG, so the kernel ends the
 * rank when its daemon dies; but processes the rank started itself (a
 * shell's commands, an MPI program's helpers) are not its daemon's
 * children and run on.  vexec-cluster starts every daemon in a session of
 * its own (setsid), vexecd puts itself in one (sweep_keep), and a rank and
 * everything it starts stay in it unless they leave it (setsid)
 * themselves.  The kernel does not reuse a process id while a living
 * process has it as its session id, so once a daemon has died, the
 * processes whose session id is its pid are exactly what it left behind,
 * but for those that left the session.  Those are still in the daemon's
 * cgroup (v2), where there is one: every daemon moves itself into one of
 * its own, "vexecd-PID", which no process leaves but by a write to a
 * cgroup file. */
#ifndef VEXEC_SWEEP_H
#define VEXEC_SWEEP_H

#include <sys/types.h>

/* SIGKILL every process of this host whose session id is sid, the pid of
 * a daemon seen to have died (sid <= 1, or our own session, is refused).
 * Returns how many were signalled, or -1 if /proc cannot be read. */
int sweep_session(pid_t sid);

/* End what daemon pid, seen to have ended, left on this host: every
 * process of its cgroup, "vexecd-PID" below our own cgroup or beside it
 * (sweep_keep, sweep_enter; one that left the daemon's session is still
 * in it), which is then removed, and every process of its session
 * (sweep_session).  Returns how many were signalled, or -1 if /proc
 * cannot be read and nothing was found in a cgroup. */
int sweep_daemon(pid_t pid);

/* sweep_daemon for each of n daemons seen to have ended, with one pass
 * over /proc for all their sessions (vexec-cluster down). */
int sweep_daemons(const pid_t *pids, size_t n);

/* For vexec-cluster's daemons: move this process into a cgroup (v2) of
 * its own, "vexecd-PID" below its present one, before it forks a rank, so
 * that sweep_daemon(its pid), by a neighbour or by `down`, reaches what
 * its ranks take out of its session.  Returns 0, or -1 with errno set and
 * err saying why (no cgroup2 mounted, not ours to write). */
int sweep_enter(char *err, size_t errlen);

/* SIGKILL every process of our own cgroup ("vexecd-PID", made by
 * sweep_keep or sweep_enter; else nothing) but us: what the job that has
 * just ended here, or was told to, left running, in its rank's session or
 * out of it (a background process that closed its output, a daemonized
 * one), as srun ends what is left of a step.  A daemon runs one job at a
 * time, so nothing else of ours is there.  Returns how many were
 * signalled. */
int sweep_leftovers(void);

/* Make this process the one its ranks' orphans are given to
 * (PR_SET_CHILD_SUBREAPER): a process whose parent ends comes to us, not
 * to init, whatever session, process group or cgroup it moved to, so
 * that every process descended from a rank stays below us.  Call after
 * sweep_keep, whose keeper must be nobody's child.  Returns 0, or -1 with
 * errno set. */
int sweep_adopt_orphans(void);

/* SIGKILL and reap each child of ours but keep (the rank whose zombie
 * holds its group's id, or 0), and then what each of them gave us by
 * ending, until no other child is left: with sweep_adopt_orphans, all
 * that our ranks left running, even with no cgroup (its only reach
 * beyond the rank's session and process group).  A daemon's only
 * children are its rank and these.  Returns how many of them were alive,
 * or -1 if /proc/self/task cannot be read. */
int sweep_descendants(pid_t keep);

/* Make sure what our ranks start ends when we do, however we end: put
 * this process (a daemon started by hand, by systemd or by a script) in a
 * session of its own unless it leads one, and in a cgroup (v2) of its
 * own, "vexecd-PID" below its present one, and start a keeper, a process
 * outside both that waits for ours to end (a pidfd), then calls
 * sweep_daemon(our pid).
 * Over tcp no other daemon on this host can see ours die; vexec-cluster's
 * daemons are watched by their neighbours.  The keeper holds no
 * descriptor but stderr; it is not our child (this process's reaping
 * stays its own).  A shell's job leads its process group and cannot
 * start a session: then the cgroup alone holds what the ranks start.
 * Call before any thread starts.  Returns 0; 1 with err saying why there
 * is no cgroup (none mounted, or not ours to write: the keeper then has
 * the session alone); or -1 with errno set and err saying why the keeper
 * can do nothing (neither a session nor a cgroup of our own). */
int sweep_keep(char *err, size_t errlen);

#endif
