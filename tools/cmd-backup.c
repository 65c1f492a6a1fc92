/* shadowcopy backup: a snapshot copied to a backup image, full or
 * incremental, with its manifest.
 *
 *   shadowcopy -c SOCK | --diff DIFF backup SNAPSHOT --to TARGET
 *              --nbd-socket NBDSOCK [--since BASE --base PREV]
 *              [--format raw] [--progress[=FD]] [--json]
 *
 * Notes on the design
 *
 * The control socket says who the snapshot is and what changed; the
 * data comes over NBD from the snapshot's export (nbdkit -U NBDSOCK, the
 * export named after the snapshot), as for `mount`.
 *
 *   1. For an incremental, PREV's manifest (PREV.manifest.json) is read
 *      first: a damaged one stops everything before any work.
 *   2. `DIFF SNAPSHOT SNAPSHOT` names the snapshot (its id, UUID, type)
 *      and the volume (UUID, chunk size, size); for an incremental,
 *      `DIFF BASE SNAPSHOT` gives BASE's UUID and the ranges to copy.
 *      Chain safety: PREV's manifest must name BASE's UUID as the
 *      snapshot it was made from (a checkpoint kept from that snapshot
 *      has the same UUID), and the same volume.
 *   3. TARGET.partial is made (backup-raw.c), the ranges copied
 *      (backup-copy.c), synced; each block's CRC32C is taken from the
 *      image as written (blocks an incremental did not touch keep PREV's
 *      CRC, so damage inherited from PREV stays visible).
 *   4. The snapshot is named again: if it was deleted (and perhaps made
 *      again) during the copy, the backup is refused.
 *   5. The manifest is written (durably), then TARGET.partial renamed to
 *      TARGET: a TARGET under its final name always has its manifest.
 * Any failure removes TARGET.partial; PREV is only ever read.
 */
#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <libnbd.h>

#include "tools/backup-copy.h"
#include "tools/backup-raw.h"
#include "tools/cli.h"
#include "tools/client.h"
#include "tools/commands.h"
#include "tools/diff-client.h"
#include "tools/image-sums.h"
#include "tools/json.h"
#include "tools/manifest.h"

struct args {
  const char *snapshot, *target, *since, *prev, *nbd_socket;
  bool json;
  bool progress;
  int progress_fd;              /* -1: a bar on stderr */
};

struct progress_state {
  const struct args *a;
  uint64_t start_ms, last_ms;
  int last_pct;
};

static void
now_iso (char *buf, size_t len)
{
  time_t t = time (NULL);
  struct tm tm;
  gmtime_r (&t, &tm);
  strftime (buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static void
on_progress (void *opaque, uint64_t done, uint64_t total)
{
  struct progress_state *p = opaque;
  int pct = total ? (int) (done * 100 / total) : 100;
  uint64_t now = sc_cli_mono_ms ();

  if (p->a->progress_fd >= 0) {
    if (pct != p->last_pct)
      dprintf (p->a->progress_fd, "%d/100\n", pct);
    p->last_pct = pct;
    return;
  }
  if (pct == p->last_pct && now - p->last_ms < 500 && done != total)
    return;
  p->last_pct = pct;
  p->last_ms = now;
  double s = (double) (now - p->start_ms) / 1000.0;
  double rate = s > 0 ? (double) done / s : 0;
  double eta = rate > 0 ? (double) (total - done) / rate : 0;
  fprintf (stderr, "\r%3d%% %" PRIu64 "/%" PRIu64 " MiB %.1f MiB/s ETA %.0fs ",
           pct, done >> 20, total >> 20, rate / 1048576.0, eta);
  if (done == total)
    fputc ('\n', stderr);
}

static int
parse_args (int argc, char **argv, struct args *a)
{
  for (int i = 0; i < argc; i++) {
    const char *s = argv[i];
    const char **val = NULL;
    if (strcmp (s, "--to") == 0)
      val = &a->target;
    else if (strcmp (s, "--since") == 0)
      val = &a->since;
    else if (strcmp (s, "--base") == 0)
      val = &a->prev;
    else if (strcmp (s, "--nbd-socket") == 0)
      val = &a->nbd_socket;
    else if (strcmp (s, "--format") == 0) {
      if (i + 1 >= argc)
        return sc_cli_usage_error ("backup: --format needs raw");
      if (strcmp (argv[++i], "raw") != 0)
        return sc_cli_usage_error ("backup: --format %s: only raw is built "
                                   "so far", argv[i]);
      continue;
    }
    else if (strcmp (s, "--json") == 0) {
      a->json = true;
      continue;
    }
    else if (strcmp (s, "--progress") == 0) {
      a->progress = true;
      continue;
    }
    else if (strncmp (s, "--progress=", 11) == 0) {
      char *end;
      long fd = strtol (s + 11, &end, 10);
      if (!s[11] || *end || fd < 0 || fd > INT_MAX)
        return sc_cli_usage_error ("backup: --progress=FD needs a file "
                                   "descriptor number");
      a->progress = true;
      a->progress_fd = (int) fd;
      continue;
    }
    else if (s[0] == '-')
      return sc_cli_usage_error ("backup: unexpected option '%s'", s);
    else if (!a->snapshot) {
      a->snapshot = s;
      continue;
    }
    else
      return sc_cli_usage_error ("backup: unexpected argument '%s'", s);
    if (i + 1 >= argc)
      return sc_cli_usage_error ("backup: %s needs a value", s);
    *val = argv[++i];
  }
  if (!a->snapshot || !a->target)
    return sc_cli_usage_error ("backup needs SNAPSHOT and --to TARGET");
  if (!a->nbd_socket)
    return sc_cli_usage_error ("backup needs --nbd-socket NBDSOCK (the "
                               "socket nbdkit serves the snapshot on)");
  if (!a->since != !a->prev)
    return sc_cli_usage_error ("backup: --since BASE and --base PREV go "
                               "together");
  if (!sc_cli_name_ok (a->snapshot) || (a->since && !sc_cli_name_ok (a->since)))
    return EXIT_FAILURE;
  if (!*a->target)
    return sc_cli_usage_error ("backup: --to needs a path");
  return EXIT_SUCCESS;
}

/* DIFF SNAPSHOT SNAPSHOT: who the snapshot and its volume are. */
static int
identify (struct sc_client *c, const char *name, struct sc_diff *id,
          char *err, size_t errlen)
{
  memset (id, 0, sizeof *id);
  int r = sc_diff_fetch (c, name, name, id, err, errlen);
  if (r < 0)
    return r;
  free (id->v);
  id->v = NULL;
  if (strcmp (id->to.type, "snapshot") != 0) {
    snprintf (err, errlen, "%s is a %s, not a snapshot: it has no data to "
              "back up", name, id->to.type);
    return -EINVAL;
  }
  return 0;
}

static int
connect_export (const char *socket, const char *name, uint64_t size,
                struct nbd_handle **out, char *err, size_t errlen)
{
  struct nbd_handle *h = nbd_create ();
  int64_t got;

  if (!h) {
    snprintf (err, errlen, "libnbd: %s", nbd_get_error ());
    return -ENOMEM;
  }
  if (nbd_set_export_name (h, name) < 0 ||
      nbd_add_meta_context (h, LIBNBD_CONTEXT_BASE_ALLOCATION) < 0 ||
      nbd_connect_unix (h, socket) < 0) {
    snprintf (err, errlen, "cannot open the export of %s on %s: %s", name,
              socket, nbd_get_error ());
    nbd_close (h);
    return -EIO;
  }
  got = nbd_get_size (h);
  if (got < 0 || (uint64_t) got != size) {
    snprintf (err, errlen, "the export of %s on %s is %" PRId64 " bytes; "
              "the volume is %" PRIu64, name, socket, got, size);
    nbd_close (h);
    return -EIO;
  }
  *out = h;
  return 0;
}

/* The blocks of the image that the ranges d touch. */
static bool *
touched_blocks (const struct sc_diff *d, uint64_t nblocks, uint64_t bs)
{
  bool *touched = calloc (nblocks ? nblocks : 1, sizeof *touched);
  for (size_t i = 0; touched && i < d->n; i++)
    for (uint64_t b = d->v[i].offset / bs;
         b * bs < d->v[i].offset + d->v[i].length; b++)
      touched[b] = true;
  return touched;
}

/* An incremental recomputes the CRC of every block it writes to, over
 * PREV's bytes in the rest of the block: those must first be PREV's as
 * its manifest knows them, or damage in PREV would be taken in under a
 * fresh CRC.  TARGET.partial (fd) is PREV's copy now. */
static int
check_prev_blocks (int fd, const char *target, const struct sc_manifest *prev,
                   const struct sc_diff *d, char *err, size_t errlen)
{
  char partial[PATH_MAX + 16];
  bool *touched;
  int r = 0;

  if (prev->block_size != SC_MANIFEST_BLOCK_SIZE)
    return 0;                   /* every block is summed anew */
  touched = touched_blocks (d, prev->nblocks, prev->block_size);
  if (!touched) {
    snprintf (err, errlen, "%s", strerror (ENOMEM));
    return -ENOMEM;
  }
  snprintf (partial, sizeof partial, "%s.partial", target);
  for (uint64_t b = 0; b < prev->nblocks && r == 0; b++) {
    uint32_t crc;
    if (!touched[b])
      continue;
    r = sc_image_block_crc (fd, partial, prev->volume_size, prev->block_size,
                            b, &crc, err, errlen);
    if (r == 0 && crc != prev->crc[b]) {
      uint64_t end = (b + 1) * prev->block_size;
      snprintf (err, errlen, "PREV is damaged: bytes %" PRIu64 "-%" PRIu64
                " do not match its manifest (shadowcopy verify names it); "
                "make a full backup", b * prev->block_size,
                (end < prev->volume_size ? end : prev->volume_size) - 1);
      r = -EIO;
    }
  }
  free (touched);
  return r;
}

/* Each block's CRC32C: from the image where this backup wrote (all of it
 * for a full backup), from PREV's manifest elsewhere. */
static int
sum_blocks (int fd, const char *path, struct sc_manifest *m,
            const struct sc_manifest *prev, const struct sc_diff *d,
            char *err, size_t errlen)
{
  bool *touched = NULL;
  int r = 0;

  m->block_size = SC_MANIFEST_BLOCK_SIZE;
  m->nblocks = sc_manifest_blocks (m->volume_size, m->block_size);
  m->crc = calloc (m->nblocks ? m->nblocks : 1, sizeof *m->crc);
  if (prev && prev->block_size == m->block_size) {
    touched = touched_blocks (d, m->nblocks, m->block_size);
    if (!touched)
      r = -ENOMEM;
  }
  if (!m->crc)
    r = -ENOMEM;
  if (r < 0) {
    snprintf (err, errlen, "%s", strerror (ENOMEM));
    free (touched);
    return r;
  }
  for (uint64_t b = 0; b < m->nblocks && r == 0; b++) {
    if (touched && !touched[b])
      m->crc[b] = prev->crc[b];
    else
      r = sc_image_block_crc (fd, path, m->volume_size, m->block_size, b,
                              &m->crc[b], err, errlen);
  }
  free (touched);
  return r;
}

static void
print_summary (const struct args *a, const struct sc_manifest *m,
               bool reflinked)
{
  if (a->json) {
    struct sc_json j;
    sc_json_init (&j, stdout);
    sc_json_begin_object (&j);
    sc_json_member_string (&j, "target", a->target);
    sc_json_member_string (&j, "type", m->incremental ? "incremental"
                           : "full");
    sc_json_member_string (&j, "format", m->format);
    sc_json_member_string (&j, "snapshot", m->snapshot_name);
    sc_json_member_string (&j, "snapshot-uuid", m->snapshot_uuid);
    if (m->incremental) {
      sc_json_member_string (&j, "base-uuid", m->base_uuid);
      sc_json_member_bool (&j, "reflinked", reflinked);
    }
    sc_json_member_uint (&j, "volume-size", m->volume_size);
    sc_json_member_uint (&j, "bytes-read", m->bytes_read);
    sc_json_member_uint (&j, "bytes-written", m->bytes_written);
    sc_json_member_uint (&j, "bytes-zeroed", m->bytes_zeroed);
    sc_json_member_string (&j, "start-time", m->start_time);
    sc_json_member_string (&j, "end-time", m->end_time);
    sc_json_end_object (&j);
  }
  else
    printf ("%s: %s backup of %s: %" PRIu64 " bytes read, %" PRIu64
            " written, %" PRIu64 " zeroed\n", a->target,
            m->incremental ? "incremental" : "full", m->snapshot_name,
            m->bytes_read, m->bytes_written, m->bytes_zeroed);
}

int
sc_cmd_backup (const struct sc_cli_target *t, int argc, char **argv)
{
  struct args a = { .progress_fd = -1 };
  struct sc_manifest prev = { .crc = NULL }, m = { .crc = NULL };
  struct sc_diff id, id2, d = { .v = NULL };
  struct sc_raw_target *tgt = NULL;
  struct nbd_handle *nbd = NULL;
  struct sc_client *c = NULL;
  char err[2048] = "", prev_manifest[PATH_MAX], manifest[PATH_MAX + 32];
  int st, r;

  st = parse_args (argc, argv, &a);
  if (st != EXIT_SUCCESS)
    return st;
  if ((size_t) snprintf (manifest, sizeof manifest, "%s%s", a.target,
                         SC_MANIFEST_SUFFIX) >= sizeof manifest)
    return sc_cli_usage_error ("backup: --to %s: path too long", a.target);
  if (a.prev) {
    char rel[PATH_MAX + 32];
    snprintf (rel, sizeof rel, "%s%s", a.prev, SC_MANIFEST_SUFFIX);
    if (sc_manifest_read (rel, &prev, err, sizeof err) < 0) {
      sc_cli_error ("--base %s: %s", a.prev, err);
      return EXIT_FAILURE;
    }
    if (!realpath (rel, prev_manifest)) {
      sc_cli_error ("--base %s: %s: %s", a.prev, rel, strerror (errno));
      sc_manifest_free (&prev);
      return EXIT_FAILURE;
    }
  }

  if (sc_cli_open_target (t, SC_CLIENT_SERVER, &c) != EXIT_SUCCESS) {
    sc_manifest_free (&prev);
    return EXIT_FAILURE;
  }
  m.version = SC_MANIFEST_VERSION;
  snprintf (m.format, sizeof m.format, "raw");
  now_iso (m.start_time, sizeof m.start_time);
  if (identify (c, a.snapshot, &id, err, sizeof err) < 0)
    goto fail;
  snprintf (m.volume_uuid, sizeof m.volume_uuid, "%s", id.volume);
  snprintf (m.snapshot_name, sizeof m.snapshot_name, "%s", a.snapshot);
  snprintf (m.snapshot_uuid, sizeof m.snapshot_uuid, "%s", id.to.uuid);
  m.snapshot_id = id.to.id;
  m.chunk_size = id.chunk_size;
  m.volume_size = id.volume_size;

  if (a.since) {
    char why[1024];
    r = sc_diff_fetch (c, a.since, a.snapshot, &d, why, sizeof why);
    if (r < 0) {
      snprintf (err, sizeof err, "--since %s: %s%s", a.since, why,
                r == -ENOENT ? " (BASE no longer exists: make a full "
                "backup)" : "");
      goto fail;
    }
    if (strcmp (prev.volume_uuid, id.volume) != 0) {
      snprintf (err, sizeof err, "--base %s is a backup of volume %s, not "
                "of this volume (%s)", a.prev, prev.volume_uuid, id.volume);
      goto fail;
    }
    if (strcmp (prev.snapshot_uuid, d.from.uuid) != 0) {
      snprintf (err, sizeof err, "--base %s was made from snapshot %s (UUID "
                "%s), but --since %s has UUID %s: it is not PREV's base, so "
                "the chain would be wrong", a.prev, prev.snapshot_name,
                prev.snapshot_uuid, a.since, d.from.uuid);
      goto fail;
    }
    if (prev.volume_size != id.volume_size) {
      snprintf (err, sizeof err, "--base %s is %" PRIu64 " bytes; the "
                "volume is %" PRIu64, a.prev, prev.volume_size,
                id.volume_size);
      goto fail;
    }
    m.incremental = true;
    snprintf (m.base_uuid, sizeof m.base_uuid, "%s", d.from.uuid);
    memcpy (m.prev_manifest, prev_manifest, sizeof m.prev_manifest);
  }
  else {
    d.v = malloc (sizeof *d.v);
    if (!d.v) {
      snprintf (err, sizeof err, "%s", strerror (ENOMEM));
      goto fail;
    }
    d.v[0] = (struct sc_diff_extent) { 0, id.volume_size };
    d.n = id.volume_size ? 1 : 0;
  }

  if (sc_raw_target_open (a.target, a.prev, id.volume_size, &tgt, err,
                          sizeof err) < 0)
    goto fail;
  /* A manifest without its TARGET is left by a backup killed between
   * the two renames: this backup's lock on TARGET.partial says no other
   * one is running, so it is stale. */
  {
    struct stat tst;
    if (lstat (a.target, &tst) < 0 && lstat (manifest, &tst) == 0)
      unlink (manifest);
  }
  if (a.since && check_prev_blocks (sc_raw_target_fd (tgt), a.target, &prev,
                                    &d, err, sizeof err) < 0)
    goto fail;
  if (connect_export (a.nbd_socket, a.snapshot, id.volume_size, &nbd, err,
                      sizeof err) < 0)
    goto fail;

  {
    struct progress_state ps = { .a = &a, .start_ms = sc_cli_mono_ms (),
                                 .last_pct = -1 };
    struct sc_backup_copy_opts o = { .target_is_zero = !a.since,
                                     .progress = a.progress ? on_progress
                                     : NULL, .progress_opaque = &ps };
    struct sc_backup_sink sink;
    struct sc_backup_stats stats = { 0 };

    sc_raw_target_sink (tgt, &sink);
    _Static_assert (sizeof (struct sc_backup_range)
                    == sizeof (struct sc_diff_extent), "one extent type");
    if (sc_backup_copy (nbd, (const struct sc_backup_range *) d.v, d.n, &o,
                        &sink, &stats, err, sizeof err) < 0)
      goto fail;
    if (a.progress && d.n == 0)
      on_progress (&ps, 0, 0);
    m.bytes_read = stats.bytes_read;
    m.bytes_written = stats.bytes_written;
    m.bytes_zeroed = stats.bytes_zeroed;
  }
  nbd_shutdown (nbd, 0);
  nbd_close (nbd);
  nbd = NULL;

  if (sc_raw_target_sync (tgt, err, sizeof err) < 0)
    goto fail;
  {
    char partial[PATH_MAX + 16];
    snprintf (partial, sizeof partial, "%s.partial", a.target);
    if (sum_blocks (sc_raw_target_fd (tgt), partial, &m,
                    a.since ? &prev : NULL, &d, err, sizeof err) < 0)
      goto fail;
  }
  /* The snapshot read must still be the one named at the start. */
  if (identify (c, a.snapshot, &id2, err, sizeof err) < 0 ||
      strcmp (id2.to.uuid, id.to.uuid) != 0) {
    if (!err[0] || strcmp (id2.to.uuid, id.to.uuid) != 0)
      snprintf (err, sizeof err, "snapshot %s was deleted or made again "
                "during the backup: %s is not kept", a.snapshot, a.target);
    goto fail;
  }
  now_iso (m.end_time, sizeof m.end_time);
  if (sc_manifest_write (&m, manifest, err, sizeof err) < 0)
    goto fail;
  {
    bool reflinked = sc_raw_target_reflinked (tgt);
    r = sc_raw_target_commit (tgt, err, sizeof err);
    tgt = NULL;
    if (r < 0) {
      unlink (manifest);        /* ours: written just above */
      goto fail;
    }
    if (r > 0)                  /* in place, not known durable */
      goto fail;
    print_summary (&a, &m, reflinked);
  }
  free (d.v);
  sc_manifest_free (&m);
  sc_manifest_free (&prev);
  return sc_cli_close_target (c, EXIT_SUCCESS);

fail:
  sc_cli_error ("backup %s to %s: %s", a.snapshot, a.target, err);
  if (nbd)
    nbd_close (nbd);
  sc_raw_target_abort (tgt);
  free (d.v);
  sc_manifest_free (&m);
  sc_manifest_free (&prev);
  return sc_cli_close_target (c, EXIT_FAILURE);
}
