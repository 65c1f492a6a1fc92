/* Unit tests: libshadowcopy's public calls against the engine's own
 * control server, run in this process on a live volume of temporary
 * files (the creation in VSS steps, sets and auto-release, delete by
 * UUID, revert's dry run, resize, scrub, any request), offline on the
 * diff area alone, and bad arguments and unreachable servers: an error
 * is a negative errno with a message, kept per thread. */
#include <config.h>

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "engine/control.h"
#include "engine/volume.h"
#include "lib/shadowcopy.h"
#include "tests/unit-helpers.h"

TestSuite (lib, .init = uh_setup, .fini = uh_teardown);

#define SIZE (1024u * 1024u)
#define CS 65536u

struct srv {
  char origin[1024], diff[1024], sock[1024];
  struct sc_volume *v;
  struct sc_control *ctl;
};

static void
srv_start (struct srv *s)
{
  struct sc_volume_config cfg = { .chunk_size = CS };
  char err[512] = "";

  snprintf (s->origin, sizeof s->origin, "%s/origin", uh_dir);
  snprintf (s->diff, sizeof s->diff, "%s/diff", uh_dir);
  snprintf (s->sock, sizeof s->sock, "%s/ctl.sock", uh_dir);
  uh_make_file (s->origin, SIZE, 7);
  cfg.origin_path = s->origin;
  cfg.diff_path = s->diff;
  cr_assert_eq (sc_volume_open (&cfg, &s->v, err, sizeof err), 0, "%s", err);
  cr_assert_eq (sc_control_bind (s->sock, &s->ctl, err, sizeof err), 0,
                "%s", err);
  cr_assert_eq (sc_control_start (s->ctl, s->v), 0);
}

static void
srv_stop (struct srv *s)
{
  sc_control_stop (s->ctl);
  cr_assert_eq (sc_volume_close (s->v), 0);
}

static struct shadowcopy *
conn (const struct srv *s)
{
  struct shadowcopy *h = NULL;
  int r = shadowcopy_connect (s->sock, &h);

  cr_assert_eq (r, 0, "connect: %s", shadowcopy_get_error ());
  return h;
}

static size_t
count (struct shadowcopy *h)
{
  struct shadowcopy_snapshot *v;
  size_t n;

  cr_assert_eq (shadowcopy_list (h, &v, &n), 0, "%s",
                shadowcopy_get_error ());
  free (v);
  return n;
}

/* A failing call: its errno and a message containing `part`. */
static void
failed (int r, int err, const char *part)
{
  cr_assert_eq (r, -err, "want %d, got %d (%s)", -err, r,
                shadowcopy_get_error ());
  cr_assert_eq (shadowcopy_get_errno (), err);
  cr_assert (strstr (shadowcopy_get_error (), part),
             "message '%s' lacks '%s'", shadowcopy_get_error (), part);
}

Test (lib, server_and_version)
{
  struct srv s;
  struct shadowcopy_server sv;

  srv_start (&s);
  struct shadowcopy *h = conn (&s);
  cr_assert_eq (shadowcopy_server (h, &sv), 0);
  cr_assert_eq (sv.protocol_major, SHADOWCOPY_PROTOCOL_MAJOR);
  cr_assert_eq (sv.protocol_minor, SHADOWCOPY_PROTOCOL_MINOR);
  cr_assert_str_eq (sv.version, PACKAGE_VERSION);
  cr_assert_str_eq (sv.where, s.sock);
  cr_assert (!sv.offline);
  cr_assert_geq (shadowcopy_fd (h), 0);
  cr_assert_str_eq (shadowcopy_version (), PACKAGE_VERSION);
  cr_assert_eq (shadowcopy_close (h), 0);
  srv_stop (&s);
}

Test (lib, vss_steps)
{
  struct srv s;
  struct shadowcopy_snapshot snap;
  struct shadowcopy_create_args a = { .name = "stepped" };
  uint64_t held = 0;

  srv_start (&s);
  struct shadowcopy *h = conn (&s), *other = conn (&s);
  /* Nothing to release before a creation. */
  failed (shadowcopy_release (h, NULL), EINVAL, "RELEASE");
  cr_assert_eq (shadowcopy_begin (h, 5000), 0, "%s", shadowcopy_get_error ());
  /* The slot is taken: another connection's creation is busy. */
  failed (shadowcopy_begin (other, 0), EBUSY, "");
  failed (shadowcopy_create (other, NULL, NULL), EBUSY, "");
  cr_assert_eq (shadowcopy_hold (h, 5000), 0, "%s", shadowcopy_get_error ());
  cr_assert_eq (shadowcopy_commit (h, &a, false, &snap), 0, "%s",
                shadowcopy_get_error ());
  cr_assert_str_eq (snap.name, "stepped");
  cr_assert_str_eq (snap.type, "snapshot");
  cr_assert_eq (strlen (snap.uuid), 36);
  cr_assert_eq (shadowcopy_release (h, &held), 0, "%s",
                shadowcopy_get_error ());
  cr_assert_gt (held, 0);
  /* ABORT after a commit deletes what it made. */
  a.name = "aborted";
  cr_assert_eq (shadowcopy_begin (h, 0), 0, "%s", shadowcopy_get_error ());
  cr_assert_eq (shadowcopy_hold (h, 0), 0, "%s", shadowcopy_get_error ());
  cr_assert_eq (shadowcopy_commit (h, &a, false, &snap), 0, "%s",
                shadowcopy_get_error ());
  cr_assert_eq (shadowcopy_abort (h), 0, "%s", shadowcopy_get_error ());
  failed (shadowcopy_find (h, "aborted", &snap), ENOENT, "aborted");
  cr_assert_eq (shadowcopy_find (h, "stepped", &snap), 0);
  /* COMMIT with release ends the creation: the slot is free again. */
  a.name = "released";
  cr_assert_eq (shadowcopy_begin (h, 0), 0);
  cr_assert_eq (shadowcopy_hold (h, 0), 0);
  cr_assert_eq (shadowcopy_commit (h, &a, true, &snap), 0);
  cr_assert_eq (shadowcopy_begin (other, 0), 0, "%s",
                shadowcopy_get_error ());
  cr_assert_eq (shadowcopy_abort (other), 0);
  cr_assert_eq (shadowcopy_find (h, "released", &snap), 0);
  cr_assert_eq (shadowcopy_close (other), 0);
  cr_assert_eq (shadowcopy_close (h), 0);
  srv_stop (&s);
}

static void
collect (const char *name, void *opaque)
{
  char *buf = opaque;

  strcat (buf, name);
  strcat (buf, ";");
}

Test (lib, sets_auto_release_and_delete)
{
  struct srv s;
  struct shadowcopy_snapshot snap;
  const char *set = "0b9d8f3e-1c2a-4d5e-8f70-112233445566";
  struct shadowcopy_create_args a = { .name = "m1", .set = set };
  char gone[512] = "";

  srv_start (&s);
  struct shadowcopy *h = conn (&s);
  cr_assert_eq (shadowcopy_create (h, &a, &snap), 0, "%s",
                shadowcopy_get_error ());
  cr_assert_str_eq (snap.set, set);
  /* An auto-release snapshot goes with its connection. */
  struct shadowcopy *tmp = conn (&s);
  struct shadowcopy_create_args ar = { .name = "temp", .auto_release = true };
  cr_assert_eq (shadowcopy_create (tmp, &ar, &snap), 0);
  cr_assert (snap.auto_release);
  cr_assert_eq (count (h), 2);
  cr_assert_eq (shadowcopy_close (tmp), 0);
  for (int i = 0; i < 100 && count (h) != 1; i++)
    usleep (10000);
  cr_assert_eq (count (h), 1);
  /* Deleted by UUID only while it is that snapshot. */
  cr_assert_eq (shadowcopy_find (h, "m1", &snap), 0);
  failed (shadowcopy_delete (h, "m1", "00000000-0000-4000-8000-000000000000",
                             0, collect, gone), ESTALE, "m1");
  cr_assert_str_eq (gone, "");
  failed (shadowcopy_delete (h, "m1", NULL,
                             SHADOWCOPY_DELETE_KEEP_CHECKPOINT
                             | SHADOWCOPY_DELETE_WITH_CLONES, NULL, NULL),
          EINVAL, "do not go together");
  /* A set by its id; none left then. */
  cr_assert_eq (shadowcopy_delete_set (h, set, collect, gone), 0);
  cr_assert_str_eq (gone, "m1;");
  failed (shadowcopy_delete_set (h, set, NULL, NULL), ENOENT, set);
  failed (shadowcopy_delete_oldest (h, NULL, NULL), ENOENT, "");
  cr_assert_eq (shadowcopy_close (h), 0);
  srv_stop (&s);
}

static int
stop_at_first (const char *key, const char *value, void *opaque)
{
  (void) key;
  (void) value;
  ++*(int *) opaque;
  return -ECANCELED;
}

static int
on_line (const char *kind, const struct shadowcopy_field *f, size_t n,
         void *opaque)
{
  int *snapshots = opaque;

  if (strcmp (kind, "snapshot") == 0)
    ++*snapshots;
  for (size_t i = 0; i < n; i++)
    cr_assert (f[i].key && f[i].value);
  return 0;
}

static int
refuse (const char *kind, const struct shadowcopy_field *f, size_t n,
        void *opaque)
{
  (void) kind; (void) f; (void) n; (void) opaque;
  return -1;
}

Test (lib, space_revert_request)
{
  struct srv s;
  struct shadowcopy_volume v;
  struct shadowcopy_revert rv;
  struct shadowcopy_revert_args dry = { .dry_run = true, .nosave = true };
  struct shadowcopy_scrub sc;
  uint64_t dropped = 99;
  int seen = 0, snapshots = 0;

  srv_start (&s);
  struct shadowcopy *h = conn (&s);
  cr_assert_eq (shadowcopy_create (h, &(struct shadowcopy_create_args)
                                   { .name = "r1" }, NULL), 0);
  cr_assert_eq (sc_volume_write (s.v, "x", 1, 4096, 0), 0);
  cr_assert_eq (shadowcopy_info (h, &v), 0, "%s", shadowcopy_get_error ());
  cr_assert_eq (v.volume_size, SIZE);
  cr_assert_eq (v.chunk_size, CS);
  cr_assert_eq (v.snapshots, 1);
  cr_assert (v.have_health && !v.failed);
  /* A dry run says what it would write, and changes nothing. */
  cr_assert_eq (shadowcopy_revert (h, "r1", &dry, &rv), 0, "%s",
                shadowcopy_get_error ());
  cr_assert (rv.have_plan);
  cr_assert_eq (rv.plan_bytes_to_write, CS);
  cr_assert (rv.plan_fits);
  cr_assert_eq (shadowcopy_revert_status (h, &rv), 0);
  cr_assert_str_eq (rv.state, "none");
  failed (shadowcopy_revert (h, "r1", &(struct shadowcopy_revert_args)
                             { .save = "a", .nosave = true }, NULL),
          EINVAL, "do not go together");
  /* Resize: unbounded, then a limit. */
  cr_assert_eq (shadowcopy_resize (h, SHADOWCOPY_RATE_UNBOUNDED, false,
                                   &dropped), 0, "%s",
                shadowcopy_get_error ());
  cr_assert_eq (dropped, 0);
  cr_assert_eq (shadowcopy_resize (h, 64u << 20, false, NULL), 0);
  cr_assert_eq (shadowcopy_info (h, &v), 0);
  cr_assert_eq (v.diff_max, 64u << 20);
  failed (shadowcopy_resize (h, 0, false, NULL), EINVAL, "0 bytes");
  /* Scrub. */
  cr_assert_eq (shadowcopy_scrub_status (h, &sc), 0, "%s",
                shadowcopy_get_error ());
  cr_assert_str_eq (sc.state, "never");
  cr_assert_eq (shadowcopy_scrub (h, SHADOWCOPY_RATE_UNBOUNDED, &sc), 0,
                "%s", shadowcopy_get_error ());
  /* The caller stops stats: its errno comes back. */
  failed (shadowcopy_stats (h, stop_at_first, &seen), ECANCELED, "stopped");
  cr_assert_eq (seen, 1);
  /* Any request. */
  cr_assert_eq (shadowcopy_request (h, "LIST", NULL, 0, on_line,
                                    &snapshots), 0);
  cr_assert_eq (snapshots, 1);
  failed (shadowcopy_request (h, "LIST", NULL, 0, refuse, NULL), EPROTO,
          "bad reply");
  failed (shadowcopy_request (h, "NO-SUCH-VERB", NULL, 0, NULL, NULL),
          EINVAL, "");
  cr_assert_eq (count (h), 1, "the connection stays in step");
  cr_assert_eq (shadowcopy_close (h), 0);
  srv_stop (&s);
}

static int
extent (uint64_t offset, uint64_t length, void *opaque)
{
  uint64_t *v = opaque;

  v[0] = offset;
  v[1] += length;
  return 0;
}

/* An extent callback that returns a count by mistake. */
static int
extent_count (uint64_t offset, uint64_t length, void *opaque)
{
  (void) offset; (void) length;
  return ++*(int *) opaque;
}

/* A callback's positive return is a slip, not "stop, all is well": the
 * diff must not end early looking whole (a backup would miss the rest). */
Test (lib, diff_callback_positive_return_fails)
{
  struct srv s;
  int calls = 0;

  srv_start (&s);
  struct shadowcopy *h = conn (&s);
  cr_assert_eq (shadowcopy_create (h, &(struct shadowcopy_create_args)
                                   { .name = "base" }, NULL), 0);
  cr_assert_eq (sc_volume_write (s.v, "y", 1, 1 * CS, 0), 0);
  cr_assert_eq (sc_volume_write (s.v, "y", 1, 5 * CS, 0), 0);
  failed (shadowcopy_diff (h, "base", NULL, extent_count, &calls, NULL),
          EINVAL, "the extent callback returned 1");
  cr_assert_eq (calls, 1);
  cr_assert_eq (shadowcopy_close (h), 0);
  srv_stop (&s);
}

Test (lib, offline)
{
  struct srv s;
  struct shadowcopy *h;
  struct shadowcopy_server sv;
  struct shadowcopy_diff d;
  uint64_t e[2] = { 0, 0 };
  char gone[256] = "";

  srv_start (&s);
  struct shadowcopy *on = conn (&s);
  cr_assert_eq (shadowcopy_create (on, &(struct shadowcopy_create_args)
                                   { .name = "base" }, NULL), 0);
  cr_assert_eq (sc_volume_write (s.v, "y", 1, 3 * CS + 5, 0), 0);
  cr_assert_eq (shadowcopy_close (on), 0);
  srv_stop (&s);

  failed (shadowcopy_open (s.diff, SHADOWCOPY_OPEN_SERVER, &h), ENOTCONN,
          "needs a running server");
  cr_assert_eq (shadowcopy_open (s.diff, SHADOWCOPY_OPEN_WRITE, &h), 0,
                "%s", shadowcopy_get_error ());
  cr_assert_eq (shadowcopy_server (h, &sv), 0);
  cr_assert (sv.offline);
  cr_assert_str_eq (sv.where, s.diff);
  cr_assert_eq (count (h), 1);
  cr_assert_eq (shadowcopy_diff (h, "base", NULL, extent, e, &d), 0, "%s",
                shadowcopy_get_error ());
  cr_assert_eq (e[0], 3 * CS);
  cr_assert_eq (e[1], CS);
  cr_assert_eq (d.bytes, CS);
  cr_assert_str_eq (d.to.type, "live");
  failed (shadowcopy_stats (h, stop_at_first, NULL), ENOTCONN,
          "needs a running server");
  failed (shadowcopy_create (h, NULL, NULL), ENOTCONN, "");
  failed (shadowcopy_revert (h, "base", NULL, NULL), ENOTCONN,
          "revert needs a running server");
  cr_assert_eq (shadowcopy_clone (h, "base", "cl", NULL), 0, "%s",
                shadowcopy_get_error ());
  cr_assert_eq (shadowcopy_delete (h, "base", NULL,
                                   SHADOWCOPY_DELETE_WITH_CLONES, collect,
                                   gone), 0, "%s", shadowcopy_get_error ());
  cr_assert_str_eq (gone, "cl;base;");
  cr_assert_eq (shadowcopy_close (h), 0);
  /* Read-only: nothing can be deleted. */
  cr_assert_eq (shadowcopy_open (s.diff, SHADOWCOPY_OPEN_READ, &h), 0);
  cr_assert_eq (count (h), 0);
  cr_assert_eq (shadowcopy_close (h), 0);
}

static void *
other_thread (void *arg)
{
  (void) arg;
  /* This thread's error is its own: empty, whatever the main one did. */
  return (void *) (uintptr_t) (shadowcopy_get_error ()[0] == '\0' &&
                               shadowcopy_get_errno () == 0);
}

Test (lib, bad_arguments)
{
  struct shadowcopy *h = NULL;
  struct shadowcopy_snapshot snap;
  char *missing = uh_path ("no-such.sock"), *file = uh_path ("a-file");
  pthread_t t;
  void *ok;

  failed (shadowcopy_connect (NULL, &h), EINVAL, "no socket");
  failed (shadowcopy_list (NULL, NULL, NULL), EINVAL, "no handle");
  failed (shadowcopy_find (NULL, "x", &snap), EINVAL, "no handle");
  failed (shadowcopy_open ("x", 7, &h), EINVAL, "unknown mode 7");
  failed (shadowcopy_connect (missing, &h), ENOENT, missing);
  uh_make_file (file, 4096, 1);
  failed (shadowcopy_connect (file, &h), ECONNREFUSED, "--diff");
  failed (shadowcopy_open (missing, SHADOWCOPY_OPEN_READ, &h), ENOENT,
          "no such file");
  cr_assert_null (h);
  cr_assert_eq (pthread_create (&t, NULL, other_thread, NULL), 0);
  cr_assert_eq (pthread_join (t, &ok), 0);
  cr_assert (ok, "the error leaked into another thread");
  cr_assert (strstr (shadowcopy_get_error (), "no such file"));
  cr_assert_eq (shadowcopy_close (NULL), 0);
  free (missing);
  free (file);
}

Test (lib, open_volume)
{
  struct srv s;
  struct shadowcopy *h;
  struct shadowcopy_server sv;
  char conf[3 * 4096 + 64];

  srv_start (&s);
  snprintf (conf, sizeof conf, "disk=%s\ndiff=%s\ncontrol=%s\n", s.origin,
            s.diff, s.sock);
  char *path = uh_path ("vol1.conf");
  uh_write_file (path, conf, strlen (conf));
  setenv ("SHADOWCOPY_CONFDIR", uh_dir, 1);
  cr_assert_eq (shadowcopy_open_volume ("vol1", &h), 0, "%s",
                shadowcopy_get_error ());
  cr_assert_eq (shadowcopy_server (h, &sv), 0);
  cr_assert_str_eq (sv.where, s.sock);
  cr_assert_eq (count (h), 0);
  cr_assert_eq (shadowcopy_close (h), 0);
  failed (shadowcopy_open_volume ("nosuch", &h), ENOENT, "volume nosuch");
  free (path);
  srv_stop (&s);
}

Test (lib, null_results)
{
  struct srv s;
  struct shadowcopy_snapshot *v;
  size_t n;

  srv_start (&s);
  struct shadowcopy *h = conn (&s);
  failed (shadowcopy_list (h, NULL, &n), EINVAL, "out is NULL");
  failed (shadowcopy_list (h, &v, NULL), EINVAL, "n is NULL");
  failed (shadowcopy_info (h, NULL), EINVAL, "out is NULL");
  failed (shadowcopy_find (h, "x", NULL), EINVAL, "out is NULL");
  failed (shadowcopy_server (h, NULL), EINVAL, "out is NULL");
  cr_assert_eq (count (h), 0, "the connection stays in step");
  cr_assert_eq (shadowcopy_close (h), 0);
  srv_stop (&s);
}
