/* Unit tests: the control verbs of changed-block tracking and checkpoints
 * (DIFF, CHECKPOINT, DELETE keep-checkpoint=1 and uuid=, the type and uuid of
 * snapshot lines) answered by the server's own handler on a real volume,
 * online and offline: their arguments, pages, byte ranges and errors. */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "cow/io.h"
#include "cow/uuid.h"
#include "engine/control-protocol.h"
#include "engine/control.h"
#include "engine/volume.h"
#include "tests/unit-helpers.h"

static void
suite_teardown (void)
{
  sc_io_fault_hook = NULL;
  uh_teardown ();
}

TestSuite (control_diff, .init = uh_setup, .fini = suite_teardown);

#define CS 4096u
#define NCHUNKS 10u
#define TAIL 100u                       /* the last chunk is partial */
#define SIZE ((uint64_t) NCHUNKS * CS + TAIL)

/* A volume on an origin of SIZE bytes of pattern 7. */
static void
setup (struct uh_vol *f)
{
  uh_vol_create (f, SIZE, CS, 7, 0);
}

static void
write_at (struct uh_vol *f, uint64_t off, uint32_t len)
{
  uint8_t buf[2 * CS];
  cr_assert_leq (len, sizeof buf);
  memset (buf, 0xa5, len);
  cr_assert_eq (sc_volume_write (f->v, buf, len, off, 0), 0);
}

/* The reply to one request line, as the handler wrote it (malloc'd). */
static char *
ask_on (struct sc_volume *v, const char *request)
{
  char path[] = "/tmp/shadowcopy-unit-reply-XXXXXX";
  int fd = mkstemp (path);
  cr_assert_geq (fd, 0);
  unlink (path);
  char *line = strdup (request);
  cr_assert_eq (sc_control_handle_line (v, line, fd), 0);
  free (line);
  off_t n = lseek (fd, 0, SEEK_CUR);
  char *out = calloc (1, (size_t) n + 1);
  cr_assert_eq (pread (fd, out, (size_t) n, 0), n);
  close (fd);
  return out;
}

static char *
ask (struct uh_vol *f, const char *request)
{
  return ask_on (f->v, request);
}

/* The value of `key` in the first data line of `kind` ("" if none). */
static const char *
field (const char *reply, const char *kind, const char *key)
{
  static char value[256];
  char want[64];
  snprintf (want, sizeof want, "* %s\t", kind);
  const char *l = strstr (reply, want);
  value[0] = '\0';
  if (!l)
    return value;
  const char *end = strchr (l, '\n');
  char k[64];
  snprintf (k, sizeof k, "\t%s=", key);
  const char *p = strstr (l, k);
  if (!p || (end && p > end))
    return value;
  p += strlen (k);
  size_t n = strcspn (p, "\t\n");
  snprintf (value, sizeof value, "%.*s", (int) n, p);
  return value;
}

/* The extents of a DIFF reply as "OFF+LEN OFF+LEN ...". */
static char *
extents (const char *reply)
{
  static char out[4096];
  out[0] = '\0';
  for (const char *p = reply; (p = strstr (p, "* extent\t")); p++) {
    unsigned long long off, len;
    cr_assert_eq (sscanf (p, "* extent\toffset=%llu\tlength=%llu", &off,
                          &len), 2, "bad extent line in: %s", reply);
    snprintf (out + strlen (out), sizeof out - strlen (out), "%s%llu+%llu",
              out[0] ? " " : "", off, len);
  }
  return out;
}

static void
expect_err (struct uh_vol *f, const char *request, const char *errname,
            const char *words)
{
  char *r = ask (f, request);
  char want[64];
  snprintf (want, sizeof want, "ERR %s ", errname);
  cr_expect_eq (strncmp (r, want, strlen (want)), 0, "%s: got %s", request,
                r);
  if (words)
    cr_expect_not_null (strstr (r, words), "%s: '%s' not in %s", request,
                        words, r);
  free (r);
}

/* s1; chunks 1, 2 and 5 and the partial last chunk written; s2; chunk 7
 * written. */
static void
history (struct uh_vol *f)
{
  uh_vol_snap (f, "s1");
  write_at (f, 1 * CS + 10, 2 * CS - 20);       /* chunks 1 and 2 */
  write_at (f, 5 * CS, 1);
  write_at (f, SIZE - 5, 5);                    /* chunk 10, partial */
  uh_vol_snap (f, "s2");
  write_at (f, 7 * CS + 100, 1);
}

Test (control_diff, two_snapshots_give_the_written_chunks_as_bytes)
{
  struct uh_vol f;
  setup (&f);
  history (&f);
  char *r = ask (&f, "DIFF s1 s2");
  cr_assert_eq (strncmp (r, "* diff\t", 7), 0, "%s", r);
  cr_expect_str_eq (extents (r), "4096+8192 20480+4096 40960+100");
  cr_expect_str_eq (field (r, "diff", "chunk-size"), "4096");
  cr_expect_str_eq (field (r, "diff", "volume-size"), "41060");
  cr_expect_str_eq (field (r, "diff", "from"), "s1");
  cr_expect_str_eq (field (r, "diff", "from-type"), "snapshot");
  cr_expect_str_eq (field (r, "diff", "from-epoch"), "1");
  cr_expect_str_eq (field (r, "diff", "to"), "s2");
  cr_expect_str_eq (field (r, "diff", "to-type"), "snapshot");
  cr_expect_str_eq (field (r, "diff", "to-epoch"), "2");
  cr_expect_str_eq (field (r, "diff", "next"), "end");
  cr_expect_eq (strlen (field (r, "diff", "volume")), 36);
  cr_expect_eq (strlen (field (r, "diff", "from-uuid")), 36);
  cr_expect_eq (strlen (field (r, "diff", "to-uuid")), 36);
  cr_expect_neq (field (r, "diff", "to-id")[0], '\0');
  cr_expect_eq (strcmp (r + strlen (r) - 3, "OK\n"), 0, "%s", r);
  free (r);
  uh_vol_free (&f);
}

Test (control_diff, live_is_the_default_to_and_has_no_id)
{
  struct uh_vol f;
  setup (&f);
  history (&f);
  char *a = ask (&f, "DIFF s2");
  char *b = ask (&f, "DIFF s2 live");
  cr_expect_str_eq (a, b);
  cr_expect_str_eq (extents (a), "28672+4096");
  cr_expect_str_eq (field (a, "diff", "to"), "live");
  cr_expect_str_eq (field (a, "diff", "to-type"), "live");
  cr_expect_str_eq (field (a, "diff", "to-epoch"), "3");
  cr_expect_str_eq (field (a, "diff", "to-id"), "");
  cr_expect_str_eq (field (a, "diff", "to-uuid"), "");
  free (a);
  free (b);
  char *c = ask (&f, "DIFF s1");
  cr_expect_str_eq (extents (c), "4096+8192 20480+4096 28672+4096 "
                    "40960+100");
  free (c);
  uh_vol_free (&f);
}

Test (control_diff, a_snapshot_against_itself_is_empty)
{
  struct uh_vol f;
  setup (&f);
  history (&f);
  char *r = ask (&f, "DIFF s1 s1");
  cr_expect_str_eq (extents (r), "");
  cr_expect_str_eq (field (r, "diff", "next"), "end");
  free (r);
  uh_vol_free (&f);
}

/* max=1: one changed chunk per page; next= goes on; the pages together
 * are the whole answer, with the runs cut at page ends. */
/* Pages of one run each until next=end.  A diff computed whole gives
 * whole runs; one computed page by page (past 8M changed chunks) may cut
 * a run at a page's end, for the client to merge. */
static void
pages_until_end (int want_pages, const char *want)
{
  struct uh_vol f;
  setup (&f);
  history (&f);
  char all[4096] = "", req[128];
  const char *next = "0";
  int pages = 0;
  for (;;) {
    snprintf (req, sizeof req, "DIFF s1 max=1 start=%s", next);
    char *r = ask (&f, req);
    cr_assert_eq (strncmp (r, "* diff\t", 7), 0, "%s", r);
    snprintf (all + strlen (all), sizeof all - strlen (all), "%s%s",
              all[0] && extents (r)[0] ? " " : "", extents (r));
    static char keep[32];
    snprintf (keep, sizeof keep, "%s", field (r, "diff", "next"));
    next = keep;
    free (r);
    pages++;
    cr_assert_lt (pages, 20, "DIFF pages never end");
    if (strcmp (next, "end") == 0)
      break;
  }
  cr_expect_eq (pages, want_pages, "%d pages", pages);
  cr_expect_str_eq (all, want);
  uh_vol_free (&f);
}

Test (control_diff, pages_go_on_from_next_until_end)
{
  pages_until_end (4, "4096+8192 20480+4096 28672+4096 40960+100");
}

Test (control_diff, pages_computed_alone_may_cut_runs)
{
  sc_changes_whole_max = 0;
  pages_until_end (5, "4096+4096 8192+4096 20480+4096 28672+4096 "
                   "40960+100");
}

Test (control_diff, max_above_the_cap_is_capped)
{
  struct uh_vol f;
  setup (&f);
  history (&f);
  char *r = ask (&f, "DIFF s1 s2 max=99999999");
  cr_expect_str_eq (extents (r), "4096+8192 20480+4096 40960+100");
  free (r);
  uh_vol_free (&f);
}

Test (control_diff, start_past_the_end_is_an_empty_last_page)
{
  struct uh_vol f;
  setup (&f);
  history (&f);
  char *r = ask (&f, "DIFF s1 start=1000");
  cr_expect_str_eq (extents (r), "");
  cr_expect_str_eq (field (r, "diff", "next"), "end");
  free (r);
  uh_vol_free (&f);
}

Test (control_diff, bad_input_is_refused_with_the_right_error)
{
  struct uh_vol f;
  setup (&f);
  history (&f);
  expect_err (&f, "DIFF", "EINVAL", "usage: DIFF FROM");
  expect_err (&f, "DIFF nosuch", "ENOENT", "nosuch (FROM)");
  expect_err (&f, "DIFF s1 nosuch", "ENOENT", "nosuch (TO)");
  expect_err (&f, "DIFF s2 s1", "EINVAL", "newer than TO");
  expect_err (&f, "DIFF live", "EINVAL", "live can only be TO");
  expect_err (&f, "DIFF live s1", "EINVAL", "live can only be TO");
  expect_err (&f, "DIFF .x", "EINVAL", "invalid snapshot name");
  expect_err (&f, "DIFF s1 .x", "EINVAL", "invalid snapshot name");
  expect_err (&f, "DIFF s1 s2 s3", "EINVAL", "unexpected argument: s3");
  expect_err (&f, "DIFF s1 max=0", "EINVAL", "max must be");
  expect_err (&f, "DIFF s1 max=-1", "EINVAL", "max must be");
  expect_err (&f, "DIFF s1 start=x", "EINVAL", "start must be");
  expect_err (&f, "DIFF s1 start=18446744073709551616", "EINVAL",
              "start must be");
  expect_err (&f, "DIFF s1 frob=1", "EINVAL", "unknown option: frob");
  expect_err (&f, "DIFF start=0", "EINVAL", "FROM is missing");
  expect_err (&f, "DIFF s1 s2 start=0 max=1 x", "EINVAL", "usage");
  uh_vol_free (&f);
}

/* A copy whose old data cannot be read invalidates the snapshot that
 * needed it: a diff from or to it is refused, saying which side and
 * why. */
static int
fail_reads (const struct sc_io_req *req)
{
  return req->op == SC_IO_READ ? -EIO : 0;
}

Test (control_diff, an_invalid_side_is_eio_naming_it_and_why)
{
  struct uh_vol f;
  setup (&f);
  history (&f);
  uh_vol_snap (&f, "s3");
  sc_io_fault_hook = fail_reads;
  write_at (&f, 7 * CS, 1);     /* only s3 still needs chunk 7's copy */
  sc_io_fault_hook = NULL;
  expect_err (&f, "DIFF s3", "EIO", "FROM snapshot s3 is invalid");
  expect_err (&f, "DIFF s1 s3", "EIO", "TO snapshot s3 is invalid");
  char *r = ask (&f, "DIFF s1 s2");
  cr_expect_str_eq (extents (r), "4096+8192 20480+4096 40960+100", "%s", r);
  free (r);
  uh_vol_free (&f);
}

Test (control_diff, offline_answers_as_online_and_refuses_checkpoint)
{
  struct uh_vol f;
  setup (&f);
  history (&f);
  char *on1 = ask (&f, "DIFF s1 s2");
  char *on2 = ask (&f, "DIFF s1");
  char *on3 = ask (&f, "DIFF s1 max=1 start=3");
  uh_vol_close (&f);

  struct sc_volume *off;
  char err[512];
  cr_assert_eq (sc_volume_open_offline (f.diff, true, &off, err,
                                        sizeof err), 0, "%s", err);
  char *r = ask_on (off, "DIFF s1 s2");
  cr_expect_str_eq (r, on1);
  free (r);
  r = ask_on (off, "DIFF s1");
  cr_expect_str_eq (r, on2);
  free (r);
  r = ask_on (off, "DIFF s1 max=1 start=3");
  cr_expect_str_eq (r, on3);
  free (r);
  r = ask_on (off, "CHECKPOINT c1");
  cr_expect_eq (strncmp (r, "ERR ENOTCONN ", 13), 0, "%s", r);
  free (r);
  sc_volume_close (off);
  free (on1);
  free (on2);
  free (on3);
  uh_vol_free (&f);
}

Test (control_diff, snapshot_lines_carry_type_and_uuid)
{
  struct uh_vol f;
  setup (&f);
  uh_vol_snap (&f, "s1");
  char *r = ask (&f, "LIST");
  cr_expect_str_eq (field (r, "snapshot", "type"), "snapshot");
  cr_expect_eq (strlen (field (r, "snapshot", "uuid")), 36, "%s", r);
  cr_expect_str_eq (field (r, "snapshot", "meta"), "");
  free (r);
  r = ask (&f, "INFO");
  cr_expect_str_eq (field (r, "volume", "checkpoints"), "0");
  cr_expect_str_eq (field (r, "volume", "max-checkpoints"), "512");
  free (r);
  uh_vol_free (&f);
}

Test (control_diff, checkpoint_and_delete_arguments_are_checked)
{
  struct uh_vol f;
  setup (&f);
  uh_vol_snap (&f, "s1");
  expect_err (&f, "CHECKPOINT", "EINVAL", "usage: CHECKPOINT NAME");
  expect_err (&f, "CHECKPOINT .x", "EINVAL", "invalid snapshot name");
  expect_err (&f, "CHECKPOINT delete-oldest=1", "EINVAL",
              "usage: CHECKPOINT NAME");
  expect_err (&f, "CHECKPOINT c1 auto-release=1", "EINVAL",
              "never auto-released");
  expect_err (&f, "CHECKPOINT c1 frob=1", "EINVAL", "unknown option");
  expect_err (&f, "CHECKPOINT s1", "EEXIST", "s1");
  expect_err (&f, "DELETE s1 keep-checkpoint=2", "EINVAL",
              "usage: DELETE NAME [keep-checkpoint=1 | uuid=UUID | "
              "with-clones=1]");
  expect_err (&f, "DELETE s1 frob", "EINVAL", "usage: DELETE NAME");
  expect_err (&f, "DELETE s1 keep-checkpoint=1 x", "EINVAL", "usage");
  /* keep-checkpoint=0 is a plain delete. */
  char *r = ask (&f, "DELETE s1 keep-checkpoint=0");
  cr_expect_str_eq (r, "* deleted\tname=s1\nOK\n");
  free (r);
  uh_vol_free (&f);
}

/* ---- checkpoints -------------------------------------------------------- */

/* A snapshot kept as a checkpoint, first. */
static void
need_checkpoints (struct uh_vol *f)
{
  uh_vol_snap (f, "probe");
  int r = sc_volume_snapshot_keep_checkpoint (f->v, "probe");
  cr_assert_eq (r, 0, "keep-checkpoint: %d", r);
}

Test (control_diff, checkpoint_creates_a_checkpoint_line)
{
  struct uh_vol f;
  setup (&f);
  need_checkpoints (&f);
  char *r = ask (&f, "CHECKPOINT c1");
  cr_expect_str_eq (field (r, "snapshot", "name"), "c1");
  cr_expect_str_eq (field (r, "snapshot", "type"), "checkpoint");
  cr_expect_neq (field (r, "snapshot", "meta")[0], '\0', "%s", r);
  free (r);
  r = ask (&f, "INFO");
  cr_expect_str_eq (field (r, "volume", "checkpoints"), "2");
  free (r);
  uh_vol_free (&f);
}

Test (control_diff, diff_from_a_checkpoint_gives_the_chunks_written_since)
{
  struct uh_vol f;
  setup (&f);
  need_checkpoints (&f);
  free (ask (&f, "CHECKPOINT c1"));
  write_at (&f, 3 * CS + 7, 2);
  write_at (&f, SIZE - 1, 1);
  char *r = ask (&f, "DIFF c1");
  cr_expect_str_eq (field (r, "diff", "from-type"), "checkpoint");
  cr_expect_str_eq (extents (r), "12288+4096 40960+100");
  free (r);
  uh_vol_free (&f);
}

Test (control_diff, delete_keep_checkpoint_answers_and_refuses)
{
  struct uh_vol f;
  setup (&f);
  need_checkpoints (&f);
  uh_vol_snap (&f, "s1");
  write_at (&f, 2 * CS, 1);
  char *before = ask (&f, "DIFF s1");
  char *r = ask (&f, "DELETE s1 keep-checkpoint=1");
  cr_expect_str_eq (r, "* deleted\tname=s1\tcheckpoint=1\nOK\n");
  free (r);
  /* The same chunks, now from the checkpoint. */
  r = ask (&f, "DIFF s1");
  cr_expect_str_eq (extents (r), extents (before));
  cr_expect_str_eq (field (r, "diff", "from-type"), "checkpoint");
  free (r);
  free (before);
  expect_err (&f, "DELETE s1 keep-checkpoint=1", "EINVAL",
              "is a checkpoint already");
  expect_err (&f, "DELETE nosuch keep-checkpoint=1", "ENOENT", "nosuch");
  r = ask (&f, "DELETE s1");
  cr_expect_str_eq (r, "* deleted\tname=s1\nOK\n");
  free (r);
  expect_err (&f, "DIFF s1", "ENOENT", "s1");
  uh_vol_free (&f);
}

/* The UUID of snapshot name, as text. */
static void
uuid_of (struct uh_vol *f, const char *name, char *buf)
{
  struct sc_snapshot_info s;
  cr_assert_eq (sc_volume_snapshot_lookup (f->v, name, &s), 0, "%s", name);
  sc_uuid_format (s.uuid, buf);
}

/* DELETE NAME uuid=UUID deletes NAME only while it is that snapshot: a
 * checkpoint deleted and made again under its name is not deleted by a
 * client that named the first one. */
Test (control_diff, delete_uuid_deletes_only_the_snapshot_of_that_uuid)
{
  struct uh_vol f;
  char old_uuid[40], new_uuid[40], req[128];
  setup (&f);
  need_checkpoints (&f);
  uh_vol_snap (&f, "c1");
  cr_assert_eq (sc_volume_snapshot_keep_checkpoint (f.v, "c1"), 0);
  uuid_of (&f, "c1", old_uuid);
  char *r = ask (&f, "DELETE c1");
  cr_expect_str_eq (r, "* deleted\tname=c1\nOK\n");
  free (r);
  uh_vol_snap (&f, "c1");
  uuid_of (&f, "c1", new_uuid);
  cr_assert_str_neq (old_uuid, new_uuid);

  snprintf (req, sizeof req, "DELETE c1 uuid=%s", old_uuid);
  expect_err (&f, req, "ESTALE", "not deleted");
  expect_err (&f, req, "ESTALE", old_uuid);
  char still[40];
  uuid_of (&f, "c1", still);
  cr_expect_str_eq (still, new_uuid, "the new c1 was deleted");

  snprintf (req, sizeof req, "DELETE c1 uuid=%s", new_uuid);
  r = ask (&f, req);
  cr_expect_str_eq (r, "* deleted\tname=c1\nOK\n");
  free (r);
  expect_err (&f, req, "ENOENT", "c1");
  expect_err (&f, "DELETE probe uuid=not-a-uuid", "EINVAL", "uuid=");
  snprintf (req, sizeof req, "DELETE probe keep-checkpoint=1 uuid=%s",
            new_uuid);
  expect_err (&f, req, "EINVAL", "usage");
  uh_vol_free (&f);
}

/* max-checkpoints is the server's configuration, not stored: offline it
 * is not enforced (a server with a higher limit may have made more than
 * the default 512), and a keep offline is not refused by a guess. */
Test (control_diff, offline_keep_checkpoint_knows_no_limit)
{
  struct uh_vol f;
  setup (&f);
  struct sc_diff *d = sc_volume_diff (f.v);
  sc_diff_set_max_checkpoints (d, 1000);
  struct sc_snapshot_opts o = { .checkpoint = true };
  char name[32];
  for (int i = 0; i < SC_MAX_CHECKPOINTS_DEFAULT; i++) {
    snprintf (name, sizeof name, "c%d", i);
    cr_assert_eq (sc_diff_snapshot_create (d, name, &o, NULL), 0);
  }
  uh_vol_snap (&f, "s");
  uh_vol_close (&f);

  struct sc_volume *off;
  char err[512];
  cr_assert_eq (sc_volume_open_offline (f.diff, false, &off, err,
                                        sizeof err), 0, "%s", err);
  char *r = ask_on (off, "DELETE s keep-checkpoint=1");
  cr_expect (strstr (r, "checkpoint=1") && strstr (r, "OK"), "%s", r);
  free (r);
  sc_volume_close (off);
  uh_vol_free (&f);
}
