/* shadowcopy: writers (see writers.h).
 *
 * Notes on the design
 *
 * Each phase of an external writer is a child process in its own process
 * group, stdin /dev/null, stdout and stderr into one pipe.  The parent
 * polls that pipe until the child closes it and exits, keeping the last
 * SC_WRITER_OUTPUT_MAX bytes, and kills the whole group at the deadline
 * or when the CLI is interrupted, so a writer that forks cannot outlive
 * its phase.
 *
 * fsfreeze needs the opposite, a freeze that outlives the CLI just long
 * enough to thaw: fsfreeze.c.
 */
#include <config.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "engine/clock.h"
#include "engine/control-protocol.h"
#include "lib/fsfreeze.h"
#include "lib/writers.h"
#include "lib/spawn.h"
#include "lib/shadowcopy.h"
#include "lib/writer-kinds.h"

volatile sig_atomic_t sc_interrupted;

static uint64_t
mono_ms (void)
{
  return sc_mono_ns () / 1000000u;
}

/* A notice for the requester, when it listens. */
static void
say (shadowcopy_notify_fn fn, void *opaque, const char *fmt, ...)
{
  char m[4096];
  va_list ap;

  if (!fn)
    return;
  va_start (ap, fmt);
  vsnprintf (m, sizeof m, fmt, ap);
  va_end (ap);
  fn (m, opaque);
}

/* ---- the list ------------------------------------------------------- */

static int
writer_add (struct sc_writer **v, size_t *n, const char *name)
{
  struct sc_writer *nv = realloc (*v, (*n + 1) * sizeof *nv);

  if (!nv)
    return -ENOMEM;
  *v = nv;
  memset (&nv[*n], 0, sizeof nv[*n]);
  nv[*n].freeze = SC_FSFREEZE_INIT;
  if (!(nv[*n].name = strdup (name)))
    return -ENOMEM;
  if (strncmp (name, "fsfreeze:", 9) == 0 &&
      !(nv[*n].mountpoint = strdup (name + 9)))
    return -ENOMEM;
  if (sc_writer_kind_init (&nv[*n]) < 0)
    return -ENOMEM;
  (*n)++;
  return 0;
}

/* Writers run with the CLI's privileges (root, usually): only a file or
 * directory owned by root or the caller, not writable by group or
 * others, is trusted. */
static bool
trusted (const struct stat *st)
{
  return (st->st_uid == 0 || st->st_uid == geteuid ()) &&
         !(st->st_mode & (S_IWGRP | S_IWOTH));
}

static int
cmp_str (const void *a, const void *b)
{
  return strcmp (*(char *const *) a, *(char *const *) b);
}

/* An entry of the writers directory that is a regular file we may run;
 * one we may not trust is skipped with a warning. */
static bool
trusted_executable (const char *path, shadowcopy_notify_fn fn, void *opaque)
{
  struct stat st;

  if (stat (path, &st) < 0 || !S_ISREG (st.st_mode) ||
      access (path, X_OK) < 0)
    return false;
  if (!trusted (&st)) {
    say (fn, opaque, "warning: writer %s is not owned by root or you, or "
         "is group/world-writable: skipping it", path);
    return false;
  }
  return true;
}

/* The paths of the writers in d (named dir), appended to *names. */
static int
read_writers_dir (DIR *d, const char *dir, char ***names, size_t *nn,
                  shadowcopy_notify_fn fn, void *opaque)
{
  struct dirent *e;

  while ((e = readdir (d))) {
    size_t len = strlen (e->d_name);
    if (e->d_name[0] == '.' || (len && e->d_name[len - 1] == '~'))
      continue;
    char *path;
    if (asprintf (&path, "%s/%s", dir, e->d_name) < 0)
      return -ENOMEM;
    if (!trusted_executable (path, fn, opaque)) {
      free (path);
      continue;
    }
    char **nn2 = realloc (*names, (*nn + 1) * sizeof *nn2);
    if (!nn2) {
      free (path);
      return -ENOMEM;
    }
    *names = nn2;
    (*names)[(*nn)++] = path;
  }
  return 0;
}

/* The writers of `dir` in name order, added to *v.  A directory we may
 * not trust is ignored with a warning.  On failure: err set.  (The
 * validation of a writer's spelling is sc_writers_add's, below.) */
int
sc_writers_add_dir (struct sc_writer **v, size_t *nv, const char *dir,
                    bool dir_optional, shadowcopy_notify_fn fn, void *opaque,
                    char *err, size_t errlen)
{
  DIR *d = opendir (dir);
  struct stat dst;
  char **names = NULL;
  size_t nn = 0;
  int r = 0;

  if (!d && !(dir_optional && errno == ENOENT)) {
    r = -errno;
    snprintf (err, errlen, "writers directory %s: %s", dir, strerror (-r));
    return r;
  }
  if (d && (fstat (dirfd (d), &dst) < 0 || !trusted (&dst))) {
    say (fn, opaque, "warning: writers directory %s is not owned by root "
         "or you, or is group/world-writable: ignoring it", dir);
    closedir (d);
    d = NULL;
  }
  if (d) {
    r = read_writers_dir (d, dir, &names, &nn, fn, opaque);
    closedir (d);
  }
  if (nn)
    qsort (names, nn, sizeof *names, cmp_str);
  for (size_t i = 0; i < nn; i++) {
    if (r == 0)
      r = writer_add (v, nv, names[i]);
    free (names[i]);
  }
  free (names);
  if (r < 0)
    snprintf (err, errlen, "listing writers: %s", strerror (-r));
  return r;
}

int
sc_writers_add (struct sc_writer **v, size_t *n, const char *name,
                char *err, size_t errlen)
{
  int r;

  if (strncmp (name, "fsfreeze:", 9) == 0 && name[9] != '/') {
    snprintf (err, errlen, "writer %s: the mount point must be an "
              "absolute path", name);
    return -EINVAL;
  }
  r = sc_writer_kind_check (name, err, errlen);
  if (r < 0)
    return r;
  r = writer_add (v, n, name);
  if (r < 0)
    snprintf (err, errlen, "listing writers: %s", strerror (-r));
  return r;
}

void
sc_writers_free (struct sc_writer *w, size_t n)
{
  for (size_t i = 0; i < n; i++) {
    free (w[i].name);
    free (w[i].mountpoint);
    sc_fsfreeze_close (&w[i].freeze);
    sc_writer_kind_free (&w[i]);
  }
  free (w);
}

/* ---- results ---------------------------------------------------------- */

static void
set_result (struct sc_writer *w, const char *phase, const char *result,
            const char *output)
{
  snprintf (w->phase, sizeof w->phase, "%s", phase);
  snprintf (w->result, sizeof w->result, "%s", result);
  snprintf (w->output, sizeof w->output, "%s", output);
  /* One line, whatever the writer printed. */
  size_t len = strlen (w->output);
  while (len && (w->output[len - 1] == '\n' || w->output[len - 1] == ' '))
    w->output[--len] = '\0';
  for (char *p = w->output; *p; p++)
    if (*p == '\n')
      *p = ' ';
  sc_ctl_sanitize (w->output);
  w->when = (uint64_t) time (NULL);

  if (w->nhistory == SC_WRITER_HISTORY_MAX) {
    memmove (w->history, w->history + 1,
             (SC_WRITER_HISTORY_MAX - 1) * sizeof w->history[0]);
    w->nhistory--;
  }
  struct sc_writer_result *h = &w->history[w->nhistory++];
  memcpy (h->phase, w->phase, sizeof h->phase);
  memcpy (h->result, w->result, sizeof h->result);
  memcpy (h->output, w->output, sizeof h->output);
  h->when = w->when;
  /* The freeze-to-thaw time: from the end of a freeze that succeeded to
   * the end of the thaw (an abort in between does not end it: thaw is
   * what every writer hears last). */
  h->frozen_ns = 0;
  if (strcmp (phase, "freeze") == 0)
    w->frozen_at = strcmp (result, "ok") == 0 ? sc_mono_ns () : 0;
  else if (strcmp (phase, "thaw") == 0 && w->frozen_at) {
    h->frozen_ns = sc_mono_ns () - w->frozen_at;
    w->frozen_at = 0;
  }
}

void
sc_writer_record (struct sc_writer *w, const char *phase, const char *result,
                  const char *output, uint64_t frozen_ns)
{
  set_result (w, phase, result, output);
  w->history[w->nhistory - 1].frozen_ns = frozen_ns;
}

static int
report (struct sc_writer *w, const char *phase, int r, const char *result,
        char *msg, size_t msglen)
{
  if (r < 0)
    snprintf (msg, msglen, "writer %s: %s: %s%s%s", w->name, phase, result,
              w->output[0] ? ": " : "", w->output);
  return r;
}

/* ---- fsfreeze ----------------------------------------------------------- */

/* A writer (or the freeze guardian) that could not even be started. */
static int
cannot_start (const struct sc_writer *w, const char *phase, int err,
              char *msg, size_t msglen)
{
  snprintf (msg, msglen, "writer %s: %s: cannot start it: %s", w->name,
            phase, strerror (-err));
  return err;
}

static int
fsfreeze_freeze (struct sc_writer *w, uint64_t freeze_ms, char *msg,
                 size_t msglen)
{
  char why[128];
  int r;

  if (w->freeze.guard)
    return 0;
  r = sc_fsfreeze_freeze (&w->freeze, w->mountpoint, freeze_ms, why,
                          sizeof why);
  if (r < 0 && !why[0])         /* no freezer started: nothing to record */
    return cannot_start (w, "freeze", r, msg, msglen);
  set_result (w, "freeze", r < 0 ? "failed" : "ok", why);
  return report (w, "freeze", r, "failed", msg, msglen);
}

static int
fsfreeze_thaw (struct sc_writer *w, const char *phase, char *msg,
               size_t msglen)
{
  char why[160];
  int r = sc_fsfreeze_thaw (&w->freeze, w->mountpoint, why, sizeof why);
  const char *result = r == -ETIMEDOUT ? "window expired"
                       : r < 0 ? "failed" : "ok";
  uint64_t frozen_ns = w->frozen_at ? sc_mono_ns () - w->frozen_at : 0;

  if (r == 0 && frozen_ns)
    snprintf (why, sizeof why, "frozen for %" PRIu64 " ms",
              frozen_ns / 1000000);
  sc_writer_record (w, phase, result, why, frozen_ns);
  return report (w, phase, r, result, msg, msglen);
}

static int
fsfreeze_run (struct sc_writer *w, const char *phase, uint64_t freeze_ms,
              char *msg, size_t msglen)
{
  struct stat st;

  if (strcmp (phase, "freeze") == 0)
    return fsfreeze_freeze (w, freeze_ms, msg, msglen);
  if (strcmp (phase, "thaw") == 0 || strcmp (phase, "abort") == 0)
    return fsfreeze_thaw (w, phase, msg, msglen);
  if (strcmp (phase, "identify") == 0 || strcmp (phase, "prepare") == 0) {
    if (stat (w->mountpoint, &st) < 0 || !S_ISDIR (st.st_mode)) {
      set_result (w, phase, "failed", stat (w->mountpoint, &st) < 0
                  ? strerror (errno) : "not a directory");
      return report (w, phase, -ENOTDIR, "failed", msg, msglen);
    }
    set_result (w, phase, "ok", strcmp (phase, "identify") == 0
                ? "built-in: freezes the filesystem" : "");
    return 0;
  }
  set_result (w, phase, "ok", "");
  return 0;
}

/* ---- external writers ------------------------------------------------- */

/* The child of a phase (in its intermediate's process group, see
 * spawn.h): stdin /dev/null, stdout and stderr into `out`, the
 * SHADOWCOPY_* environment. */
static void __attribute__ ((noreturn))
exec_writer (const struct sc_writer *w, const char *phase,
             const struct sc_writer_env *env, int out)
{
  int null = open ("/dev/null", O_RDONLY);

  signal (SIGPIPE, SIG_DFL);
  signal (SIGINT, SIG_DFL);
  signal (SIGTERM, SIG_DFL);
  signal (SIGHUP, SIG_DFL);
  if (null >= 0)
    dup2 (null, 0);
  dup2 (out, 1);
  dup2 (out, 2);
  setenv ("SHADOWCOPY_PHASE", phase, 1);
  setenv ("SHADOWCOPY_WRITER", w->name, 1);
  setenv ("SHADOWCOPY_SET_ID", env->set_id ? env->set_id : "", 1);
  setenv ("SHADOWCOPY_SNAPSHOT", env->snapshot ? env->snapshot : "", 1);
  setenv ("SHADOWCOPY_SNAPSHOTS", env->snapshots ? env->snapshots : "", 1);
  setenv ("SHADOWCOPY_VOLUMES", env->volumes ? env->volumes : "", 1);
  if (env->backup_result)
    setenv ("SHADOWCOPY_BACKUP_RESULT", env->backup_result, 1);
  /* A name without '/' is looked up in PATH; no shell, no arguments. */
  execlp (w->name, w->name, phase, (char *) NULL);
  fprintf (stderr, "cannot run %s: %s\n", w->name, strerror (errno));
  _exit (127);
}

struct exec_args {
  const struct sc_writer *w;
  const char *phase;
  const struct sc_writer_env *env;
  int out;
};

static void
run_writer (void *arg)
{
  struct exec_args *a = arg;

  exec_writer (a->w, a->phase, a->env, a->out);
}

/* A phase of an external writer, running. */
struct phase_run {
  pid_t pid;                    /* its intermediate, the group leader */
  int status_fd;                /* the intermediate's report */
  uint64_t end;                 /* its time limit, monotonic ms */
  bool interruptible;           /* by the CLI's interruption */
  bool timed_out, interrupted;
  char out[SC_WRITER_OUTPUT_MAX];       /* the last of its output */
  size_t outlen;
};

/* Whether the phase is cut short at `now`: interrupted, or out of time. */
static bool
cut_short (struct phase_run *x, uint64_t now)
{
  if (sc_interrupted && x->interruptible)
    x->interrupted = true;
  else if (now >= x->end)
    x->timed_out = true;
  return x->interrupted || x->timed_out;
}

/* Keep the last bytes: the end of the output says what went wrong.
 * (n is less than the size of out.) */
static void
keep_output (struct phase_run *x, const char *buf, size_t n)
{
  if (x->outlen + n > sizeof x->out - 1) {
    size_t drop = x->outlen + n - (sizeof x->out - 1);
    memmove (x->out, x->out + drop, x->outlen - drop);
    x->outlen -= drop;
  }
  memcpy (x->out + x->outlen, buf, n);
  x->outlen += n;
}

/* The writer's output until every copy of the pipe is closed, or the
 * phase is cut short. */
static void
read_output (struct phase_run *x, int fd)
{
  for (;;) {
    uint64_t now = mono_ms ();
    if (cut_short (x, now))
      break;
    struct pollfd pf = { .fd = fd, .events = POLLIN };
    int k = poll (&pf, 1, (int) (x->end - now));
    if (k < 0 && errno == EINTR)
      continue;
    if (k <= 0)
      continue;
    char buf[512];
    ssize_t n = read (fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      break;                    /* every copy of the pipe is closed */
    keep_output (x, buf, n);
  }
  x->out[x->outlen] = '\0';
}

/* The end of the phase; its wait status.  The output is closed, but the
 * writer may still run (it may have closed or redirected its output):
 * the limit holds until it exits.  Its status comes from its
 * intermediate (spawn.h), whatever this process's SIGCHLD disposition;
 * none is a failure (*lost).  Whatever is left of the phase (the
 * writer's own leftovers too) is killed with the group. */
static int
end_phase (struct phase_run *x, bool *lost)
{
  int status = 0;

  *lost = false;
  while (!x->timed_out && !x->interrupted) {
    int k = sc_spawn_status (x->status_fd, mono_ms () + 10, &status);
    if (k < 0)
      *lost = true;
    if (k != 0)
      break;
    cut_short (x, mono_ms ());
  }
  sc_spawn_end (x->pid, x->status_fd);
  x->status_fd = -1;
  return status;
}

/* What became of the phase, in words (result) and as 0, -ETIMEDOUT,
 * -EINTR or -ECHILD (a non-zero exit or a signal). */
static int
outcome (const struct phase_run *x, int status, bool lost,
         uint64_t timeout_ms, char *result, size_t len)
{
  if (x->timed_out) {
    snprintf (result, len, "timed out after %" PRIu64 " ms", timeout_ms);
    return -ETIMEDOUT;
  }
  if (x->interrupted) {
    snprintf (result, len, "interrupted");
    return -EINTR;
  }
  if (lost) {
    snprintf (result, len, "exit status lost");
    return -ECHILD;
  }
  if (WIFEXITED (status) && WEXITSTATUS (status) == 0) {
    snprintf (result, len, "ok");
    return 0;
  }
  if (WIFEXITED (status))
    snprintf (result, len, "exit status %d", WEXITSTATUS (status));
  else
    snprintf (result, len, "killed by signal %d", WTERMSIG (status));
  return -ECHILD;
}

int
sc_writer_run (struct sc_writer *w, const char *phase,
               const struct sc_writer_env *env, uint64_t timeout_ms,
               uint64_t freeze_ms, char *msg, size_t msglen)
{
  struct phase_run x = { 0 };
  char result[32];
  int p[2], r;

  /* Every failure below says what failed; this is for any that would
   * not (the caller prints msg whenever the result is an error). */
  snprintf (msg, msglen, "writer %s: %s: failed", w->name, phase);
  if (w->mountpoint)
    return fsfreeze_run (w, phase, freeze_ms, msg, msglen);
  if (w->kind)
    return sc_writer_kind_run (w, phase, env, timeout_ms, freeze_ms, msg,
                               msglen);

  if (pipe2 (p, O_CLOEXEC) < 0)
    return cannot_start (w, phase, -errno, msg, msglen);
  fflush (NULL);
  struct exec_args a = { .w = w, .phase = phase, .env = env, .out = p[1] };
  x.pid = sc_spawn (run_writer, &a, &x.status_fd);
  close (p[1]);
  if (x.pid < 0) {
    close (p[0]);
    return cannot_start (w, phase, x.pid, msg, msglen);
  }

  /* thaw and abort run to the end (or their time limit) even when the
   * CLI was interrupted: they are what makes the interruption safe. */
  x.interruptible = strcmp (phase, "thaw") != 0 &&
                    strcmp (phase, "abort") != 0;
  x.end = mono_ms () + timeout_ms;
  read_output (&x, p[0]);
  close (p[0]);
  bool lost;
  int status = end_phase (&x, &lost);
  r = outcome (&x, status, lost, timeout_ms, result, sizeof result);
  set_result (w, phase, result, x.out);
  return report (w, phase, r, result, msg, msglen);
}
