/* shadowcopy: a child whose exit status the library learns whatever the
 * caller's SIGCHLD disposition.
 *
 * A caller that ignores SIGCHLD (SIG_IGN survives exec: daemons and
 * library users do it) makes the kernel reap its children at once, so
 * waitpid() fails with ECHILD and a child's exit status is lost.  A
 * library must not change that disposition (it is process-wide), so the
 * child is run under an intermediate process, the group leader, that
 * sets SIGCHLD to SIG_DFL for itself, waits for the child and writes its
 * wait status to a pipe.  No status on the pipe is a failure, never an
 * exit 0.
 */
#ifndef SHADOWCOPY_LIB_SPAWN_H
#define SHADOWCOPY_LIB_SPAWN_H

#include <stdint.h>
#include <sys/types.h>

/* Fork the intermediate (a new process group, killed when the calling
 * thread dies), which forks the child and calls run(arg) in it (run
 * must not return: it execs or _exits).  The intermediate keeps none of
 * the caller's descriptors but the status pipe; the child keeps them
 * all (close-on-exec ones go at its exec).  Returns the intermediate's
 * pid (the group id) and *status_fd, or a negative errno. */
pid_t sc_spawn (void (*run) (void *arg), void *arg, int *status_fd);

/* Wait until the child's status arrives or deadline (monotonic ms;
 * UINT64_MAX for none): 1 with *wstatus, 0 not yet (deadline), or
 * -EIO (the intermediate died without saying: a failure). */
int sc_spawn_status (int status_fd, uint64_t deadline, int *wstatus);

/* Kill the group (what is left of the child and its own children), reap
 * the intermediate if this process can, close status_fd. */
void sc_spawn_end (pid_t pid, int status_fd);

#endif
