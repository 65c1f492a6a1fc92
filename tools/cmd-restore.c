/* shadowcopy restore: the content a backup represents, written to DEST.
 *
 *   shadowcopy restore TARGET --to DEST [--progress[=FD]] [--json]
 *
 * Offline, with no server.  TARGET is a backup image (raw or qcow2, full
 * or the top of a chain of incrementals); what it represents is the
 * snapshot it was made of.  The steps:
 *
 *   1. The chain TARGET reads (backup-chain.h, SC_CHAIN_READ): its
 *      manifest, and for a qcow2 incremental every link of its backing
 *      chain, matched with QEMU's.  A raw incremental holds its whole
 *      content and needs no other link.
 *   2. The image is opened through qemu-nbd (image-nbd.h), read-only,
 *      and must be the volume's size; DEST is opened (restore-dest.h): a
 *      DEST smaller than the volume is refused, a larger one taken (the
 *      summary says what was left past the volume).  A DEST that is a
 *      file of the chain (all of it, down to the full backup, copies
 *      beside and originals both: a raw incremental's PREV too), or
 *      writes onto one through a loop device, a partition or
 *      device-mapper (storage-overlap.h), is refused; an NBD URI cannot
 *      be checked.
 *   3. The image is read block by block (image-reader.h), several blocks
 *      in flight, and each block is checked against the manifest's
 *      CRC32C before any of it is written: a damaged backup stops the
 *      restore at its first damaged block, named, with exit 1 and DEST
 *      partly written (the blocks before it).  Within a block, runs of
 *      zeros (4 KiB pieces) are not written to a new file (it stays
 *      sparse) and are zeroed in an existing DEST (it may hold old
 *      data); the rest is written.
 *   4. DEST is flushed (fsync; NBD flush).
 *
 * Exit 0 restored, 1 error or damage (DEST then partly written, as
 * said), 2 usage.
 */
#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <libnbd.h>

#include "cow/io.h"
#include "tools/backup-chain.h"
#include "tools/cli.h"
#include "tools/commands.h"
#include "tools/image-nbd.h"
#include "tools/image-reader.h"
#include "tools/json.h"
#include "tools/progress.h"
#include "tools/restore-dest.h"
#include "tools/storage-overlap.h"

#define ZERO_UNIT 4096u

struct args {
  const char *target, *dest;
  bool json;
  struct sc_progress progress;
};

struct restore {
  struct sc_restore_dest *d;
  bool dest_zero;
  uint64_t written, zeroed;
  uint64_t done;                /* bytes of DEST restored, from 0 */
};

static int
parse_args (int argc, char **argv, struct args *a)
{
  for (int i = 0; i < argc; i++) {
    const char *s = argv[i];
    int p;
    if (strcmp (s, "--to") == 0) {
      if (i + 1 >= argc)
        return sc_cli_usage_error ("restore: --to needs DEST");
      a->dest = argv[++i];
    }
    else if (strcmp (s, "--json") == 0)
      a->json = true;
    else if ((p = sc_progress_option ("restore", s, &a->progress)) != 0) {
      if (p != 1)
        return p;
    }
    else if (strcmp (s, "--") == 0 && i + 1 < argc && !a->target)
      a->target = argv[++i];
    else if (s[0] == '-')
      return sc_cli_usage_error ("restore: unexpected option '%s'", s);
    else if (!a->target)
      a->target = s;
    else
      return sc_cli_usage_error ("restore: unexpected argument '%s'", s);
  }
  if (!a->target || !a->dest)
    return sc_cli_usage_error ("restore needs TARGET (a backup image) and "
                               "--to DEST");
  if (!*a->target || !*a->dest)
    return sc_cli_usage_error ("restore: TARGET and DEST must not be empty");
  return EXIT_SUCCESS;
}

/* A run of len bytes at off, all zeros or data. */
static int
put_run (struct restore *x, uint64_t off, const char *data, size_t len,
         char *err, size_t errlen)
{
  int r = 0;

  if (!data) {
    if (!x->dest_zero)
      r = sc_restore_dest_zero (x->d, off, len, err, errlen);
    x->zeroed += len;
  }
  else {
    r = sc_restore_dest_write (x->d, data, len, off, err, errlen);
    x->written += len;
  }
  return r;
}

/* A verified block of the image, written to DEST in runs. */
static int
on_block (void *opaque, uint64_t off, const char *buf, size_t len,
          char *err, size_t errlen)
{
  struct restore *x = opaque;
  size_t i = 0;
  int r = 0;

  if (!buf)
    r = put_run (x, off, NULL, len, err, errlen);
  while (buf && i < len && r == 0) {
    size_t k = len - i < ZERO_UNIT ? len - i : ZERO_UNIT;
    bool zero = sc_io_all_zero (buf + i, k);
    size_t j = i + k;
    while (j < len) {
      size_t kk = len - j < ZERO_UNIT ? len - j : ZERO_UNIT;
      if (sc_io_all_zero (buf + j, kk) != zero)
        break;
      j += kk;
    }
    r = put_run (x, off + i, zero ? NULL : buf + i, j - i, err, errlen);
    i = j;
  }
  if (r == 0)
    x->done = off + len;
  return r;
}

/* DEST against every file of the backup's chain (backup-chain.h,
 * sc_chain_each_file: all of it, not only the links restore reads). */
struct clash {
  const char *dest;
  const struct sc_chain *c;
  char msg[PATH_MAX + 512];
};

static int
check_file (void *opaque, const char *path)
{
  struct clash *x = opaque;
  bool read = false;
  const char *what;

  for (size_t i = 0; i < x->c->n && !read; i++)
    read = strcmp (path, x->c->v[i].image) == 0 ||
      strcmp (path, x->c->v[i].manifest) == 0;
  what = read ? "a file of the backup itself" : "a file of the backup's "
    "chain";
  switch (sc_storage_overlap (x->dest, path)) {
  case SC_STORAGE_APART:
    return 0;
  case SC_STORAGE_SAME:
    snprintf (x->msg, sizeof x->msg, "is %s, %s", path, what);
    return 1;
  case SC_STORAGE_STACKED:
    snprintf (x->msg, sizeof x->msg, "would write over %s, %s, through a "
              "block device stacked on it (a loop device, a partition, "
              "device-mapper)", path, what);
    return 1;
  }
  return 0;
}

static void
print_summary (const struct args *a, const struct sc_chain *c,
               const struct restore *x)
{
  const struct sc_manifest *m = &c->v[0].m;
  uint64_t dsize = sc_restore_dest_size (x->d);

  if (a->json) {
    struct sc_json j;
    sc_json_init (&j, stdout);
    sc_json_begin_object (&j);
    sc_json_member_string (&j, "target", a->target);
    sc_json_member_string (&j, "dest", a->dest);
    sc_json_member_string (&j, "dest-kind", sc_restore_dest_kind (x->d));
    sc_json_member_string (&j, "format", m->format);
    sc_json_member_string (&j, "type", m->incremental ? "incremental"
                           : "full");
    sc_json_member_uint (&j, "links-read", c->n);
    sc_json_key (&j, "chain");
    sc_json_begin_array (&j);
    for (size_t i = 0; i < c->n; i++) {
      sc_json_begin_object (&j);
      sc_json_member_string (&j, "image", c->v[i].image);
      sc_json_member_string (&j, "found", i == 0 ? "target" : c->v[i].moved
                             ? "beside" : "recorded");
      sc_json_end_object (&j);
    }
    sc_json_end_array (&j);
    sc_json_member_string (&j, "snapshot", m->snapshot_name);
    sc_json_member_string (&j, "snapshot-uuid", m->snapshot_uuid);
    sc_json_member_string (&j, "volume-uuid", m->volume_uuid);
    sc_json_member_uint (&j, "volume-size", m->volume_size);
    sc_json_member_uint (&j, "dest-size", dsize);
    sc_json_member_uint (&j, "bytes-written", x->written);
    sc_json_member_uint (&j, "bytes-zeroed", x->zeroed);
    sc_json_end_object (&j);
    return;
  }
  printf ("%s: restored %s (snapshot %s, %" PRIu64 " bytes): %" PRIu64
          " bytes written, %" PRIu64 " %s\n", a->dest, a->target,
          m->snapshot_name, m->volume_size, x->written, x->zeroed,
          x->dest_zero ? "left as holes" : "zeroed");
  sc_chain_print_where (c, stdout);
  if (dsize > m->volume_size)
    printf ("%s: it is %" PRIu64 " bytes, larger than the volume: the "
            "%" PRIu64 " bytes past it were left as they were\n", a->dest,
            dsize, dsize - m->volume_size);
}

int
sc_cmd_restore (const struct sc_cli_target *t, int argc, char **argv)
{
  struct args a = { .progress = SC_PROGRESS_INIT };
  struct sc_chain c;
  struct sc_image_damage bad;
  struct restore x = { NULL };
  struct nbd_handle *nbd = NULL;
  struct clash clash;
  char err[2048] = "";
  uint64_t vsize = 0;
  int st, r;

  (void) t;
  st = parse_args (argc, argv, &a);
  if (st != EXIT_SUCCESS)
    return st;

  if ((r = sc_chain_open (a.target, SC_CHAIN_READ, &c, err,
                          sizeof err)) < 0) {
    sc_cli_error ("restore %s: %s", a.target, err);
    goto out;
  }
  /* An NBD URI cannot be checked: its server's files are not known. */
  clash.dest = a.dest;
  clash.c = &c;
  if (!sc_restore_dest_is_uri (a.dest) &&
      (r = sc_chain_each_file (&c, check_file, &clash)) != 0) {
    if (r > 0)
      sc_cli_error ("restore %s: --to %s %s", a.target, a.dest, clash.msg);
    else
      sc_cli_error ("restore %s: %s", a.target, strerror (-r));
    r = -EINVAL;
    goto out;
  }
  if ((r = sc_image_nbd_open (a.target, c.v[0].format, false, &nbd, &vsize,
                              err, sizeof err)) < 0) {
    sc_cli_error ("restore %s: %s", a.target, err);
    goto out;
  }
  if (vsize != c.v[0].m.volume_size) {
    sc_cli_error ("restore %s: damaged: its image is %" PRIu64 " bytes; its "
                  "manifest says %" PRIu64, a.target, vsize,
                  c.v[0].m.volume_size);
    r = -EIO;
    goto out;
  }
  if ((r = sc_restore_dest_open (a.dest, vsize, &x.d, err,
                                 sizeof err)) < 0) {
    sc_cli_error ("restore %s: %s", a.target, err);
    goto out;
  }
  x.dest_zero = sc_restore_dest_is_zero (x.d);
  sc_progress_start (&a.progress);
  r = sc_image_read_verified (nbd, a.target, &c.v[0].m, on_block, &x,
                              a.progress.on ? sc_progress_update : NULL,
                              &a.progress, &bad, err, sizeof err);
  if (r == 0)
    r = sc_restore_dest_flush (x.d, err, sizeof err);
  if (r < 0) {
    if (x.done)
      sc_cli_error ("restore %s to %s: %s; %s is partly written: only its "
                    "bytes 0-%" PRIu64 " are restored", a.target, a.dest,
                    err, a.dest, x.done - 1);
    else
      sc_cli_error ("restore %s to %s: %s; %s is partly written: none of "
                    "it is restored", a.target, a.dest, err, a.dest);
    goto out;
  }
  print_summary (&a, &c, &x);

out:
  sc_restore_dest_close (x.d);
  if (nbd) {
    nbd_shutdown (nbd, 0);
    nbd_close (nbd);
  }
  sc_chain_free (&c);
  return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
