/* shadowcopy verify: a backup, and the chain it belongs to, checked
 * against their manifests; optionally compared with the snapshot.
 *
 *   shadowcopy verify TARGET [--json]
 *   shadowcopy -c SOCK | --diff DIFF verify TARGET --against SNAPSHOT
 *              --nbd-socket NBDSOCK | --nbd-uri URI [--json]
 *
 * Offline, with no server (but for --against):
 *   1. The chain (backup-chain.h, SC_CHAIN_WHOLE): TARGET's manifest,
 *      and for an incremental every link down to the full backup, each
 *      manifest read strictly and checked to be its child's base; for
 *      qcow2, QEMU's backing chain must be the manifests'.  A missing,
 *      damaged or foreign link is named, with where it was looked for.
 *   2. Every image of the chain, from the full backup up (damage in a
 *      qcow2 link shows through the overlays above it, so the lowest
 *      damaged link is named): it must be the
 *      volume's size, and every block's CRC32C its manifest's.  A raw
 *      image is read from its file (holes not read); a qcow2 one through
 *      qemu-nbd, its backing chain included (the CRCs are of the image's
 *      content as a disk).  The first damaged block is named by its byte
 *      range.
 *   3. --against SNAPSHOT: the snapshot (named over the control socket)
 *      must be the one TARGET was made of (by UUID), and TARGET's
 *      content is compared byte for byte with its export (NBDSOCK, the
 *      export named after it); the first differing block is named, with
 *      the first differing byte.
 *
 * Exit 0 clean, 1 damaged, different or an error (a SNAPSHOT that does
 * not exist too), 2 usage (a SNAPSHOT that is not a valid name too).  --json
 * prints one object on stdout whatever the outcome (but usage errors),
 * with "status": clean, damaged, broken (the chain), different or error.
 */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libnbd.h>

#include "cow/io.h"
#include "tools/backup-chain.h"
#include "tools/cli.h"
#include "tools/commands.h"
#include "tools/diff-result.h"
#include "tools/image-nbd.h"
#include "tools/image-reader.h"
#include "tools/image-sums.h"
#include "tools/json.h"
#include "tools/nbd-guard.h"
#include "tools/nbd-listen.h"
#include "tools/export-identity.h"

struct args {
  const char *target, *against;
  struct sc_nbd_target nbd;     /* --nbd-socket or --nbd-uri */
  bool json;
  char found[PATH_MAX];         /* the NBD socket the server told (INFO) */
};

/* What was found, for the message and --json. */
struct outcome {
  const char *status;           /* clean, damaged, broken, different,
                                   error */
  char error[2048];
  bool have_damage;
  size_t link;                  /* the damaged link, from 0 */
  struct sc_image_damage damage;
  bool compared;                /* --against ran to the end */
  bool have_diff;
  uint64_t diff_offset, diff_length, diff_byte;
  char against_uuid[SC_UUID_TEXT_LEN];
};

static int
parse_args (const struct sc_cli_target *t, int argc, char **argv,
            struct args *a)
{
  for (int i = 0; i < argc; i++) {
    const char *s = argv[i];
    if (strcmp (s, "--against") == 0 || strcmp (s, "--nbd-socket") == 0 ||
        strcmp (s, "--nbd-uri") == 0) {
      if (i + 1 >= argc)
        return sc_cli_usage_error ("verify: %s needs a value", s);
      if (strcmp (s, "--against") == 0)
        a->against = argv[++i];
      else if (sc_nbd_target_set (&a->nbd))   /* one server, as mount */
        return sc_cli_usage_error ("verify: %s", (a->nbd.uri != NULL) ==
                                   (strcmp (s, "--nbd-uri") == 0)
                                   ? "one NBD server: --nbd-socket or "
                                     "--nbd-uri given twice"
                                   : "--nbd-socket or --nbd-uri, not both");
      else if (strcmp (s, "--nbd-socket") == 0)
        a->nbd = (struct sc_nbd_target) { .socket = argv[++i] };
      else
        a->nbd = (struct sc_nbd_target) { .uri = argv[++i] };
    }
    else if (strcmp (s, "--json") == 0)
      a->json = true;
    else if (strcmp (s, "--") == 0 && i + 1 < argc && !a->target)
      a->target = argv[++i];
    else if (s[0] == '-')
      return sc_cli_usage_error ("verify: unexpected option '%s'", s);
    else if (!a->target)
      a->target = s;
    else
      return sc_cli_usage_error ("verify: unexpected argument '%s'", s);
  }
  if (!a->target)
    return sc_cli_usage_error ("verify needs TARGET (a backup image)");
  if (a->against) {
    if (!t->socket && !t->diff)
      return sc_cli_usage_error ("verify --against needs -c SOCKET or "
                                 "--diff DIFFAREA to name the snapshot");
    char err[1024];
    if (a->nbd.uri && sc_nbd_uri_check (a->nbd.uri, err, sizeof err) < 0)
      return sc_cli_usage_error ("verify: %s", err);
    /* Not a name at all is a usage error (2); a valid name that names
     * no snapshot is found out later, an error (1). */
    if (!sc_cli_name_ok (a->against))
      return SC_EXIT_USAGE;
  }
  else if (sc_nbd_target_set (&a->nbd))
    return sc_cli_usage_error ("verify: --nbd-socket or --nbd-uri goes with "
                               "--against");
  return EXIT_SUCCESS;
}

/* ---- the images ---------------------------------------------------------- */

/* A raw image, from its file. */
static int
verify_raw (const struct sc_chain_link *l, struct outcome *o)
{
  const struct sc_manifest *m = &l->m;
  char err[1536];
  struct stat st;
  uint64_t bad;
  uint32_t found;
  int fd, r;

  fd = open (l->image, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    r = -errno;
    snprintf (o->error, sizeof o->error, "cannot open %s: %s", l->image,
              strerror (-r));
    return r;
  }
  /* A raw backup may be a block device: its size is not st_size. */
  uint64_t size = 0;
  if (fstat (fd, &st) == 0)
    size = S_ISBLK (st.st_mode) ? (ioctl (fd, BLKGETSIZE64, &size) < 0 ? 0
                                   : size) : (uint64_t) st.st_size;
  if (size != m->volume_size) {
    snprintf (o->error, sizeof o->error, "%s is %" PRIu64 " bytes; its "
              "manifest says %" PRIu64, l->image, size, m->volume_size);
    close (fd);
    return -EBADMSG;
  }
  r = sc_image_first_bad_block (fd, l->image, m->volume_size, m->block_size,
                                m->crc, m->nblocks, &bad, &found, err,
                                sizeof err);
  close (fd);
  if (r < 0) {
    snprintf (o->error, sizeof o->error, "%s", err);
    return r;
  }
  if (bad < m->nblocks) {
    uint64_t start = bad * m->block_size;
    uint64_t len = m->volume_size - start < m->block_size
      ? m->volume_size - start : m->block_size;
    o->damage = (struct sc_image_damage) { .block = bad, .offset = start,
                                           .length = len, .found = found,
                                           .want = m->crc[bad] };
    o->have_damage = true;
    return -EBADMSG;
  }
  return 0;
}

/* A qcow2 image, through qemu-nbd with its backing chain. */
static int
verify_nbd (const struct sc_chain_link *l, struct outcome *o)
{
  struct nbd_handle *nbd;
  uint64_t size;
  int r;

  r = sc_image_nbd_open (l->image, l->format, false, &nbd, &size, o->error,
                         sizeof o->error);
  if (r < 0)
    return r;
  if (size != l->m.volume_size) {
    snprintf (o->error, sizeof o->error, "%s is %" PRIu64 " bytes; its "
              "manifest says %" PRIu64, l->image, size, l->m.volume_size);
    r = -EBADMSG;
  }
  else {
    r = sc_image_read_verified (nbd, l->image, &l->m, NULL, NULL, NULL, NULL,
                                &o->damage, o->error, sizeof o->error);
    o->have_damage = r == -EBADMSG;
  }
  nbd_shutdown (nbd, 0);
  nbd_close (nbd);
  return r;
}

/* ---- --against ----------------------------------------------------------- */

struct compare {
  struct nbd_handle *snap;
  const char *name;
  char *buf;
  struct outcome *o;
};

static int
compare_block (void *opaque, uint64_t off, const char *buf, size_t len,
               char *err, size_t errlen)
{
  struct compare *x = opaque;

  if (nbd_pread (x->snap, x->buf, len, off, 0) < 0) {
    snprintf (err, errlen, "cannot read snapshot %s at %" PRIu64 ": %s",
              x->name, off, nbd_get_error ());
    return -(nbd_get_errno () ?: EIO);
  }
  if (buf ? memcmp (buf, x->buf, len) == 0 : sc_io_all_zero (x->buf, len))
    return 0;
  for (size_t i = 0; i < len; i++)
    if ((buf ? buf[i] : 0) != x->buf[i]) {
      x->o->diff_byte = off + i;
      break;
    }
  x->o->have_diff = true;
  x->o->diff_offset = off;
  x->o->diff_length = len;
  snprintf (err, errlen, "differs");
  return -ECANCELED;
}

/* Who SNAPSHOT is, by its server. */
static int
identify (struct shadowcopy *c, const char *name, struct sc_diff *id,
          char *err, size_t errlen)
{
  memset (id, 0, sizeof *id);
  int r = sc_cli_diff_fetch (c, name, name, id, err, errlen);
  free (id->v);
  id->v = NULL;
  if (r == 0 && strcmp (id->to.type, "snapshot") != 0) {
    snprintf (err, errlen, "%s is a %s, not a snapshot: it has no data to "
              "compare", name, id->to.type);
    r = -EINVAL;
  }
  return r;
}

static int
against (const struct sc_cli_target *t, const struct args *a,
         const struct sc_chain_link *top, struct outcome *o)
{
  const struct sc_manifest *m = &top->m;
  struct compare x = { .name = a->against, .o = o };
  struct nbd_handle *img = NULL;
  struct shadowcopy *c = NULL;
  struct sc_diff id, id2;
  char why[1536];
  uint64_t size;
  int64_t got;
  int r;

  if (sc_cli_open_target (t, SHADOWCOPY_OPEN_SERVER, &c) != EXIT_SUCCESS) {
    snprintf (o->error, sizeof o->error, "--against %s: cannot reach the "
              "volume's server (said above)", a->against);
    return -EIO;
  }
  if ((r = identify (c, a->against, &id, why, sizeof why)) < 0) {
    snprintf (o->error, sizeof o->error, "--against %s: %s", a->against,
              why);
    goto out;
  }
  snprintf (o->against_uuid, sizeof o->against_uuid, "%s", id.to.uuid);
  if (strcmp (id.to.uuid, m->snapshot_uuid) != 0 ||
      strcmp (id.volume, m->volume_uuid) != 0) {
    snprintf (o->error, sizeof o->error, "--against %s: snapshot %s has UUID "
              "%s (volume %s), but %s is a backup of snapshot %s, UUID %s "
              "(volume %s): not the same snapshot, so not compared",
              a->against, a->against, id.to.uuid, id.volume, a->target,
              m->snapshot_name, m->snapshot_uuid, m->volume_uuid);
    r = -EINVAL;
    goto out;
  }
  /* Guarded: a kill -9 of the CLI with a read in flight must not abort
   * nbdkit 1.32 (tools/nbd-guard.c). */
  why[0] = '\0';
  if (!(x.snap = nbd_create ()) || nbd_set_full_info (x.snap, true) < 0)
    snprintf (why, sizeof why, "%s", nbd_get_error ());
  else
    sc_nbd_guard_connect (x.snap, &a->nbd, a->against, why, sizeof why);
  if (why[0]) {
    snprintf (o->error, sizeof o->error, "cannot open the export of %s on "
              "%s: %s", a->against, sc_nbd_target_text (&a->nbd), why);
    r = -EIO;
    goto out;
  }
  /* The export is that snapshot, not another volume's of the same name
   * (export-identity.h). */
  if ((r = sc_export_identity_check (x.snap, a->against,
                                     sc_nbd_target_text (&a->nbd),
                                     id.to.uuid, o->error,
                                     sizeof o->error)) < 0)
    goto out;
  if ((got = nbd_get_size (x.snap)) < 0 || (uint64_t) got != m->volume_size) {
    snprintf (o->error, sizeof o->error, "the export of %s on %s is %" PRId64
              " bytes; the backup's volume is %" PRIu64, a->against,
              sc_nbd_target_text (&a->nbd), got, m->volume_size);
    r = -EIO;
    goto out;
  }
  if ((r = sc_image_nbd_open (top->image, top->format, false, &img, &size,
                              o->error, sizeof o->error)) < 0)
    goto out;
  if (!(x.buf = malloc (m->block_size))) {
    snprintf (o->error, sizeof o->error, "%s", strerror (ENOMEM));
    r = -ENOMEM;
    goto out;
  }
  r = sc_image_read_verified (img, top->image, m, compare_block, &x, NULL,
                              NULL, &o->damage, why, sizeof why);
  if (r == -EBADMSG)
    o->have_damage = true;
  if (r < 0 && r != -ECANCELED) {
    snprintf (o->error, sizeof o->error, "%s", why);
    goto out;
  }
  /* The snapshot compared must still be the one named at the start. */
  if (identify (c, a->against, &id2, why, sizeof why) < 0 ||
      strcmp (id2.to.uuid, id.to.uuid) != 0) {
    snprintf (o->error, sizeof o->error, "--against %s: the snapshot was "
              "deleted or made again during the comparison", a->against);
    o->have_diff = false;
    r = -ESTALE;
    goto out;
  }
  o->compared = true;
  r = o->have_diff ? -ECANCELED : 0;

out:
  free (x.buf);
  if (img) {
    nbd_shutdown (img, 0);
    nbd_close (img);
  }
  sc_nbd_guard_close (x.snap);
  sc_cli_close_target (c, EXIT_SUCCESS);
  return r;
}

/* ---- output -------------------------------------------------------------- */

static void
print_json (const struct args *a, const struct sc_chain *c,
            const struct outcome *o)
{
  struct sc_json j;

  sc_json_init (&j, stdout);
  sc_json_begin_object (&j);
  sc_json_member_string (&j, "target", a->target);
  sc_json_member_string (&j, "status", o->status);
  if (strcmp (o->status, "clean") != 0)
    sc_json_member_string (&j, "error", o->error);
  sc_json_key (&j, "chain");
  sc_json_begin_array (&j);
  for (size_t i = 0; i < c->n; i++) {
    const struct sc_chain_link *l = &c->v[i];
    if (!l->image || l->m.version == 0)
      continue;                 /* a link whose manifest could not be read */
    sc_json_begin_object (&j);
    sc_json_member_string (&j, "image", l->image);
    sc_json_member_string (&j, "manifest", l->manifest);
    sc_json_member_string (&j, "format", l->m.format);
    sc_json_member_string (&j, "type", l->m.incremental ? "incremental"
                           : "full");
    sc_json_member_string (&j, "snapshot", l->m.snapshot_name);
    sc_json_member_string (&j, "snapshot-uuid", l->m.snapshot_uuid);
    sc_json_member_bool (&j, "moved", l->moved);
    sc_json_member_string (&j, "found", i == 0 ? "target" : l->moved
                           ? "beside" : "recorded");
    if (l->recorded)
      sc_json_member_string (&j, "recorded-manifest", l->recorded);
    if (l->note)
      sc_json_member_string (&j, "note", l->note);
    sc_json_end_object (&j);
  }
  sc_json_end_array (&j);
  if (o->have_damage) {
    sc_json_key (&j, "damaged");
    sc_json_begin_object (&j);
    sc_json_member_string (&j, "image", c->v[o->link].image);
    sc_json_member_uint (&j, "link", o->link + 1);
    sc_json_member_uint (&j, "offset", o->damage.offset);
    sc_json_member_uint (&j, "length", o->damage.length);
    sc_json_end_object (&j);
  }
  if (a->against) {
    sc_json_key (&j, "against");
    sc_json_begin_object (&j);
    sc_json_member_string (&j, "snapshot", a->against);
    sc_json_member_string (&j, "snapshot-uuid", o->against_uuid);
    sc_json_member_bool (&j, "compared", o->compared);
    if (o->compared)
      sc_json_member_bool (&j, "same", !o->have_diff);
    if (o->have_diff) {
      sc_json_member_uint (&j, "offset", o->diff_offset);
      sc_json_member_uint (&j, "length", o->diff_length);
      sc_json_member_uint (&j, "first-byte", o->diff_byte);
    }
    sc_json_end_object (&j);
  }
  sc_json_end_object (&j);
}

int
sc_cmd_verify (const struct sc_cli_target *t, int argc, char **argv)
{
  struct args a = { NULL };
  struct outcome o = { .status = "clean" };
  struct sc_chain c;
  int st, r = 0;

  st = parse_args (t, argc, argv, &a);
  if (st != EXIT_SUCCESS)
    return st;
  /* --against without --nbd-socket or --nbd-uri: where the server says
   * it listens. */
  if (a.against && !sc_nbd_target_set (&a.nbd)) {
    char buf[4096];
    if (sc_nbd_listen_socket (sc_cli_target_socket (t, buf, sizeof buf),
                              a.found, sizeof a.found) != EXIT_SUCCESS)
      return EXIT_FAILURE;
    a.nbd = (struct sc_nbd_target) { .socket = a.found };
  }

  if ((r = sc_chain_open (a.target, SC_CHAIN_WHOLE, &c, o.error,
                          sizeof o.error)) < 0) {
    /* TARGET's own manifest is damaged or missing; else a link below. */
    if (c.n == 0 || c.v[0].m.version == 0)
      o.status = r == -EINVAL ? "damaged" : "error";
    else
      o.status = "broken";
    sc_cli_error ("verify %s: %s", a.target, o.error);
    goto out;
  }
  /* From the full backup up: damage in a qcow2 link shows through every
   * overlay above it, so the lowest damaged link is where it is. */
  for (size_t i = c.n; i-- > 0 && r == 0;) {
    const struct sc_chain_link *l = &c.v[i];
    o.link = i;
    r = l->format == SC_IMAGE_RAW ? verify_raw (l, &o) : verify_nbd (l, &o);
    if (r == -EBADMSG) {
      char where[512] = "";
      o.status = "damaged";
      if (c.n > 1)
        snprintf (where, sizeof where, "; link %zu of %zu, the backup of "
                  "snapshot %s", i + 1, c.n, l->m.snapshot_name);
      if (o.have_damage)
        snprintf (o.error, sizeof o.error, "damaged: bytes %" PRIu64 "-%"
                  PRIu64 " of %s (block %" PRIu64 " of %" PRIu64 " bytes%s):"
                  " CRC32C %08x, the manifest says %08x", o.damage.offset,
                  o.damage.offset + o.damage.length - 1, l->image,
                  o.damage.block, l->m.block_size, where, o.damage.found,
                  o.damage.want);
      else {
        char msg[sizeof o.error];
        snprintf (msg, sizeof msg, "%s", o.error);
        if (where[0])
          snprintf (o.error, sizeof o.error, "damaged: %.1500s (%.500s)", msg,
                    where + 2);
        else
          snprintf (o.error, sizeof o.error, "damaged: %.1500s", msg);
      }
    }
    else if (r < 0)
      o.status = "error";
  }
  if (r < 0) {
    sc_cli_error ("verify %s: %s", a.target, o.error);
    goto out;
  }
  if (a.against) {
    r = against (t, &a, &c.v[0], &o);
    if (r == -ECANCELED) {
      o.status = "different";
      snprintf (o.error, sizeof o.error, "differs from snapshot %s: bytes %"
                PRIu64 "-%" PRIu64 " (block %" PRIu64 " of %" PRIu64
                " bytes), first at byte %" PRIu64, a.against, o.diff_offset,
                o.diff_offset + o.diff_length - 1,
                o.diff_offset / c.v[0].m.block_size, c.v[0].m.block_size,
                o.diff_byte);
    }
    else if (r == -EBADMSG) {
      o.status = "damaged";
      snprintf (o.error, sizeof o.error, "damaged: bytes %" PRIu64 "-%"
                PRIu64 " of %s (found during the comparison)",
                o.damage.offset, o.damage.offset + o.damage.length - 1,
                a.target);
    }
    else if (r < 0)
      o.status = "error";
    if (r < 0) {
      sc_cli_error ("verify %s: %s", a.target, o.error);
      goto out;
    }
  }
  if (!a.json) {
    if (c.n == 1)
      printf ("%s: clean: %" PRIu64 " blocks of %" PRIu64 " bytes match "
              "its manifest", a.target, c.v[0].m.nblocks,
              c.v[0].m.block_size);
    else
      printf ("%s: clean: a chain of %zu backups down to the full backup %s,"
              " every block of each matching its manifest", a.target, c.n,
              c.v[c.n - 1].image);
    if (a.against)
      printf ("; the same as snapshot %s, byte for byte", a.against);
    printf ("\n");
    sc_chain_print_where (&c, stdout);
  }

out:
  if (a.json)
    print_json (&a, &c, &o);
  sc_chain_free (&c);
  return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
