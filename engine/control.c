/* shadowcopy: the control server (see control.h and control-protocol.h).
 *
 * Notes on the design
 *
 * Who may talk to us: the socket is created mode 0600, and each peer's
 * credentials are checked too (the owner or root), so a permissive parent
 * directory or umask cannot open the door wider.
 *
 * Threads: one accept thread, and one thread per connection, at most
 * CONNS_MAX at once (more are refused with an ERR line, not queued, so a
 * flood of idle clients costs bounded memory).  Connection threads are
 * joinable and tracked in slots, so sc_control_stop can wake every one of
 * them (shutdown(2) on its socket) and wait until none touches the volume
 * any more; the caller may close the volume right after.  A finished slot
 * is joined when it is reused or at stop.
 *
 * A client that stops reading or writing is dropped after a timeout
 * (SO_RCVTIMEO / SO_SNDTIMEO), so it cannot pin a thread forever.  Requests
 * themselves are short: the longest, CREATE, holds writes for a bounded
 * time inside the engine.
 *
 * Sessions.  Each connection is a session (struct session,
 * control-verbs.h): the snapshot creation it has begun and the
 * auto-release snapshots it owns (control-create.c).  The connection
 * thread keeps the creation's deadline: while a creation is in progress
 * every read and every reply waits at most until the deadline (an
 * absolute one, polled before each read(2) and send(2), so trickling
 * bytes does not extend it), and when it passes the thread aborts the
 * creation by itself (sc_session_expire).  When the connection ends
 * (EOF, error, kill -9 of the client, server stop) the same abort runs,
 * then the session's auto-release snapshots are deleted.  A session that
 * owns auto-release snapshots has no idle timeout: it is the backup
 * session and may last for hours.
 *
 * Verbs.  One table below names every verb of control-protocol.h, its
 * arguments' count and its flags; the handlers live by topic in
 * control-snapshots.c, control-create.c, control-space.c,
 * control-scrub.c and control-diff.c.
 *
 * The offline CLI serves its own requests with sc_control_serve on a
 * volume opened on the diff area alone: the same loop, table and
 * handlers, so online and offline answers cannot disagree.
 */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "engine/clock.h"
#include "engine/control.h"
#include "engine/control-verbs.h"

#define CONNS_MAX 64
#define RECV_TIMEOUT_SECS 60    /* an idle client is dropped after this */
#define SEND_TIMEOUT_SECS 10    /* and one that does not read its reply */
/* Near the limit, idle connections are closed much sooner, so that one
 * client holding many idle ones cannot lock management out.  A client of
 * the server's own uid (peer_allowed) that keeps all of them busy still
 * can: it could as well stop the server, so nothing more is reserved. */
#define PRESSURE_CONNS (CONNS_MAX * 3 / 4)
#define PRESSURE_IDLE_SECS 2
#define ADMIT_WAIT_MS 500       /* for an evicted connection to end */

enum slot_state { SLOT_FREE, SLOT_RUNNING, SLOT_DONE };

struct slot {
  struct sc_control *c;
  enum slot_state state;
  int fd;
  pthread_t thread;
  uint64_t idle_since;          /* monotonic ns waiting for a request with
                                   nothing open (no creation, no auto-
                                   release snapshot); 0: not idle */
  bool evicted;                 /* closed for being idle near the limit */
};

struct sc_control {
  char *path;
  int listen_fd;
  int wake[2];                  /* stop writes here to end the accept loop */
  bool started;
  pthread_t acceptor;
  struct sc_volume *v;
  pthread_mutex_t lock;         /* protects slots[] but .thread and .c */
  pthread_cond_t slot_done;     /* a connection thread ended */
  struct slot slots[CONNS_MAX];
  char *listen;                 /* sc_control_set_listen */
};

/* ---- the verbs ------------------------------------------------------ */

static int
do_hello (struct session *ss, const struct sc_ctl_request *req, int fd)
{
  char protocol[16], minor[16];
  struct sc_ctl_field f[] = {
    { "protocol", protocol }, { "protocol-minor", minor },
    { "version", PACKAGE_VERSION },
  };
  int r;

  snprintf (protocol, sizeof protocol, "%d", SC_CTL_PROTOCOL);
  snprintf (minor, sizeof minor, "%d", SC_CTL_PROTOCOL_MINOR);
  r = sc_ctl_write_data (fd, "server", f, sizeof f / sizeof f[0]);
  return r < 0 ? r : sc_ctl_write_ok (fd);
}

/* Verb flags. */
#define LIVE 0x1        /* needs the live volume: refused offline (ENOTCONN),
                           where there is no origin to hold or count */

/* Every verb of control-protocol.h.  The arguments' count is checked
 * here; what they say, and the session's state (a creation begun, writes
 * held), are checked by the handler, in an order the protocol's answers
 * depend on (a bad option is reported before a missing hold). */
static const struct verb {
  const char *name;
  size_t min_args, max_args;
  unsigned flags;
  sc_verb_fn run;
  const char *usage;
} verbs[] = {
  { "HELLO", 0, 0, 0, do_hello, "HELLO" },
  /* control-space.c */
  { "INFO", 0, 0, 0, sc_verb_info, "INFO" },
  { "STATS", 0, 0, LIVE, sc_verb_stats, "STATS" },
  { "SCRUB", 0, 1, LIVE, sc_verb_scrub, "SCRUB [rate=BYTES]" },
  { "SCRUB-STATUS", 0, 0, LIVE, sc_verb_scrub_status, "SCRUB-STATUS" },
  /* control-revert.c */
  { "REVERT", 1, 6, LIVE, sc_verb_revert,
    "REVERT NAME [save=NAME|nosave] [rate=BYTES] [force] [dry-run] "
    "[paused]" },
  { "REVERT-STATUS", 0, 0, 0, sc_verb_revert_status, "REVERT-STATUS" },
  { "REVERT-RESUME", 0, 0, LIVE, sc_verb_revert_resume, "REVERT-RESUME" },
  { "REVERT-RATE", 1, 1, LIVE, sc_verb_revert_rate, "REVERT-RATE BYTES" },
  { "RESIZE", 1, 2, 0, sc_verb_resize,
    "RESIZE max=BYTES|unbounded [force=1]" },
  /* control-snapshots.c */
  { "LIST", 0, 0, 0, sc_verb_list, "LIST" },
  { "DELETE", 1, 2, 0, sc_verb_delete,
    "DELETE NAME [keep-checkpoint=1 | uuid=UUID | with-clones=1]" },
  { "DELETE-OLDEST", 0, 0, 0, sc_verb_delete_oldest, "DELETE-OLDEST" },
  { "DELETE-ALL", 0, 0, 0, sc_verb_delete_all, "DELETE-ALL" },
  { "DELETE-SET", 1, 1, 0, sc_verb_delete_set, "DELETE-SET UUID" },
  /* control-create.c */
  { "CREATE", 0, 4, LIVE, sc_verb_create,
    "CREATE [NAME] [set=UUID] [auto-release=1] [delete-oldest=1]" },
  { "BEGIN", 0, 1, LIVE, sc_verb_begin, "BEGIN [timeout=MS]" },
  { "HOLD", 0, 1, LIVE, sc_verb_hold, "HOLD [timeout=MS]" },
  { "COMMIT", 0, 5, LIVE, sc_verb_commit,
    "COMMIT [NAME] [set=UUID] [auto-release=1] [delete-oldest=1] "
    "[release=1]" },
  { "RELEASE", 0, 0, LIVE, sc_verb_release, "RELEASE" },
  { "ABORT", 0, 0, LIVE, sc_verb_abort, "ABORT" },
  { "CHECKPOINT", 1, 2, LIVE, sc_verb_checkpoint,
    "CHECKPOINT NAME [delete-oldest=1]" },
  /* control-clone.c: offline too */
  { "CLONE", 2, 2, 0, sc_verb_clone, "CLONE SNAPSHOT NAME" },
  /* control-diff.c: offline too, on the diff-area file */
  { "DIFF", 1, 4, 0, sc_verb_diff,
    "DIFF FROM [TO] [start=CHUNK] [max=N]" },
};

static int
handle_line (struct session *ss, char *line, int fd)
{
  struct sc_ctl_request req;
  const char *why;

  if (sc_ctl_parse_request (line, &req, &why) < 0)
    return sc_ctl_write_err (fd, EINVAL, "%s", why);
  for (size_t i = 0; i < sizeof verbs / sizeof verbs[0]; i++) {
    const struct verb *verb = &verbs[i];

    if (strcmp (req.verb, verb->name) != 0)
      continue;
    if (req.nargs < verb->min_args || req.nargs > verb->max_args)
      return sc_ctl_write_err (fd, EINVAL, "usage: %s", verb->usage);
    if ((verb->flags & LIVE) && sc_volume_offline (ss->v))
      return sc_ctl_write_err (fd, ENOTCONN, "%s needs a running server",
                               verb->name);
    return verb->run (ss, &req, fd);
  }
  /* The verb passed the parser, so it is safe to echo. */
  return sc_ctl_write_err (fd, EINVAL, "unknown request: %s", req.verb);
}

/* Outside a connection (tests, fuzzing): a session of one request. */
int
sc_control_handle_line (struct sc_volume *v, char *line, int fd)
{
  struct session ss = { .v = v };
  int r = handle_line (&ss, line, fd);

  sc_session_close (&ss);
  return r;
}

/* ---- connections ----------------------------------------------------- */

/* The socket timeouts for the session's next read: until the deadline
 * of a creation in progress, none for a session that owns auto-release
 * snapshots (the backup session), RECV_TIMEOUT_SECS otherwise.  Replies
 * never block past a deadline either. */
static void
session_timeouts (struct session *ss, struct sc_ctl_reader *rd, int fd)
{
  struct timeval rcv = { .tv_sec = RECV_TIMEOUT_SECS };
  struct timeval snd = { .tv_sec = SEND_TIMEOUT_SECS };

  if (ss->begun) {
    uint64_t now = sc_mono_ns ();
    uint64_t left = ss->deadline > now ? ss->deadline - now : 0;
    if (left < 1000000)
      left = 1000000;           /* 0 would mean no timeout */
    rcv.tv_sec = (time_t) (left / 1000000000u);
    rcv.tv_usec = (suseconds_t) (left % 1000000000u / 1000u);
    if (left < (uint64_t) SEND_TIMEOUT_SECS * 1000000000u)
      snd = rcv;
  }
  else if (ss->nowned)
    rcv.tv_sec = 0;
  if (ss->in_process && !ss->begun)
    rcv.tv_sec = snd.tv_sec = 0;
  setsockopt (fd, SOL_SOCKET, SO_RCVTIMEO, &rcv, sizeof rcv);
  setsockopt (fd, SOL_SOCKET, SO_SNDTIMEO, &snd, sizeof snd);
  /* The socket timeouts restart with every read(2) or partial send: a
   * peer trickling bytes would extend them without end.  The absolute
   * deadline bounds the whole line and the whole reply instead. */
  sc_ctl_reader_set_deadline (rd, ss->begun ? ss->deadline : 0);
  sc_ctl_set_send_deadline (ss->begun ? ss->deadline : 0);
}

/* A connection thread's slot: idle (ready to be closed near the limit)
 * while it waits for a request with nothing open, busy otherwise. */
static void
slot_set_idle (struct slot *s, const struct session *ss, bool idle)
{
  if (!s)
    return;
  idle = idle && !ss->begun && ss->nowned == 0;
  pthread_mutex_lock (&s->c->lock);
  if (!idle)
    s->idle_since = 0;
  else if (s->idle_since == 0)
    s->idle_since = sc_mono_ns ();
  pthread_mutex_unlock (&s->c->lock);
}

static bool
slot_evicted (struct slot *s)
{
  if (!s)
    return false;
  pthread_mutex_lock (&s->c->lock);
  bool e = s->evicted;
  pthread_mutex_unlock (&s->c->lock);
  return e;
}

static void serve (struct sc_volume *v, int fd, unsigned flags,
                   struct slot *slot);

void
sc_control_serve (struct sc_volume *v, int fd, unsigned flags)
{
  serve (v, fd, flags, NULL);
}

static void
serve (struct sc_volume *v, int fd, unsigned flags, struct slot *slot)
{
  struct sc_ctl_reader rd;
  struct session ss = {
    .v = v, .in_process = flags & SC_CONTROL_IN_PROCESS,
    .listen = slot ? slot->c->listen : NULL,
  };
  char *line;
  const char *why;
  int r;

  /* A bad line gets its ERR and the next one is read as usual: garbage
   * costs the client an answer, not the connection.  EOF, a timeout or a
   * failed write end it; the deadline of a creation does not (see the
   * notes at the top). */
  sc_ctl_reader_init (&rd, fd);
  for (;;) {
    if (ss.begun && sc_mono_ns () >= ss.deadline)
      sc_session_expire (&ss);
    session_timeouts (&ss, &rd, fd);
    slot_set_idle (slot, &ss, true);
    r = sc_ctl_read_line (&rd, &line, &why);
    slot_set_idle (slot, &ss, false);
    if (r == -EAGAIN && ss.begun)
      continue;                 /* the deadline: checked above; a partial
                                 * line stays buffered */
    /* Once evicted (idle_since was set until slot_set_idle cleared it
     * above, under the lock, so no eviction can come later), no line
     * read after it runs, even one that was already in the socket: its
     * session ends next, and a CREATE auto-release=1 or a HOLD answered
     * OK would be undone at once.  The request gets this as its answer. */
    if (r >= 0 && slot_evicted (slot)) {
      sc_ctl_write_err (fd, EBUSY, "too many connections: this idle one "
                        "was closed, as the server is near its limit of "
                        "%d", CONNS_MAX);
      break;
    }
    if (r == -EINVAL)
      r = sc_ctl_write_err (fd, EINVAL, "%s", why);
    else if (r > 0)
      r = handle_line (&ss, line, fd);
    else
      break;
    if (r < 0)
      break;
  }
  sc_session_close (&ss);
}

static void *
connection_thread (void *arg)
{
  struct slot *s = arg;
  struct sc_control *c = s->c;

  serve (c->v, s->fd, 0, s);
  pthread_mutex_lock (&c->lock);
  close (s->fd);
  s->fd = -1;
  s->state = SLOT_DONE;
  s->idle_since = 0;
  s->evicted = false;
  pthread_cond_broadcast (&c->slot_done);
  pthread_mutex_unlock (&c->lock);
  return NULL;
}

static void
set_timeouts (int fd)
{
  struct timeval rcv = { .tv_sec = RECV_TIMEOUT_SECS };
  struct timeval snd = { .tv_sec = SEND_TIMEOUT_SECS };

  setsockopt (fd, SOL_SOCKET, SO_RCVTIMEO, &rcv, sizeof rcv);
  setsockopt (fd, SOL_SOCKET, SO_SNDTIMEO, &snd, sizeof snd);
}

static bool
peer_allowed (int fd)
{
  struct ucred cred;
  socklen_t len = sizeof cred;

  if (getsockopt (fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
    return false;
  return cred.uid == 0 || cred.uid == geteuid ();
}

/* Connections open now.  With c->lock held. */
static size_t
running (const struct sc_control *c)
{
  size_t n = 0;
  for (size_t i = 0; i < CONNS_MAX; i++)
    n += c->slots[i].state == SLOT_RUNNING;
  return n;
}

/* Near the limit, close the connections idle for PRESSURE_IDLE_SECS:
 * shutting down their read side ends their thread's wait for a request
 * (a request already in the socket is answered with the eviction's
 * error, never run: serve).  Returns how many are on their way out.
 * With c->lock held. */
static size_t
sweep_idle (struct sc_control *c)
{
  uint64_t now = sc_mono_ns ();
  size_t leaving = 0;

  if (running (c) < PRESSURE_CONNS)
    return 0;
  for (size_t i = 0; i < CONNS_MAX; i++) {
    struct slot *s = &c->slots[i];
    if (s->state != SLOT_RUNNING)
      continue;
    if (!s->evicted && s->idle_since &&
        now - s->idle_since >= PRESSURE_IDLE_SECS * 1000000000ull) {
      s->evicted = true;
      shutdown (s->fd, SHUT_RD);
    }
    leaving += s->evicted;
  }
  return leaving;
}

/* A slot that is not running, waiting a little for an evicted
 * connection to end if need be; NULL if there is none.  With c->lock
 * held. */
static struct slot *
free_slot (struct sc_control *c)
{
  uint64_t until = sc_mono_ns () + ADMIT_WAIT_MS * 1000000ull;

  for (;;) {
    for (size_t i = 0; i < CONNS_MAX; i++)
      if (c->slots[i].state != SLOT_RUNNING)
        return &c->slots[i];
    uint64_t now = sc_mono_ns ();
    if (sweep_idle (c) == 0 || now >= until)
      return NULL;
    struct timespec ts = {
      .tv_sec = (time_t) (until / 1000000000u),
      .tv_nsec = (long) (until % 1000000000u),
    };
    pthread_cond_timedwait (&c->slot_done, &c->lock, &ts);
  }
}

/* Hand a new connection to a thread, or refuse it with a reason. */
static void
admit (struct sc_control *c, int fd)
{
  struct slot *s = NULL;
  int r;

  set_timeouts (fd);
  if (!peer_allowed (fd)) {
    sc_ctl_write_err (fd, EACCES, "permission denied");
    close (fd);
    return;
  }

  /* A DONE slot's thread has already let go of the lock, so joining it
   * here is immediate. */
  pthread_mutex_lock (&c->lock);
  sweep_idle (c);
  s = free_slot (c);
  if (s) {
    if (s->state == SLOT_DONE)
      pthread_join (s->thread, NULL);
    s->c = c;
    s->fd = fd;
    s->state = SLOT_RUNNING;
    s->idle_since = 0;
    s->evicted = false;
  }
  pthread_mutex_unlock (&c->lock);
  if (!s) {
    /* Said before the client speaks: its first request reads it. */
    sc_ctl_write_err (fd, EBUSY, "too many connections: all %d are busy "
                      "(idle ones are closed after %d s while the server "
                      "is this busy); try again", CONNS_MAX,
                      PRESSURE_IDLE_SECS);
    shutdown (fd, SHUT_WR);
    close (fd);
    return;
  }

  r = pthread_create (&s->thread, NULL, connection_thread, s);
  if (r != 0) {
    pthread_mutex_lock (&c->lock);
    s->state = SLOT_FREE;
    s->fd = -1;
    pthread_mutex_unlock (&c->lock);
    sc_ctl_write_err (fd, r, "cannot start a thread: %s", strerror (r));
    close (fd);
  }
}

static void *
accept_thread (void *arg)
{
  struct sc_control *c = arg;

  for (;;) {
    struct pollfd p[2] = {
      { .fd = c->listen_fd, .events = POLLIN },
      { .fd = c->wake[0], .events = POLLIN },
    };
    int fd;

    /* Near the limit, idle connections are swept once a second. */
    pthread_mutex_lock (&c->lock);
    bool pressed = sweep_idle (c) > 0 || running (c) >= PRESSURE_CONNS;
    pthread_mutex_unlock (&c->lock);
    if (poll (p, 2, pressed ? 1000 : -1) < 0) {
      if (errno == EINTR)
        continue;
      return NULL;
    }
    if (p[1].revents)
      return NULL;
    if (!(p[0].revents & POLLIN))
      continue;

    fd = accept4 (c->listen_fd, NULL, NULL, SOCK_CLOEXEC);
    if (fd < 0) {
      /* Out of fds or memory: back off rather than spin, but stay
       * responsive to stop. */
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
          errno == ENOMEM)
        poll (&p[1], 1, 100);
      continue;
    }
    admit (c, fd);
  }
}

/* ---- lifetime -------------------------------------------------------- */

/* Is someone answering at `path`?  1 yes, 0 no (stale), or -errno. */
static int
is_listening (const struct sockaddr_un *addr)
{
  int fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int r;

  if (fd < 0)
    return -errno;
  r = connect (fd, (const struct sockaddr *) addr, sizeof *addr);
  r = r == 0 ? 1 : errno == ECONNREFUSED ? 0 : -errno;
  close (fd);
  return r;
}

/* Make way for our socket: replace a stale one, but never touch a live
 * server's socket or anything that is not a socket. */
static int
clear_path (const struct sockaddr_un *addr, char *err, size_t errlen)
{
  const char *path = addr->sun_path;
  struct stat st;
  int r;

  if (lstat (path, &st) < 0) {
    if (errno == ENOENT)
      return 0;
    r = -errno;
    snprintf (err, errlen, "%s: %s", path, strerror (-r));
    return r;
  }
  if (!S_ISSOCK (st.st_mode)) {
    snprintf (err, errlen, "%s: exists and is not a socket", path);
    return -EEXIST;
  }
  r = is_listening (addr);
  if (r == 1) {
    snprintf (err, errlen, "%s: a server is already listening", path);
    return -EADDRINUSE;
  }
  if (r == -ENOENT)             /* removed since lstat */
    return 0;
  if (r < 0) {
    snprintf (err, errlen, "%s: %s", path, strerror (-r));
    return r;
  }
  if (unlink (path) < 0 && errno != ENOENT) {
    r = -errno;
    snprintf (err, errlen, "%s: cannot remove stale socket: %s",
              path, strerror (-r));
    return r;
  }
  return 0;
}

int
sc_control_bind (const char *path, struct sc_control **out,
                 char *err, size_t errlen)
{
  struct sockaddr_un addr = { .sun_family = AF_UNIX };
  struct sc_control *c;
  size_t i;
  int r;

  if (strlen (path) >= sizeof addr.sun_path) {
    snprintf (err, errlen, "%s: path too long for a Unix socket", path);
    return -ENAMETOOLONG;
  }
  strcpy (addr.sun_path, path);

  c = calloc (1, sizeof *c);
  if (!c || !(c->path = strdup (path))) {
    free (c);
    snprintf (err, errlen, "%s: %s", path, strerror (ENOMEM));
    return -ENOMEM;
  }
  c->wake[0] = c->wake[1] = -1;
  pthread_mutex_init (&c->lock, NULL);
  pthread_condattr_t ca;
  pthread_condattr_init (&ca);
  pthread_condattr_setclock (&ca, CLOCK_MONOTONIC);
  pthread_cond_init (&c->slot_done, &ca);
  pthread_condattr_destroy (&ca);
  for (i = 0; i < CONNS_MAX; i++)
    c->slots[i].fd = -1;

  r = clear_path (&addr, err, errlen);
  if (r < 0)
    goto fail;

  c->listen_fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (c->listen_fd < 0) {
    r = -errno;
    snprintf (err, errlen, "%s: socket: %s", path, strerror (-r));
    goto fail;
  }
  /* Linux creates the socket file with the socket inode's mode (less the
   * umask): setting it first means the path never exists wider than 0600,
   * and unlike umask(2) it does not race with other threads. */
  if (fchmod (c->listen_fd, 0600) < 0 ||
      bind (c->listen_fd, (struct sockaddr *) &addr, sizeof addr) < 0) {
    r = -errno;
    snprintf (err, errlen, "%s: %s", path, strerror (-r));
    goto fail_close;
  }
  if (listen (c->listen_fd, 16) < 0 || pipe2 (c->wake, O_CLOEXEC) < 0) {
    r = -errno;
    snprintf (err, errlen, "%s: %s", path, strerror (-r));
    unlink (path);
    goto fail_close;
  }
  *out = c;
  return 0;

 fail_close:
  close (c->listen_fd);
 fail:
  pthread_mutex_destroy (&c->lock);
  pthread_cond_destroy (&c->slot_done);
  free (c->path);
  free (c->listen);
  free (c);
  return r;
}

int
sc_control_start (struct sc_control *c, struct sc_volume *v)
{
  sigset_t all, old;
  int r;

  c->v = v;
  /* Signals are nbdkit's business: our threads (and the connection
   * threads, which inherit the mask) never take them. */
  sigfillset (&all);
  pthread_sigmask (SIG_BLOCK, &all, &old);
  r = pthread_create (&c->acceptor, NULL, accept_thread, c);
  pthread_sigmask (SIG_SETMASK, &old, NULL);
  if (r != 0)
    return -r;
  c->started = true;
  return 0;
}

int
sc_control_set_listen (struct sc_control *c, const char *listen)
{
  char *copy = listen ? strdup (listen) : NULL;

  if (listen && !copy)
    return -ENOMEM;
  free (c->listen);
  c->listen = copy;
  return 0;
}

void
sc_control_stop (struct sc_control *c)
{
  size_t i;

  if (!c)
    return;
  if (c->started) {
    while (write (c->wake[1], "", 1) < 0 && errno == EINTR)
      ;
    pthread_join (c->acceptor, NULL);

    /* No new connections now.  Wake the ones blocked in read; a request
     * being answered finishes first, then its thread sees EOF. */
    pthread_mutex_lock (&c->lock);
    for (i = 0; i < CONNS_MAX; i++)
      if (c->slots[i].state == SLOT_RUNNING)
        shutdown (c->slots[i].fd, SHUT_RDWR);
    pthread_mutex_unlock (&c->lock);
    for (i = 0; i < CONNS_MAX; i++)
      if (c->slots[i].state != SLOT_FREE)
        pthread_join (c->slots[i].thread, NULL);
  }
  close (c->listen_fd);
  close (c->wake[0]);
  close (c->wake[1]);
  unlink (c->path);
  pthread_mutex_destroy (&c->lock);
  pthread_cond_destroy (&c->slot_done);
  free (c->path);
  free (c->listen);
  free (c);
}
