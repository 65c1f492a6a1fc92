/* shadowcopy: a guardian, the process that holds a writer's freeze and
 * guarantees its thaw.
 *
 * The guardian is a forked child in its own session, deaf to terminal
 * signals, that keeps no descriptor but its two pipes.  It runs the
 * writer's freeze operation, reports, then waits; EOF on its command
 * pipe (thaw, abort, the requester's death even by kill -9) or the end
 * of the freeze window makes it run the thaw operation, report, and
 * exit.  A freeze that failed half-way is thawed at once, so a failed
 * freeze leaves nothing frozen: the thaw operation then undoes only
 * what the freeze may have done (a freeze refused by the agent or by
 * virsh froze nothing of ours, and a thaw would end someone else's
 * freeze), and does nothing when that was nothing.  Each operation works to a deadline of
 * its own (an absolute monotonic time in ms) and must keep it.
 *
 * The in-box writers qemu-ga, libvirt and mysql (writer-*.c) are
 * operations run by a guardian; fsfreeze has its own (fsfreeze.c).
 * sc_guardian_run runs a program to a deadline, for the operations
 * that are other programs (virsh, psql).
 */
#ifndef SHADOWCOPY_LIB_GUARDIAN_H
#define SHADOWCOPY_LIB_GUARDIAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define SC_GUARDIAN_WHY_MAX 512

/* A writer's freeze and thaw, run in the guardian.  Each returns 0, or a
 * negative errno with one line in why; `deadline` is monotonic ms. */
struct sc_guardian_ops {
  int (*freeze) (void *arg, uint64_t deadline, char *why, size_t len);
  int (*thaw) (void *arg, uint64_t deadline, char *why, size_t len);
  void *arg;
};

struct sc_guardian {
  pid_t pid;                    /* the guardian, or 0 */
  int cmd, status;              /* its pipes, or -1 */
};

#define SC_GUARDIAN_INIT ((struct sc_guardian) { 0, -1, -1 })

/* Monotonic milliseconds. */
uint64_t sc_guardian_now_ms (void);

/* Start a guardian that freezes (within op_ms) and then holds the freeze
 * for at most window_ms.  0 once frozen, with how long the freeze took
 * in why; or a negative errno with why saying what failed (the guardian
 * has then thawed what it may have frozen and exited); -ETIME when a
 * call of the freeze went unanswered to its deadline (why names it). */
int sc_guardian_start (struct sc_guardian *g, const struct sc_guardian_ops *ops,
                       uint64_t op_ms, uint64_t window_ms,
                       char *why, size_t len);

/* Tell the guardian to thaw (within op_ms) and wait for its answer.  0,
 * with *frozen_ns the freeze-to-thaw time; -ETIMEDOUT when the window
 * ended first (the guardian thawed before it was asked: what was taken
 * since is not consistent); or the thaw's error.  why says what failed,
 * or is empty.  Without a guardian: 0, nothing to do. */
int sc_guardian_stop (struct sc_guardian *g, uint64_t op_ms,
                      uint64_t *frozen_ns, char *why, size_t len);

/* Close the pipes left open (a guardian still waiting then thaws). */
void sc_guardian_close (struct sc_guardian *g);

/* Run argv (looked up in PATH) with stdin /dev/null, until it exits or
 * `deadline` (then its process group is killed).  out gets the last of
 * its stdout and stderr, one line.  0 when it exited 0; -ETIMEDOUT;
 * -ECHILD (non-zero exit, *status has the wait status); -ENOENT when it
 * could not be run; -EPIPE when its exit status was lost (never taken
 * for success; see spawn.h); other negative errnos when it could not
 * start. */
int sc_guardian_run (char *const argv[], uint64_t deadline, int *status,
                     char *out, size_t outlen);

#endif
