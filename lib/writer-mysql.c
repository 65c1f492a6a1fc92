/* shadowcopy: the in-box writer mysql:DEFAULTS-FILE, MariaDB's or MySQL's
 * tables locked across the snapshot (writer-kinds.h).
 *
 * The guardian runs one `mysql --defaults-file=FILE` session (the file
 * says where the server is and who we are: [client] socket=, user=,
 * password=): FLUSH TABLES WITH READ LOCK at freeze, confirmed by a
 * marker query that only runs once the lock is granted, held across the
 * hold, and UNLOCK TABLES (confirmed the same way) at thaw.  The lock
 * lives as long as the session: if the guardian or the requester dies,
 * mysql's input closes (or it is killed with its parent), the session
 * ends and the server drops the lock.
 */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lib/guardian.h"
#include "lib/writer-kinds.h"

struct my {
  char *file;
  pid_t pid;                    /* the session, in the guardian, or 0 */
  int in, out;                  /* its stdin; its stdout and stderr */
  char buf[4096];               /* its output not yet read */
  size_t blen;
  char seen[256];               /* the last line that was no marker */
};

static void
my_free (void *state)
{
  struct my *m = state;

  if (m)
    free (m->file);
  free (m);
}

static int
my_parse (const char *arg, void **state, char *err, size_t len)
{
  struct my *m;

  if (!arg[0]) {
    snprintf (err, len, "no defaults file: mysql:DEFAULTS-FILE");
    return -EINVAL;
  }
  if (!(m = calloc (1, sizeof *m)) || !(m->file = strdup (arg))) {
    free (m);
    return -ENOMEM;
  }
  m->in = m->out = -1;
  *state = m;
  return 0;
}

static int
my_check (void *state, char *why, size_t len)
{
  struct my *m = state;

  if (access (m->file, R_OK) < 0) {
    int e = -errno;
    snprintf (why, len, "defaults file %s: %s", m->file, strerror (-e));
    return e;
  }
  return sc_writer_kind_program ("mysql", why, len);
}

/* End the session: its input closed, then killed if it lingers. */
static int
my_end (struct my *m, uint64_t deadline)
{
  int st = 0;

  if (m->in >= 0)
    close (m->in);
  if (m->out >= 0)
    close (m->out);
  m->in = m->out = -1;
  if (!m->pid)
    return 0;
  while (waitpid (m->pid, &st, WNOHANG) == 0) {
    if (sc_guardian_now_ms () >= deadline) {
      kill (m->pid, SIGKILL);
      waitpid (m->pid, &st, 0);
      break;
    }
    usleep (5000);
  }
  m->pid = 0;
  return st;
}

static int
my_start (struct my *m, char *why, size_t len)
{
  int in[2], out[2];
  char opt[4200];

  snprintf (opt, sizeof opt, "--defaults-file=%s", m->file);
  if (pipe2 (in, O_CLOEXEC) < 0)
    return -errno;
  if (pipe2 (out, O_CLOEXEC) < 0) {
    int e = -errno;
    close (in[0]);
    close (in[1]);
    return e;
  }
  m->pid = fork ();
  if (m->pid == 0) {
    /* With the guardian gone, the session goes (and the lock). */
    prctl (PR_SET_PDEATHSIG, SIGKILL);
    signal (SIGPIPE, SIG_DFL);
    dup2 (in[0], 0);
    dup2 (out[1], 1);
    dup2 (out[1], 2);
    execlp ("mysql", "mysql", opt, "--batch", "--skip-column-names",
            "--unbuffered", (char *) NULL);
    fprintf (stderr, "cannot run mysql: %s\n", strerror (errno));
    _exit (127);
  }
  close (in[0]);
  close (out[1]);
  if (m->pid < 0) {
    int e = -errno;
    m->pid = 0;
    close (in[1]);
    close (out[0]);
    snprintf (why, len, "cannot run mysql: %s", strerror (-e));
    return e;
  }
  m->in = in[1];
  m->out = out[0];
  m->blen = 0;
  m->seen[0] = '\0';
  return 0;
}

/* Send `sql` followed by SELECT 'marker', and read until the marker's
 * line: 0; -EIO when the session ended first (its last line in seen);
 * -ETIMEDOUT. */
static int
my_do (struct my *m, const char *sql, const char *tag, uint64_t deadline)
{
  char text[256], marker[64];
  uint32_t id = 0;

  if (getrandom (&id, sizeof id, 0) != sizeof id)
    id = (uint32_t) sc_guardian_now_ms ();
  snprintf (marker, sizeof marker, "shadowcopy-%s-%08" PRIx32, tag, id);
  int n = snprintf (text, sizeof text, "%s;\nSELECT '%s';\n", sql, marker);
  if (write (m->in, text, n) != n)
    return -EIO;                /* the session is gone */
  for (;;) {
    char *nl;
    while ((nl = memchr (m->buf, '\n', m->blen))) {
      *nl = '\0';
      bool hit = strcmp (m->buf, marker) == 0;
      if (!hit && m->buf[0])
        snprintf (m->seen, sizeof m->seen, "%.255s", m->buf);
      memmove (m->buf, nl + 1, m->blen - (nl + 1 - m->buf));
      m->blen -= nl + 1 - m->buf;
      if (hit)
        return 0;
    }
    if (m->blen == sizeof m->buf)
      m->blen = 0;              /* a line that long is no marker */
    uint64_t now = sc_guardian_now_ms ();
    if (now >= deadline)
      return -ETIMEDOUT;
    struct pollfd p = { .fd = m->out, .events = POLLIN };
    int k = poll (&p, 1, (int) (deadline - now));
    if (k <= 0)
      continue;
    ssize_t got = read (m->out, m->buf + m->blen, sizeof m->buf - m->blen);
    if (got < 0 && errno == EINTR)
      continue;
    if (got <= 0) {
      if (m->blen && m->blen < sizeof m->buf) {
        m->buf[m->blen] = '\0';
        snprintf (m->seen, sizeof m->seen, "%.255s", m->buf);
      }
      return -EIO;
    }
    m->blen += got;
  }
}

static void
say_failure (struct my *m, const char *what, int r, char *why, size_t len)
{
  if (r == -ETIMEDOUT)
    snprintf (why, len, "%s: no answer in time (a long query holding it "
              "up?)%s%s", what, m->seen[0] ? ": " : "", m->seen);
  else
    snprintf (why, len, "%s: %s", what,
              m->seen[0] ? m->seen : "the mysql session ended");
}

static int
my_freeze (void *state, uint64_t deadline, char *why, size_t len)
{
  struct my *m = state;
  int r = my_start (m, why, len);

  if (r < 0)
    return r;
  if ((r = my_do (m, "FLUSH TABLES WITH READ LOCK", "locked",
                  deadline)) < 0) {
    say_failure (m, "FLUSH TABLES WITH READ LOCK", r, why, len);
    my_end (m, sc_guardian_now_ms () + 1000);   /* the lock with it */
    return r;
  }
  snprintf (why, len, "tables locked");
  return 0;
}

static int
my_thaw (void *state, uint64_t deadline, char *why, size_t len)
{
  struct my *m = state;
  int r;

  if (!m->pid)
    return 0;                   /* no session: no lock */
  r = my_do (m, "UNLOCK TABLES", "unlocked", deadline);
  if (r < 0)
    say_failure (m, "UNLOCK TABLES", r, why, len);
  else
    snprintf (why, len, "tables unlocked");
  /* Ending the session releases the lock in any case. */
  my_end (m, deadline > sc_guardian_now_ms () ? deadline
          : sc_guardian_now_ms () + 1000);
  return r;
}

const struct sc_writer_kind_impl sc_writer_mysql = {
  .prefix = "mysql",
  .parse = my_parse,
  .free = my_free,
  .check = my_check,
  .freeze = my_freeze,
  .thaw = my_thaw,
};
