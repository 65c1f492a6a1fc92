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
 * fsfreeze needs the opposite: something that outlives the CLI just long
 * enough to thaw.  Its guardian (a forked child in its own session,
 * deaf to terminal signals) freezes, reports, then waits on a pipe from
 * the CLI; EOF on that pipe (thaw, abort, the CLI's death) or the end of
 * the freeze window makes it thaw and exit.
 */
#include <config.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/fs.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "engine/control-protocol.h"
#include "tools/cli.h"
#include "tools/json.h"
#include "tools/writers.h"

volatile sig_atomic_t sc_interrupted;

/* ---- the list ------------------------------------------------------- */

static int
writer_add (struct sc_writer **v, size_t *n, const char *name)
{
  struct sc_writer *nv = realloc (*v, (*n + 1) * sizeof *nv);

  if (!nv)
    return -ENOMEM;
  *v = nv;
  memset (&nv[*n], 0, sizeof nv[*n]);
  nv[*n].guard_cmd = nv[*n].guard_status = -1;
  if (!(nv[*n].name = strdup (name)))
    return -ENOMEM;
  if (strncmp (name, "fsfreeze:", 9) == 0 &&
      !(nv[*n].mountpoint = strdup (name + 9)))
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

int
sc_writers_collect (char *const *cmds, size_t ncmds, const char *dir,
                    bool dir_optional, struct sc_writer **out, size_t *n,
                    char *err, size_t errlen)
{
  struct sc_writer *v = NULL;
  size_t nv = 0;
  int r = 0;

  for (size_t i = 0; i < ncmds && r == 0; i++) {
    if (strncmp (cmds[i], "fsfreeze:", 9) == 0 && cmds[i][9] != '/') {
      snprintf (err, errlen, "writer %s: the mount point must be an "
                "absolute path", cmds[i]);
      sc_writers_free (v, nv);
      return -EINVAL;
    }
    r = writer_add (&v, &nv, cmds[i]);
  }
  if (r == 0 && dir) {
    DIR *d = opendir (dir);
    if (!d && !(dir_optional && errno == ENOENT)) {
      r = -errno;
      snprintf (err, errlen, "writers directory %s: %s", dir, strerror (-r));
      sc_writers_free (v, nv);
      return r;
    }
    struct stat dst;
    if (d && (fstat (dirfd (d), &dst) < 0 || !trusted (&dst))) {
      fprintf (stderr, "shadowcopy: warning: writers directory %s is not "
               "owned by root or you, or is group/world-writable: "
               "ignoring it\n", dir);
      closedir (d);
      d = NULL;
    }
    char **names = NULL;
    size_t nn = 0;
    struct dirent *e;
    while (d && r == 0 && (e = readdir (d))) {
      size_t len = strlen (e->d_name);
      if (e->d_name[0] == '.' || (len && e->d_name[len - 1] == '~'))
        continue;
      char *path;
      if (asprintf (&path, "%s/%s", dir, e->d_name) < 0) {
        r = -ENOMEM;
        break;
      }
      struct stat st;
      if (stat (path, &st) < 0 || !S_ISREG (st.st_mode) ||
          access (path, X_OK) < 0) {
        free (path);
        continue;
      }
      if (!trusted (&st)) {
        fprintf (stderr, "shadowcopy: warning: writer %s is not owned by "
                 "root or you, or is group/world-writable: skipping it\n",
                 path);
        free (path);
        continue;
      }
      char **nn2 = realloc (names, (nn + 1) * sizeof *nn2);
      if (!nn2) {
        free (path);
        r = -ENOMEM;
        break;
      }
      names = nn2;
      names[nn++] = path;
    }
    if (d)
      closedir (d);
    qsort (names, nn, sizeof *names, cmp_str);
    for (size_t i = 0; i < nn; i++) {
      if (r == 0)
        r = writer_add (&v, &nv, names[i]);
      free (names[i]);
    }
    free (names);
  }
  if (r < 0) {
    snprintf (err, errlen, "listing writers: %s", strerror (-r));
    sc_writers_free (v, nv);
    return r;
  }
  *out = v;
  *n = nv;
  return 0;
}

void
sc_writers_free (struct sc_writer *w, size_t n)
{
  for (size_t i = 0; i < n; i++) {
    free (w[i].name);
    free (w[i].mountpoint);
    if (w[i].guard_cmd >= 0)
      close (w[i].guard_cmd);
    if (w[i].guard_status >= 0)
      close (w[i].guard_status);
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

/* What the guardian reports after a thaw when the freeze window ended
 * first: the filesystem was thawed before the CLI asked. */
#define GUARD_WINDOW_ENDED (-1)

/* The guardian keeps only its two pipes (as fds 3 and 4) and /dev/null:
 * an inherited copy of another guardian's pipe would keep that one from
 * seeing EOF, an inherited control socket would keep the server from
 * seeing the CLI go, and an inherited stdout would keep whoever reads
 * the CLI's output waiting until the window ends. */
static void
guardian_fds (int *cmd, int *status)
{
  int c = fcntl (*cmd, F_DUPFD, 10);
  int s = fcntl (*status, F_DUPFD, 10);
  int null = open ("/dev/null", O_RDWR);

  if (c < 0 || s < 0 || null < 0)
    _exit (1);
  dup2 (null, 0);
  dup2 (null, 1);
  dup2 (null, 2);
  dup2 (c, 3);
  dup2 (s, 4);
  close_range (5, ~0U, 0);
  *cmd = 3;
  *status = 4;
}

static void
guardian (const char *mnt, int cmd, int status, uint64_t freeze_ms)
{
  int fd, e = 0;
  bool expired = false;

  setsid ();
  signal (SIGINT, SIG_IGN);
  signal (SIGTERM, SIG_IGN);
  signal (SIGHUP, SIG_IGN);
  signal (SIGPIPE, SIG_IGN);
  guardian_fds (&cmd, &status);
  fd = open (mnt, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0 || ioctl (fd, FIFREEZE, 0) < 0)
    e = errno;
  if (write (status, &e, sizeof e) != sizeof e || e) {
    /* Frozen but could not say so: thaw now. */
    if (!e)
      ioctl (fd, FITHAW, 0);
    _exit (1);
  }
  struct pollfd p = { .fd = cmd, .events = POLLIN };
  uint64_t end = sc_cli_mono_ms () + freeze_ms;
  for (;;) {
    uint64_t now = sc_cli_mono_ms ();
    if (now >= end) {
      expired = true;
      break;
    }
    int k = poll (&p, 1, (int) (end - now));
    if (k < 0 && errno == EINTR)
      continue;
    if (k != 0)
      break;                    /* thaw, or the CLI is gone */
  }
  e = ioctl (fd, FITHAW, 0) < 0 ? errno : 0;
  if (e == 0 && expired)
    e = GUARD_WINDOW_ENDED;
  /* No waiting for the CLI: the status pipe keeps the answer. */
  if (write (status, &e, sizeof e) < 0)
    (void) 0;
  _exit (e ? 1 : 0);
}

static int
fsfreeze_freeze (struct sc_writer *w, uint64_t freeze_ms, char *msg,
                 size_t msglen)
{
  int cmd[2], st[2], e = 0;

  if (w->guard)
    return 0;
  if (pipe2 (cmd, O_CLOEXEC) < 0)
    return -errno;
  if (pipe2 (st, O_CLOEXEC) < 0) {
    e = -errno;
    close (cmd[0]);
    close (cmd[1]);
    return e;
  }
  pid_t pid = fork ();
  if (pid == 0) {
    close (cmd[1]);
    close (st[0]);
    guardian (w->mountpoint, cmd[0], st[1], freeze_ms);
  }
  close (cmd[0]);
  close (st[1]);
  if (pid < 0) {
    e = -errno;
    close (cmd[1]);
    close (st[0]);
    return e;
  }
  ssize_t k;
  while ((k = read (st[0], &e, sizeof e)) < 0 && errno == EINTR)
    ;
  if (k != sizeof e || e) {
    char why[128];
    snprintf (why, sizeof why, "FIFREEZE %s: %s", w->mountpoint,
              k == sizeof e ? strerror (e) : "the freezer died");
    close (cmd[1]);
    close (st[0]);
    waitpid (pid, NULL, 0);
    set_result (w, "freeze", "failed", why);
    return report (w, "freeze", -(k == sizeof e ? e : EIO), "failed",
                   msg, msglen);
  }
  w->guard = pid;
  w->guard_cmd = cmd[1];
  w->guard_status = st[0];
  set_result (w, "freeze", "ok", "");
  return 0;
}

static int
fsfreeze_thaw (struct sc_writer *w, const char *phase, char *msg,
               size_t msglen)
{
  int e = 0;

  if (!w->guard) {
    /* Not frozen by us (or already thawed): make sure, harmlessly. */
    int fd = open (w->mountpoint, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
      if (ioctl (fd, FITHAW, 0) < 0 && errno != EINVAL)
        e = errno;
      close (fd);
    }
  }
  else {
    close (w->guard_cmd);       /* EOF: thaw */
    w->guard_cmd = -1;
    ssize_t k;
    while ((k = read (w->guard_status, &e, sizeof e)) < 0 && errno == EINTR)
      ;
    if (k != sizeof e)
      e = EIO;
    while (waitpid (w->guard, NULL, 0) < 0 && errno == EINTR)
      ;
    close (w->guard_status);
    w->guard_status = -1;
    w->guard = 0;
    /* The window ended first: the guardian thawed the filesystem before
     * we asked, so whatever was taken after that is not consistent. */
    if (e == GUARD_WINDOW_ENDED) {
      char why[160];
      snprintf (why, sizeof why, "the freeze window ended before thaw: "
                "%s was thawed early", w->mountpoint);
      set_result (w, phase, "window expired", why);
      return report (w, phase, -ETIMEDOUT, "window expired", msg, msglen);
    }
  }
  if (e) {
    char why[128];
    snprintf (why, sizeof why, "FITHAW %s: %s", w->mountpoint, strerror (e));
    set_result (w, phase, "failed", why);
    return report (w, phase, -e, "failed", msg, msglen);
  }
  set_result (w, phase, "ok", "");
  return 0;
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

int
sc_writer_run (struct sc_writer *w, const char *phase,
               const struct sc_writer_env *env, uint64_t timeout_ms,
               uint64_t freeze_ms, char *msg, size_t msglen)
{
  char out[SC_WRITER_OUTPUT_MAX];
  size_t outlen = 0;
  int p[2], status = 0;
  bool timed_out = false, interrupted = false;

  if (w->mountpoint)
    return fsfreeze_run (w, phase, freeze_ms, msg, msglen);

  if (pipe2 (p, O_CLOEXEC) < 0)
    return -errno;
  fflush (NULL);
  pid_t pid = fork ();
  if (pid < 0) {
    int e = -errno;
    close (p[0]);
    close (p[1]);
    return e;
  }
  if (pid == 0) {
    int null = open ("/dev/null", O_RDONLY);
    setpgid (0, 0);
    signal (SIGPIPE, SIG_DFL);
    signal (SIGINT, SIG_DFL);
    signal (SIGTERM, SIG_DFL);
    signal (SIGHUP, SIG_DFL);
    if (null >= 0)
      dup2 (null, 0);
    dup2 (p[1], 1);
    dup2 (p[1], 2);
    setenv ("SHADOWCOPY_PHASE", phase, 1);
    setenv ("SHADOWCOPY_WRITER", w->name, 1);
    setenv ("SHADOWCOPY_SET_ID", env->set_id ? env->set_id : "", 1);
    setenv ("SHADOWCOPY_SNAPSHOT", env->snapshot ? env->snapshot : "", 1);
    setenv ("SHADOWCOPY_SNAPSHOTS", env->snapshots ? env->snapshots : "", 1);
    setenv ("SHADOWCOPY_VOLUMES", env->volumes ? env->volumes : "", 1);
    /* A name without '/' is looked up in PATH; no shell, no arguments. */
    execlp (w->name, w->name, phase, (char *) NULL);
    fprintf (stderr, "cannot run %s: %s\n", w->name, strerror (errno));
    _exit (127);
  }
  setpgid (pid, pid);           /* both sides, whoever runs first */
  close (p[1]);

  /* thaw and abort run to the end (or their time limit) even when the
   * CLI was interrupted: they are what makes the interruption safe. */
  bool interruptible = strcmp (phase, "thaw") != 0 &&
                       strcmp (phase, "abort") != 0;
  uint64_t end = sc_cli_mono_ms () + timeout_ms;
  for (;;) {
    uint64_t now = sc_cli_mono_ms ();
    if (sc_interrupted && interruptible) {
      interrupted = true;
      break;
    }
    if (now >= end) {
      timed_out = true;
      break;
    }
    struct pollfd pf = { .fd = p[0], .events = POLLIN };
    int k = poll (&pf, 1, (int) (end - now));
    if (k < 0 && errno == EINTR)
      continue;
    if (k <= 0)
      continue;
    char buf[512];
    ssize_t n = read (p[0], buf, sizeof buf);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      break;                    /* every copy of the pipe is closed */
    /* Keep the last bytes: the end of the output says what went wrong. */
    /* (buf is smaller than out.) */
    if (outlen + n > sizeof out - 1) {
      size_t drop = outlen + n - (sizeof out - 1);
      memmove (out, out + drop, outlen - drop);
      outlen -= drop;
    }
    memcpy (out + outlen, buf, n);
    outlen += n;
  }
  close (p[0]);
  out[outlen] = '\0';
  /* The output is closed, but the writer may still run (it may have
   * closed or redirected its output): the limit holds until it exits.
   * WNOWAIT leaves it a zombie, so its process group id cannot be
   * reused before the group is killed below. */
  while (!timed_out && !interrupted) {
    siginfo_t si = { 0 };
    if (waitid (P_PID, pid, &si, WEXITED | WNOHANG | WNOWAIT) < 0 &&
        errno != EINTR)
      break;
    if (si.si_pid == pid)
      break;
    if (sc_interrupted && interruptible)
      interrupted = true;
    else if (sc_cli_mono_ms () >= end)
      timed_out = true;
    else
      usleep (10000);
  }
  /* Whatever is left of the phase goes with it (the writer's own
   * leftovers too), before the leader is reaped. */
  kill (-pid, SIGKILL);
  while (waitpid (pid, &status, 0) < 0 && errno == EINTR)
    ;

  char result[32];
  int r = 0;
  if (timed_out) {
    snprintf (result, sizeof result, "timed out after %" PRIu64 " ms",
              timeout_ms);
    r = -ETIMEDOUT;
  }
  else if (interrupted) {
    snprintf (result, sizeof result, "interrupted");
    r = -EINTR;
  }
  else if (WIFEXITED (status) && WEXITSTATUS (status) == 0)
    snprintf (result, sizeof result, "ok");
  else if (WIFEXITED (status)) {
    snprintf (result, sizeof result, "exit status %d", WEXITSTATUS (status));
    r = -ECHILD;
  }
  else {
    snprintf (result, sizeof result, "killed by signal %d",
              WTERMSIG (status));
    r = -ECHILD;
  }
  set_result (w, phase, result, out);
  return report (w, phase, r, result, msg, msglen);
}

/* ---- state -------------------------------------------------------------- */

/* STATE/writers: NAME TAB PHASE TAB RESULT TAB WHEN TAB OUTPUT, one line
 * per writer ever run. */
struct rec { char *line; char name[4096]; };

static size_t
load_state (const char *path, struct rec **out)
{
  FILE *f = fopen (path, "r");
  struct rec *v = NULL;
  size_t n = 0;
  char *line = NULL;
  size_t cap = 0;

  *out = NULL;
  if (!f)
    return 0;
  while (getline (&line, &cap, f) > 0) {
    line[strcspn (line, "\n")] = '\0';
    struct rec *nv = realloc (v, (n + 1) * sizeof *nv);
    if (!nv)
      break;
    v = nv;
    snprintf (v[n].name, sizeof v[n].name, "%.*s",
              (int) strcspn (line, "\t"), line);
    v[n].line = strdup (line);
    if (v[n].line)
      n++;
  }
  free (line);
  fclose (f);
  *out = v;
  return n;
}

int
sc_writers_save (const struct sc_writer *w, size_t n, char *err,
                 size_t errlen)
{
  const char *dir = sc_cli_state_dir (true, err, errlen);
  char path[4200], tmp[4210];
  struct rec *old;
  size_t nold;

  if (!dir)
    return -EIO;
  snprintf (path, sizeof path, "%s/writers", dir);
  snprintf (tmp, sizeof tmp, "%s.tmp", path);
  nold = load_state (path, &old);
  FILE *f = fopen (tmp, "w");
  if (!f) {
    int r = -errno;
    snprintf (err, errlen, "%s: %s", tmp, strerror (-r));
    for (size_t i = 0; i < nold; i++)
      free (old[i].line);
    free (old);
    return r;
  }
  for (size_t i = 0; i < nold; i++) {
    bool replaced = false;
    for (size_t j = 0; j < n; j++)
      if (w[j].phase[0] && strcmp (w[j].name, old[i].name) == 0)
        replaced = true;
    if (!replaced)
      fprintf (f, "%s\n", old[i].line);
    free (old[i].line);
  }
  free (old);
  for (size_t j = 0; j < n; j++) {
    char name[4096];
    if (!w[j].phase[0])
      continue;
    snprintf (name, sizeof name, "%s", w[j].name);
    sc_ctl_sanitize (name);
    fprintf (f, "%s\t%s\t%s\t%" PRIu64 "\t%s\n", name, w[j].phase,
             w[j].result, w[j].when, w[j].output);
  }
  if (fclose (f) != 0 || rename (tmp, path) < 0) {
    int r = -errno;
    snprintf (err, errlen, "%s: %s", path, strerror (-r));
    unlink (tmp);
    return r;
  }
  return 0;
}

/* What STATE/writers holds of writer `name`, for the table. */
struct shown {
  const char *phase, *result, *output;
  char when[32];
};

/* Splits the record of `name` in place (a second writer of the same
 * name finds it split, and shows "never run"). */
static void
shown_of (struct rec *st, size_t nst, const char *name, struct shown *sh)
{
  char *fields[5] = { NULL };

  for (size_t k = 0; k < nst; k++)
    if (strcmp (st[k].name, name) == 0) {
      char *p = st[k].line;
      for (int f = 0; f < 5; f++) {
        fields[f] = strsep (&p, "\t");
        if (!fields[f])
          break;
      }
    }
  sh->phase = fields[1] ? fields[1] : "";
  sh->result = fields[2] ? fields[2] : "never run";
  sh->output = fields[4] ? fields[4] : "";
  sh->when[0] = '\0';
  if (fields[3]) {
    uint64_t t = strtoull (fields[3], NULL, 10);
    sc_ctl_format_time (t * 1000000000u, sh->when, sizeof sh->when);
  }
}

int
sc_writers_print (const struct sc_writer *w, size_t n, bool json)
{
  char err[256], path[4200];
  const char *dir = sc_cli_state_dir (false, err, sizeof err);
  struct rec *st = NULL;
  size_t nst = 0;
  struct sc_json j;

  if (dir) {
    snprintf (path, sizeof path, "%s/writers", dir);
    nst = load_state (path, &st);
  }
  sc_json_init (&j, stdout);
  if (json)
    sc_json_begin_array (&j);
  else
    printf ("%-40s  %-16s  %-24s  %-20s  %s\n", "WRITER", "LAST PHASE",
            "RESULT", "WHEN", "OUTPUT");
  for (size_t i = 0; i < n; i++) {
    struct shown sh;

    shown_of (st, nst, w[i].name, &sh);
    if (json) {
      sc_json_begin_object (&j);
      sc_json_member_string (&j, "writer", w[i].name);
      sc_json_member_string (&j, "phase", sh.phase);
      sc_json_member_string (&j, "result", sh.result);
      sc_json_member_string (&j, "when", sh.when);
      sc_json_member_string (&j, "output", sh.output);
      sc_json_end_object (&j);
    }
    else
      printf ("%-40s  %-16s  %-24s  %-20s  %s\n", w[i].name,
              sh.phase[0] ? sh.phase : "-", sh.result,
              sh.when[0] ? sh.when : "-", sh.output);
  }
  if (json)
    sc_json_end_array (&j);
  for (size_t k = 0; k < nst; k++)
    free (st[k].line);
  free (st);
  return 0;
}
