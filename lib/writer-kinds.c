/* shadowcopy: the in-box writers (see writer-kinds.h): their table, and
 * the phases of the kinds other than fsfreeze (writers.c runs that one).
 *
 * Phases: identify says what the writer does (an in-box writer is never
 * left out: one asked for by name that cannot work must stop the
 * creation, not be skipped); prepare checks what it needs (its program,
 * socket or file), then runs a one-shot step if the kind has one
 * (postgresql's CHECKPOINT: before any writer freezes); freeze starts
 * its guardian; thaw and abort stop the guardian, which thaws.
 */
#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/guardian.h"
#include "lib/shadowcopy.h"
#include "lib/writer-kinds.h"
#include "lib/writers.h"

static const struct shadowcopy_writer_kind kinds[] = {
  { "fsfreeze", "MOUNTPOINT",
    "a filesystem mounted on this host; root (FIFREEZE)",
    "freezes the filesystem (FIFREEZE) from freeze to thaw, held by a "
    "guardian process" },
  { "qemu-ga", "SOCKET[:MOUNT,MOUNT...]",
    "a VM's QEMU guest agent channel, its host side a Unix socket",
    "freezes the guest's filesystems (or the MOUNTs) with "
    "guest-fsfreeze-freeze, status checked, held by a guardian that "
    "thaws them" },
  { "libvirt", "DOMAIN",
    "virsh (libvirt-clients); the domain's guest agent; "
    "LIBVIRT_DEFAULT_URI names the hypervisor",
    "virsh domfsfreeze DOMAIN at freeze, domfsthaw at thaw, held by a "
    "guardian" },
  { "postgresql", "CONNINFO",
    "psql (postgresql-client); a role allowed to CHECKPOINT",
    "runs CHECKPOINT in the prepare phase, before any writer freezes "
    "(shorter recovery on the snapshot), reports its duration; holds no "
    "lock" },
  { "mysql", "DEFAULTS-FILE",
    "the mysql client (mariadb-client); an option file with [client] "
    "socket/user/password of a user with the RELOAD privilege",
    "FLUSH TABLES WITH READ LOCK in one session held by a guardian from "
    "freeze to thaw, then UNLOCK TABLES" },
  { NULL, NULL, NULL, NULL },
};

static const struct sc_writer_kind_impl *const impls[] = {
  &sc_writer_qemu_ga, &sc_writer_libvirt, &sc_writer_postgresql,
  &sc_writer_mysql,
};
#define NIMPLS (sizeof impls / sizeof impls[0])

const struct shadowcopy_writer_kind *
shadowcopy_writers_list (void)
{
  return kinds;
}

const struct sc_writer_kind_impl *
sc_writer_kind_of (const char *name)
{
  for (size_t i = 0; i < NIMPLS; i++) {
    size_t n = strlen (impls[i]->prefix);
    if (strncmp (name, impls[i]->prefix, n) == 0 && name[n] == ':')
      return impls[i];
  }
  return NULL;
}

static const char *
arg_of (const struct sc_writer_kind_impl *k, const char *name)
{
  return name + strlen (k->prefix) + 1;
}

int
sc_writer_kind_check (const char *name, char *err, size_t errlen)
{
  const struct sc_writer_kind_impl *k = sc_writer_kind_of (name);
  char why[256];
  void *st = NULL;
  int r;

  if (!k)
    return 0;
  why[0] = '\0';
  r = k->parse (arg_of (k, name), &st, why, sizeof why);
  if (r == 0)
    k->free (st);
  else
    snprintf (err, errlen, "writer %s: %s", name,
              why[0] ? why : strerror (-r));
  return r;
}

int
sc_writer_kind_init (struct sc_writer *w)
{
  char why[256];

  w->kind = sc_writer_kind_of (w->name);
  w->guardian = SC_GUARDIAN_INIT;
  if (!w->kind)
    return 0;
  return w->kind->parse (arg_of (w->kind, w->name), &w->kind_state, why,
                         sizeof why);
}

void
sc_writer_kind_free (struct sc_writer *w)
{
  if (w->kind && w->kind_state)
    w->kind->free (w->kind_state);
  w->kind_state = NULL;
  sc_guardian_close (&w->guardian);
}

int
sc_writer_kind_program (const char *prog, char *why, size_t len)
{
  const char *path = getenv ("PATH");
  char *copy, *save = NULL;

  if (!path || !(copy = strdup (path)))
    copy = strdup ("/usr/bin:/bin");
  if (!copy)
    return -ENOMEM;
  for (char *d = strtok_r (copy, ":", &save); d;
       d = strtok_r (NULL, ":", &save)) {
    char p[4200];
    snprintf (p, sizeof p, "%s/%s", d, prog);
    if (access (p, X_OK) == 0) {
      free (copy);
      return 0;
    }
  }
  free (copy);
  snprintf (why, len, "%s is not installed (not found in PATH)", prog);
  return -ENOENT;
}

/* What an in-box writer's freeze and thaw did (how long the freeze took,
 * how long it lasted), for the user: to the set's notify callback. */
static void
notice (const struct sc_writer *w, const struct sc_writer_env *env)
{
  char m[SC_WRITER_OUTPUT_MAX + 512];

  if (!env || !env->notify)
    return;
  snprintf (m, sizeof m, "writer %s: %s: %s", w->name, w->phase, w->output);
  env->notify (m, env->notify_opaque);
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

static int
kind_freeze (struct sc_writer *w, const struct sc_writer_env *env,
             uint64_t timeout_ms, uint64_t freeze_ms,
             char *msg, size_t msglen)
{
  const struct sc_writer_kind_impl *k = w->kind;
  char why[SC_GUARDIAN_WHY_MAX + 64];
  uint64_t t0 = sc_guardian_now_ms ();
  int r;

  if (k->once) {                /* done in prepare: nothing to freeze */
    sc_writer_record (w, "freeze", "ok", "nothing to freeze", 0);
    return 0;
  }
  if (w->guardian.pid)
    return 0;
  struct sc_guardian_ops ops = {
    .freeze = k->freeze, .thaw = k->thaw, .arg = w->kind_state,
  };
  r = sc_guardian_start (&w->guardian, &ops, timeout_ms, freeze_ms, why,
                         sizeof why);
  /* An agent or a session that did not answer one call in time is not
   * the freeze window ending (which -ETIMEDOUT would say). */
  if (r == -ETIMEDOUT && sc_guardian_now_ms () - t0 < timeout_ms)
    r = -ETIME;
  sc_writer_record (w, "freeze", r == -ETIMEDOUT || r == -ETIME
                    ? "timed out" : r < 0 ? "failed" : "ok", why, 0);
  if (r == 0)
    notice (w, env);
  return report (w, "freeze", r, w->result, msg, msglen);
}

static int
kind_thaw (struct sc_writer *w, const struct sc_writer_env *env,
           const char *phase, uint64_t timeout_ms,
           char *msg, size_t msglen)
{
  char why[SC_GUARDIAN_WHY_MAX + 64];
  uint64_t frozen_ns = 0;
  bool held = w->guardian.pid != 0;
  int r = sc_guardian_stop (&w->guardian, timeout_ms, &frozen_ns, why,
                            sizeof why);

  if (!held)
    snprintf (why, sizeof why, "%s", w->kind->once || strcmp (phase, "thaw")
              ? "nothing held" : "not frozen");
  sc_writer_record (w, phase, r == -ETIMEDOUT ? "window expired"
                    : r < 0 ? "failed" : "ok", why, frozen_ns);
  if (r == 0 && held)
    notice (w, env);
  return report (w, phase, r, w->result, msg, msglen);
}

int
sc_writer_kind_run (struct sc_writer *w, const char *phase,
                    const struct sc_writer_env *env, uint64_t timeout_ms, uint64_t freeze_ms,
                    char *msg, size_t msglen)
{
  char why[SC_GUARDIAN_WHY_MAX + 64];   /* a one-shot step's error too */
  int r;

  if (!w->kind_state) {
    snprintf (msg, msglen, "writer %s: %s: out of memory", w->name, phase);
    return -ENOMEM;
  }
  if (strcmp (phase, "freeze") == 0)
    return kind_freeze (w, env, timeout_ms, freeze_ms, msg, msglen);
  if (strcmp (phase, "thaw") == 0 || strcmp (phase, "abort") == 0)
    return kind_thaw (w, env, phase, timeout_ms, msg, msglen);
  if (strcmp (phase, "identify") == 0) {
    for (size_t i = 0; kinds[i].prefix; i++)
      if (strcmp (kinds[i].prefix, w->kind->prefix) == 0)
        snprintf (why, sizeof why, "built-in: %s", kinds[i].does);
    sc_writer_record (w, phase, "ok", why, 0);
    return 0;
  }
  if (strcmp (phase, "prepare") == 0) {
    why[0] = '\0';
    r = w->kind->check (w->kind_state, why, sizeof why);
    /* A kind that acts once (postgresql's CHECKPOINT) acts here, before
     * any writer freezes, so that it lengthens no one's freeze. */
    if (r == 0 && w->kind->once)
      r = w->kind->once (w->kind_state, sc_guardian_now_ms () + timeout_ms,
                         why, sizeof why);
    sc_writer_record (w, phase, r == -ETIMEDOUT ? "timed out"
                      : r < 0 ? "failed" : "ok", why, 0);
    if (r == 0 && w->kind->once)
      notice (w, env);
    return report (w, phase, r, w->result, msg, msglen);
  }
  sc_writer_record (w, phase, "ok", "", 0);
  return 0;
}
