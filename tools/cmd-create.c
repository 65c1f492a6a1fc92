/* shadowcopy create: the VSS creation sequence, as the requester.
 *
 *   shadowcopy [-c SOCK] create [-c SOCK]... [--writer CMD]...
 *       [--writers-dir DIR] [--no-writers] [--freeze-timeout S]
 *       [--hold-timeout S] [--retry N] [--retry-delay S] [--wait]
 *       [--auto-release] [--delete-oldest] [--run COMMAND] [NAME]
 *
 * Notes on the design
 *
 * One attempt, in VSS order:
 *   identify every writer (one that fails is left out, with a warning);
 *   BEGIN on every volume (the creation slot: a busy volume fails the
 *   attempt, or with --wait is asked again every 200 ms);
 *   prepare, then freeze every writer (the freeze window starts);
 *   HOLD every volume, then COMMIT on every volume (all held before any
 *   commits, so the set is one point in time), each COMMIT releasing its
 *   volume (release=1);
 *   thaw every writer, post-snapshot.
 * Any failure from prepare on sends abort, then thaw, to every writer,
 * and ABORTs (or, once released, DELETEs) the snapshot on every volume:
 * no volume keeps a snapshot of a failed attempt.  --retry N makes up to
 * N more attempts, --retry-delay apart.
 *
 * The servers enforce the hold (hold-timeout) and the creation (BEGIN's
 * timeout) themselves, so a CLI that dies or hangs cannot hold writes
 * longer; the fsfreeze guardian thaws by itself at the end of the freeze
 * window (see writers.h).
 *
 * Without writers and with one volume, the snapshot is taken with the
 * one-shot CREATE: the hold is then not stretched by round trips.
 *
 * Auto-release snapshots live as long as the control connections that
 * made them: with --run the command runs (with SHADOWCOPY_* in its
 * environment) and the snapshots go when it exits; without, the CLI stays
 * in the foreground until SIGINT, SIGTERM or SIGHUP.
 */
#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "engine/control-protocol.h"
#include "tools/cli.h"
#include "tools/client.h"
#include "tools/commands.h"
#include "tools/writers.h"

#define VOLUMES_MAX 64
#define FREEZE_MS_MAX 1200000

struct vol {
  const char *socket;
  struct sc_client *c;
  bool begun, committed, released;
  struct sc_client_snapshot snap;
};

struct create {
  struct vol vols[VOLUMES_MAX];
  size_t nvols;
  struct sc_writer *writers;
  size_t nwriters;
  uint64_t freeze_ms, hold_ms;
  uint64_t phase_end;           /* monotonic ms bounding a whole phase, 0 */
  bool wait, auto_release, delete_oldest;
  char name[SC_NAME_MAX + 1];
  bool have_name;
  char set_id[SC_CTL_UUID_LEN];
  char *snapshots, *volumes;    /* the SHADOWCOPY_* lists */
};

static void
on_signal (int sig)
{
  (void) sig;
  sc_interrupted = 1;
}

static int
parse_seconds (const char *opt, const char *s, uint64_t *ms)
{
  char *end;
  errno = 0;
  double d = strtod (s, &end);
  if (errno || end == s || *end || !(d > 0) || d > 86400) {
    sc_cli_error ("create: %s wants a number of seconds > 0: %s", opt, s);
    return -1;
  }
  *ms = (uint64_t) (d * 1000 + 0.5);
  if (*ms == 0)
    *ms = 1;
  return 0;
}

static struct sc_writer_env
env_of (const struct create *cr)
{
  return (struct sc_writer_env) {
    .set_id = cr->set_id, .snapshot = cr->name,
    .snapshots = cr->snapshots, .volumes = cr->volumes,
  };
}

/* Run `phase` on every writer not left out.  Stops at the first failure
 * unless `all` (abort, thaw: everyone must hear them). */
static int
writers_phase (struct create *cr, const char *phase, uint64_t timeout_ms,
               bool all, char *msg, size_t msglen)
{
  struct sc_writer_env env = env_of (cr);
  int first = 0;

  for (size_t i = 0; i < cr->nwriters; i++) {
    char m[2048];
    uint64_t limit = timeout_ms, now = sc_cli_mono_ms ();
    if (cr->writers[i].excluded)
      continue;
    /* prepare and freeze are bounded as a whole (the freeze window):
     * each writer gets what is left of it, and none once it is over. */
    if (cr->phase_end && now >= cr->phase_end && !all) {
      snprintf (msg, msglen, "writer %s: %s: the %s of %" PRIu64 " ms "
                "ended before it ran", cr->writers[i].name, phase,
                strcmp (phase, "freeze") == 0 ? "freeze window"
                : "time for prepare", cr->freeze_ms);
      return -ETIMEDOUT;
    }
    if (cr->phase_end && cr->phase_end - now < limit)
      limit = cr->phase_end - now;
    int r = sc_writer_run (&cr->writers[i], phase, &env, limit,
                           limit, m, sizeof m);
    if (r == -ETIMEDOUT && limit < timeout_ms)
      snprintf (m, sizeof m, "writer %s: %s: timed out: the %s of %" PRIu64
                " ms ended%s%s", cr->writers[i].name, phase,
                strcmp (phase, "freeze") == 0 ? "freeze window"
                : "time for prepare", cr->freeze_ms,
                cr->writers[i].output[0] ? ": " : "",
                cr->writers[i].output);
    if (r < 0 && !first) {
      first = r;
      snprintf (msg, msglen, "%s", m);
    }
    else if (r < 0)
      sc_cli_error ("%s", m);
    if (r < 0 && !all)
      return r;
  }
  return first;
}

static int
simple (struct vol *v, const char *verb, const char *const *args,
        size_t nargs, char *err, size_t errlen)
{
  return sc_client_request (v->c, verb, args, nargs, NULL, NULL, err,
                            errlen);
}

static int
on_snapshot (const struct sc_ctl_line *line, void *opaque)
{
  if (strcmp (line->kind, "snapshot") != 0)
    return 0;
  return sc_client_snapshot_from_line (line, opaque);
}

/* Undo on every volume: ABORT where the creation is open, DELETE where a
 * snapshot was already released. */
static void
undo_volumes (struct create *cr)
{
  for (size_t i = 0; i < cr->nvols; i++) {
    struct vol *v = &cr->vols[i];
    char err[1024];
    bool undone = true;
    if (v->begun && !v->released) {
      if (simple (v, "ABORT", NULL, 0, err, sizeof err) < 0) {
        sc_cli_error ("%s: abort: %s", v->socket, err);
        undone = false;
      }
    }
    else if (v->released && v->committed) {
      const char *a = v->snap.name;
      if (simple (v, "DELETE", &a, 1, err, sizeof err) < 0) {
        sc_cli_error ("%s: deleting %s: %s", v->socket, a, err);
        undone = false;
      }
    }
    /* A server that died after COMMIT keeps the snapshot (see
     * docs/design.md): say how to remove it once it is back. */
    if (!undone && v->committed)
      sc_cli_error ("%s: snapshot %s of set %s may remain: remove it with "
                    "shadowcopy -c %s delete --set %s", v->socket,
                    v->snap.name, cr->set_id, v->socket, cr->set_id);
    v->begun = v->committed = v->released = false;
  }
}

static void
close_volumes (struct create *cr)
{
  for (size_t i = 0; i < cr->nvols; i++) {
    char err[1024];
    if (cr->vols[i].c && sc_client_close (cr->vols[i].c, err, sizeof err) < 0)
      sc_cli_error ("%s", err);
    cr->vols[i].c = NULL;
  }
}

/* The default name, the UTC time, when none was given (set_env: the
 * SHADOWCOPY_* lists follow cr->name). */
static void
set_env (struct create *cr)
{
  size_t lv = 0, ls = 0;

  for (size_t k = 0; k < cr->nvols; k++) {
    lv += sprintf (cr->volumes + lv, "%s%s", k ? " " : "",
                   cr->vols[k].socket);
    ls += sprintf (cr->snapshots + ls, "%s%s=%s", k ? " " : "",
                   cr->vols[k].socket, cr->name);
  }
}

static void
default_name (struct create *cr)
{
  if (!cr->have_name) {
    struct timespec ts;
    clock_gettime (CLOCK_REALTIME, &ts);
    sc_ctl_format_time ((uint64_t) ts.tv_sec * 1000000000u + ts.tv_nsec,
                        cr->name, sizeof cr->name);
  }
  set_env (cr);
}

static bool
is_busy (int r)
{
  return r == -EBUSY;
}

/* One attempt.  0, or -1 with the message already printed; *retryable
 * says whether another attempt may do better. */
static int
attempt (struct create *cr, bool *retryable)
{
  char msg[4096], err[2048], arg_name[SC_NAME_MAX + 8];
  char arg_set[SC_CTL_UUID_LEN + 8], arg_to[40];
  bool writers = false, frozen = false;
  int r;

  *retryable = false;
  for (size_t i = 0; i < cr->nwriters; i++)
    if (!cr->writers[i].excluded)
      writers = true;

  for (size_t i = 0; i < cr->nvols; i++) {
    r = sc_client_connect (cr->vols[i].socket, &cr->vols[i].c, err,
                           sizeof err);
    if (r < 0) {
      sc_cli_error ("%s", err);
      close_volumes (cr);
      return -1;
    }
  }
  snprintf (arg_name, sizeof arg_name, "%s", cr->name);
  snprintf (arg_set, sizeof arg_set, "set=%s", cr->set_id);
  const char *commit_args[5] = { arg_name, arg_set };
  size_t ncommit = 2;
  if (cr->auto_release)
    commit_args[ncommit++] = "auto-release=1";
  if (cr->delete_oldest)
    commit_args[ncommit++] = "delete-oldest=1";

  if (!writers && cr->nvols == 1) {
    /* Without a NAME the server names it, so that concurrent creations
     * never pick the same time. */
    struct vol *v = &cr->vols[0];
    const char *const *cargs = cr->have_name ? commit_args : commit_args + 1;
    size_t nc = cr->have_name ? ncommit : ncommit - 1;
    for (;;) {
      r = sc_client_request (v->c, "CREATE", cargs, nc,
                             on_snapshot, &v->snap, err, sizeof err);
      if (!(is_busy (r) && cr->wait && !sc_interrupted))
        break;
      usleep (200000);
    }
    if (r < 0) {
      sc_cli_error ("%s: %s", v->socket, err);
      *retryable = is_busy (r) || r == -ETIMEDOUT;
      close_volumes (cr);
      return -1;
    }
    v->committed = v->released = true;
    snprintf (cr->name, sizeof cr->name, "%s", v->snap.name);
    set_env (cr);
    return 0;
  }
  /* Each COMMIT also releases its volume: every volume is held before
   * the first COMMIT, so the point in time is the same on all of them,
   * and the writes wait one round trip less. */
  commit_args[ncommit++] = "release=1";

  /* The creation slot on every volume, before any writer is disturbed.
   * It must outlast prepare and the freeze window (each bounded by
   * freeze_ms as a whole, and freeze_ms <= FREEZE_MS_MAX keeps this
   * under the server's 1 h limit); HOLD then sets its own deadline. */
  snprintf (arg_to, sizeof arg_to, "timeout=%" PRIu64,
            cr->freeze_ms * 2 + 30000);
  const char *to = arg_to;
  for (size_t i = 0; i < cr->nvols; i++) {
    struct vol *v = &cr->vols[i];
    for (;;) {
      r = simple (v, "BEGIN", &to, 1, err, sizeof err);
      if (!(is_busy (r) && cr->wait && !sc_interrupted))
        break;
      /* Give back what we hold while we wait, or two waiters could
       * deadlock each other. */
      undo_volumes (cr);
      i = 0;
      v = &cr->vols[0];
      usleep (200000);
    }
    if (r < 0) {
      sc_cli_error ("%s: %s", v->socket, err);
      *retryable = is_busy (r);
      undo_volumes (cr);
      close_volumes (cr);
      return -1;
    }
    v->begun = true;
  }
  /* Every volume's creation slot is ours: a default name taken now cannot
   * race with another creation of these volumes. */
  default_name (cr);
  snprintf (arg_name, sizeof arg_name, "%s", cr->name);

  cr->phase_end = sc_cli_mono_ms () + cr->freeze_ms;
  r = writers_phase (cr, "prepare", cr->freeze_ms, false, msg, sizeof msg);
  cr->phase_end = 0;
  if (r < 0)
    goto fail_writers;
  frozen = true;
  uint64_t t_freeze = sc_cli_mono_ms ();
  uint64_t window_end = t_freeze + cr->freeze_ms;
  cr->phase_end = window_end;
  r = writers_phase (cr, "freeze", cr->freeze_ms, false, msg, sizeof msg);
  cr->phase_end = 0;
  if (r < 0)
    goto fail_writers;

  /* Hold every volume, then commit on every volume. */
  snprintf (arg_to, sizeof arg_to, "timeout=%" PRIu64, cr->hold_ms);
  for (size_t i = 0; i < cr->nvols && r == 0; i++) {
    r = simple (&cr->vols[i], "HOLD", &to, 1, err, sizeof err);
    if (r < 0)
      snprintf (msg, sizeof msg, "%s: %s", cr->vols[i].socket, err);
  }
  /* Every hold must start inside the freeze window: after it the
   * writers (fsfreeze's guardian) may have thawed, and the point in time
   * is no longer application-consistent. */
  if (r == 0 && writers && sc_cli_mono_ms () >= window_end) {
    snprintf (msg, sizeof msg, "the freeze window of %" PRIu64 " ms "
              "ended before every volume was held: no snapshot taken "
              "(raise --freeze-timeout)", cr->freeze_ms);
    r = -ETIMEDOUT;
  }
  for (size_t i = 0; i < cr->nvols && r == 0; i++) {
    struct vol *v = &cr->vols[i];
    r = sc_client_request (v->c, "COMMIT", commit_args, ncommit,
                           on_snapshot, &v->snap, err, sizeof err);
    /* A default name taken in the same millisecond as the last snapshot:
     * the next free NAME+k, as the server itself does. */
    for (unsigned k = 2; r == -EEXIST && i == 0 && !cr->have_name && k < 100;
         k++) {
      snprintf (arg_name, sizeof arg_name, "%s+%u", cr->name, k);
      r = sc_client_request (v->c, "COMMIT", commit_args, ncommit,
                             on_snapshot, &v->snap, err, sizeof err);
    }
    if (r == 0 && i == 0) {
      snprintf (cr->name, sizeof cr->name, "%s", v->snap.name);
      snprintf (arg_name, sizeof arg_name, "%s", cr->name);
      set_env (cr);
    }
    if (r < 0)
      snprintf (msg, sizeof msg, "%s: %s", v->socket, err);
    else
      v->committed = v->released = true;  /* COMMIT release=1 */
  }
  for (size_t i = 0; i < cr->nvols && r == 0; i++) {
    struct vol *v = &cr->vols[i];
    if (v->released)
      continue;
    r = simple (v, "RELEASE", NULL, 0, err, sizeof err);
    if (r < 0)
      snprintf (msg, sizeof msg, "%s: %s", v->socket, err);
    else
      v->released = true;
  }
  if (r < 0) {
    /* EEXIST of a default name on a later volume of a set: the next
     * attempt takes a new name. */
    *retryable = r == -ETIMEDOUT || is_busy (r) ||
                 (r == -EEXIST && !cr->have_name);
    goto fail_volumes;
  }

  r = writers_phase (cr, "thaw", cr->freeze_ms, true, msg, sizeof msg);
  frozen = false;
  if (getenv ("SHADOWCOPY_REPORT_FREEZE"))
    fprintf (stderr, "shadowcopy: freeze to thaw: %" PRIu64 " ms\n",
             sc_cli_mono_ms () - t_freeze);
  if (r < 0) {
    /* A writer that could not thaw may have seen a bad point in time. */
    sc_cli_error ("%s", msg);
    writers_phase (cr, "abort", cr->freeze_ms, true, msg, sizeof msg);
    undo_volumes (cr);
    close_volumes (cr);
    return -1;
  }
  r = writers_phase (cr, "post-snapshot", cr->freeze_ms, true, msg,
                     sizeof msg);
  if (r < 0)
    sc_cli_error ("warning: %s", msg);
  return 0;

 fail_writers:
  *retryable = true;
 fail_volumes:
  if (sc_interrupted)
    *retryable = false;
  sc_cli_error ("%s", msg);
  undo_volumes (cr);
  if (writers || frozen) {
    writers_phase (cr, "abort", cr->freeze_ms, true, msg, sizeof msg);
    writers_phase (cr, "thaw", cr->freeze_ms, true, msg, sizeof msg);
  }
  close_volumes (cr);
  return -1;
}

static int
run_command (struct create *cr, const char *cmd)
{
  pid_t pid = fork ();
  int status;

  if (pid < 0) {
    sc_cli_error ("--run: fork: %s", strerror (errno));
    return -1;
  }
  if (pid == 0) {
    signal (SIGINT, SIG_DFL);
    signal (SIGTERM, SIG_DFL);
    signal (SIGHUP, SIG_DFL);
    signal (SIGPIPE, SIG_DFL);
    setenv ("SHADOWCOPY_SET_ID", cr->set_id, 1);
    setenv ("SHADOWCOPY_SNAPSHOT", cr->name, 1);
    setenv ("SHADOWCOPY_SNAPSHOTS", cr->snapshots, 1);
    setenv ("SHADOWCOPY_VOLUMES", cr->volumes, 1);
    execl ("/bin/sh", "sh", "-c", cmd, (char *) NULL);
    _exit (127);
  }
  while (waitpid (pid, &status, 0) < 0)
    if (errno != EINTR)
      return -1;
  if (WIFEXITED (status))
    return WEXITSTATUS (status);
  return 128 + WTERMSIG (status);
}

int
sc_cmd_create (const struct sc_cli_target *target, int argc, char **argv)
{
  char buf[4096];
  const char *global_socket = sc_cli_target_socket (target, buf, sizeof buf);
  struct create cr = { .freeze_ms = 60000, .hold_ms = 10000 };
  char **wcmds = NULL;
  size_t nw = 0;
  const char *wdir = NULL, *run = NULL;
  bool no_writers = false;
  uint64_t retries = 0, retry_delay_ms = 5000;
  int status = EXIT_FAILURE, i;
  char err[2048];

  if (global_socket)
    cr.vols[cr.nvols++].socket = global_socket;
  wcmds = calloc (argc + 1, sizeof *wcmds);
  if (!wcmds)
    return EXIT_FAILURE;
  for (i = 0; i < argc; i++) {
    const char *a = argv[i];
    const char *val = i + 1 < argc ? argv[i + 1] : NULL;
#define NEEDS_ARG() do { if (!val) { free (wcmds); \
      return sc_cli_usage_error ("create: %s needs an argument", a); } \
      i++; } while (0)
    if (strcmp (a, "--") == 0) {
      i++;
      break;
    }
    else if (strcmp (a, "-c") == 0 || strcmp (a, "--control") == 0) {
      NEEDS_ARG ();
      if (cr.nvols == VOLUMES_MAX) {
        free (wcmds);
        return sc_cli_usage_error ("create: at most %d volumes",
                                   VOLUMES_MAX);
      }
      cr.vols[cr.nvols++].socket = val;
    }
    else if (strcmp (a, "--writer") == 0) {
      NEEDS_ARG ();
      wcmds[nw++] = (char *) val;
    }
    else if (strcmp (a, "--writers-dir") == 0) {
      NEEDS_ARG ();
      wdir = val;
    }
    else if (strcmp (a, "--no-writers") == 0)
      no_writers = true;
    else if (strcmp (a, "--freeze-timeout") == 0) {
      NEEDS_ARG ();
      if (parse_seconds (a, val, &cr.freeze_ms) < 0)
        goto usage;
      /* The creation slot (BEGIN) must cover prepare and the window,
       * each at most freeze_ms, and the server keeps it at most 1 h. */
      if (cr.freeze_ms > FREEZE_MS_MAX) {
        sc_cli_error ("create: --freeze-timeout is at most %d s",
                      FREEZE_MS_MAX / 1000);
        goto usage;
      }
    }
    else if (strcmp (a, "--hold-timeout") == 0) {
      NEEDS_ARG ();
      if (parse_seconds (a, val, &cr.hold_ms) < 0)
        goto usage;
      if (cr.hold_ms > 60000) {
        sc_cli_error ("create: --hold-timeout is at most 60 s");
        goto usage;
      }
    }
    else if (strcmp (a, "--retry") == 0) {
      NEEDS_ARG ();
      if (sc_ctl_parse_u64 (val, &retries) < 0 || retries > 100) {
        sc_cli_error ("create: --retry wants a count 0..100: %s", val);
        goto usage;
      }
    }
    else if (strcmp (a, "--retry-delay") == 0) {
      NEEDS_ARG ();
      if (parse_seconds (a, val, &retry_delay_ms) < 0)
        goto usage;
    }
    else if (strcmp (a, "--wait") == 0)
      cr.wait = true;
    else if (strcmp (a, "--auto-release") == 0)
      cr.auto_release = true;
    else if (strcmp (a, "--delete-oldest") == 0)
      cr.delete_oldest = true;
    else if (strcmp (a, "--run") == 0) {
      NEEDS_ARG ();
      run = val;
    }
    else if (a[0] == '-') {
      free (wcmds);
      return sc_cli_usage_error ("create: unknown option '%s'", a);
    }
    else
      break;
#undef NEEDS_ARG
  }
  if (argc - i > 1) {
    free (wcmds);
    return sc_cli_usage_error ("create takes at most one NAME");
  }
  if (cr.nvols == 0) {
    free (wcmds);
    return sc_cli_usage_error ("create: say which volume: -c SOCKET");
  }
  if (no_writers && (nw || wdir)) {
    free (wcmds);
    return sc_cli_usage_error ("create: --no-writers with --writer or "
                               "--writers-dir");
  }
  if (argc - i == 1) {
    if (!sc_cli_name_ok (argv[i])) {
      free (wcmds);
      return EXIT_FAILURE;
    }
    snprintf (cr.name, sizeof cr.name, "%s", argv[i]);
    cr.have_name = true;
  }

  if (!no_writers &&
      sc_writers_collect (wcmds, nw, wdir ? wdir : SC_WRITERS_DIR_DEFAULT,
                          !wdir, &cr.writers, &cr.nwriters, err,
                          sizeof err) < 0) {
    sc_cli_error ("%s", err);
    free (wcmds);
    return EXIT_FAILURE;
  }
  free (wcmds);

  struct sigaction sa = { .sa_handler = on_signal };
  sigemptyset (&sa.sa_mask);
  sigaction (SIGINT, &sa, NULL);
  sigaction (SIGTERM, &sa, NULL);
  sigaction (SIGHUP, &sa, NULL);

  /* The set id, and one name for every volume (the UTC time unless
   * given), so writers know both before the snapshot exists. */
  uint8_t id[16];
  if (getrandom (id, sizeof id, 0) != sizeof id) {
    sc_cli_error ("cannot make a set id: %s", strerror (errno));
    goto out;
  }
  id[6] = (id[6] & 0x0f) | 0x40;  /* a version 4 UUID */
  id[8] = (id[8] & 0x3f) | 0x80;
  sc_ctl_format_uuid (id, cr.set_id);

  size_t lv = 0;
  for (size_t k = 0; k < cr.nvols; k++)
    lv += strlen (cr.vols[k].socket) + 1;
  cr.volumes = calloc (1, lv + 1);
  cr.snapshots = calloc (1, lv + cr.nvols * (SC_NAME_MAX + 2) + 1);
  if (!cr.volumes || !cr.snapshots)
    goto out;

  /* identify: a writer that fails is left out. */
  {
    char msg[2048];
    struct sc_writer_env env = env_of (&cr);
    for (size_t k = 0; k < cr.nwriters; k++)
      if (sc_writer_run (&cr.writers[k], "identify", &env, cr.freeze_ms,
                         cr.freeze_ms, msg, sizeof msg) < 0) {
        cr.writers[k].excluded = true;
        sc_cli_error ("warning: left out: %s", msg);
      }
  }

  for (uint64_t n = 0; ; n++) {
    bool retryable;
    default_name (&cr);
    if (attempt (&cr, &retryable) == 0) {
      status = EXIT_SUCCESS;
      break;
    }
    if (!retryable || n >= retries || sc_interrupted)
      break;
    sc_cli_error ("retrying in %.1f s (attempt %" PRIu64 " of %" PRIu64 ")",
                  retry_delay_ms / 1000.0, n + 2, retries + 1);
    for (uint64_t t = 0; t < retry_delay_ms && !sc_interrupted; t += 100)
      usleep (100000);
  }

  if (cr.nwriters && sc_writers_save (cr.writers, cr.nwriters, err,
                                      sizeof err) < 0)
    sc_cli_error ("warning: cannot record the writers' results: %s", err);
  if (status != EXIT_SUCCESS)
    goto out;

  printf ("%s\n", cr.vols[0].snap.name);
  if (cr.nvols > 1)
    printf ("set %s\n", cr.set_id);
  fflush (stdout);

  if (run) {
    int rc = run_command (&cr, run);
    if (rc == 0) {
      char msg[2048];
      if (writers_phase (&cr, "backup-complete", cr.freeze_ms, true, msg,
                         sizeof msg) < 0)
        sc_cli_error ("warning: %s", msg);
      if (cr.nwriters)
        sc_writers_save (cr.writers, cr.nwriters, err, sizeof err);
    }
    else {
      sc_cli_error ("--run: the command exited with status %d", rc);
      status = rc > 0 && rc < 256 ? rc : EXIT_FAILURE;
    }
  }
  else if (cr.auto_release) {
    sc_cli_error ("auto-release snapshot %s: kept until this process ends "
                  "(SIGINT, SIGTERM or SIGHUP)", cr.vols[0].snap.name);
    /* Until a signal, or until a server goes away (its snapshot went
     * with the session). */
    struct pollfd p[VOLUMES_MAX];
    for (size_t k = 0; k < cr.nvols; k++)
      p[k] = (struct pollfd) { .fd = sc_client_fd (cr.vols[k].c),
                               .events = POLLIN };
    while (!sc_interrupted) {
      int k = poll (p, cr.nvols, -1);
      if (k < 0 && errno != EINTR)
        break;
      if (k > 0) {
        for (size_t j = 0; j < cr.nvols; j++)
          if (p[j].revents)
            sc_cli_error ("%s: the server closed the connection: the "
                          "auto-release snapshot is gone", cr.vols[j].socket);
        status = EXIT_FAILURE;
        break;
      }
    }
  }

 out:
  close_volumes (&cr);
  sc_writers_free (cr.writers, cr.nwriters);
  free (cr.volumes);
  free (cr.snapshots);
  return status;

 usage:
  free (wcmds);
  return SC_EXIT_USAGE;
}
