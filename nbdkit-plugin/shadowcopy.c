/* nbdkit-shadowcopy-plugin: live point-in-time snapshots over NBD.
 *
 * A thin adapter: with its parameters parsed by parameters.c, it maps export
 * names to the live volume or a snapshot, and forwards requests to
 * engine/volume.h.
 *
 *   nbdkit shadowcopy disk=ORIGIN diff=DIFFAREA [chunk-size=SIZE]
 *                     [control=SOCKET]
 *
 * Exports "" and "live" are the live volume (read-write); every valid
 * snapshot is exported read-only under its own name, every writable
 * clone read-write under its own.  Checkpoints keep no data: they are
 * never listed, and opening one is refused.
 */
#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NBDKIT_API_VERSION 2
#include <nbdkit-plugin.h>

#include "cow/fault.h"
#include "cow/format.h"
#include "cow/io.h"
#include "cow/uuid.h"
#include "engine/control-protocol.h"
#include "engine/control.h"
#include "engine/origin.h"
#include "engine/volume.h"
#include "nbdkit-plugin/access.h"
#include "nbdkit-plugin/parameters.h"

/* "writable clone of BASE id=N uuid=U created=T (read-write)" with the
 * longest name */
#define SNAPSHOT_DESCRIPTION_MAX (SC_NAME_MAX + 256)

/* -D shadowcopy.cow=1: log each copy-on-write decision path. */
NBDKIT_DLL_PUBLIC int shadowcopy_debug_cow;
/* -D shadowcopy.diff_pages=1: compute every DIFF page by itself, as past
 * 8M changed chunks (for tests of the paths that only then run). */
NBDKIT_DLL_PUBLIC int shadowcopy_debug_diff_pages;


static struct sc_volume *volume;
static struct sc_control *control;

#define LIVE_EXPORT "live"

static void
forward_debug (const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  nbdkit_vdebug (fmt, ap);
  va_end (ap);
}

static void
forward_notice (const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  nbdkit_verror (fmt, ap);
  va_end (ap);
}

static void shadowcopy_cleanup (void);

static int
shadowcopy_get_ready (void)
{
  char err[1024] = "";
  sc_debug = forward_debug;
  sc_notice = forward_notice;
  sc_debug_cow = shadowcopy_debug_cow;
  if (shadowcopy_debug_diff_pages)
    sc_changes_whole_max = 0;
  struct sc_volume_config cfg = pcfg.space;
  cfg.origin_path = pcfg.disk;
  cfg.diff_path = pcfg.diff;
  cfg.chunk_size = pcfg.chunk_size;
  cfg.volatile_durability = pcfg.volatile_durability;
  cfg.write_back = pcfg.write_back;
  int r = sc_volume_open (&cfg, &volume, err, sizeof err);
  if (r < 0) {
    nbdkit_error ("%s", err);
    return -1;
  }
  /* The shell tests' I/O faults (cow/fault-file.c); never in service. */
  const char *faults = getenv ("SHADOWCOPY_TEST_IO_FAULTS");
  if (faults && faults[0] &&
      (r = sc_io_fault_file_install (faults, pcfg.diff,
                                     sc_volume_chunk_size (volume))) < 0)
    nbdkit_error ("SHADOWCOPY_TEST_IO_FAULTS: %s", strerror (-r));
  else if (faults && faults[0])
    nbdkit_debug ("test I/O faults from %s", faults);
  r = sc_control_bind (pcfg.control, &control, err, sizeof err);
  if (r < 0) {
    nbdkit_error ("%s", err);
    sc_volume_close (volume);
    volume = NULL;
    return -1;
  }
  if (sc_control_set_listen (control, pcfg.listen_uri) < 0) {
    nbdkit_error ("out of memory");
    shadowcopy_cleanup ();
    return -1;
  }
  return 0;
}

static int
shadowcopy_after_fork (void)
{
  int r = sc_control_start (control, volume);
  if (r < 0) {
    nbdkit_error ("starting the control server on %s: %s", pcfg.control,
                  strerror (-r));
    return -1;
  }
  r = sc_volume_start_retry (volume);
  if (r < 0) {
    nbdkit_error ("starting the diff area's retry thread: %s",
                  strerror (-r));
    return -1;
  }
  nbdkit_debug ("serving %s with diff area %s (chunk size %" PRIu32
                "), control socket %s, io_uring %s", pcfg.disk, pcfg.diff,
                sc_volume_chunk_size (volume), pcfg.control,
                sc_io_uring_active () ? "on" : "off (pread/pwrite)");
  return 0;
}

static void
shadowcopy_cleanup (void)
{
  if (control)
    sc_control_stop (control);
  control = NULL;
  sc_volume_close (volume);
  volume = NULL;
}

/* ---- exports -------------------------------------------------------- */

/* The description carries the snapshot's UUID ("uuid=", as the control
 * protocol gives it): the CLI reads a snapshot's identity from the
 * control socket and its bytes from the NBD server, and compares the two
 * (tools/export-identity.c), so that another volume's server is never
 * read in its place. */
static void
snapshot_description (const struct sc_snapshot_info *s, char *buf,
                      size_t len)
{
  char when[64], uuid[SC_UUID_TEXT_LEN];
  sc_ctl_format_time (s->ctime_ns, when, sizeof when);
  sc_uuid_format (s->uuid, uuid);
  if (s->clone)
    snprintf (buf, len, "writable clone of %s id=%" PRIu64 " uuid=%s "
              "created=%s (read-write)", s->base_name, s->id, uuid, when);
  else
    snprintf (buf, len, "snapshot id=%" PRIu64 " uuid=%s created=%s "
              "(read-only)", s->id, uuid, when);
}

/* tls-for=, allow-uid= (access.c) */
static int
shadowcopy_preconnect (int readonly)
{
  return access_preconnect ();
}

/* Exports a client may not open (tls-for=, access.c) are not listed.
 * readonly (nbdkit -r): no connection can write, so the live volume and
 * the clones are not writable exports here. */
static int
shadowcopy_list_exports (int readonly, int is_tls, struct nbdkit_exports *e)
{
  char desc[SNAPSHOT_DESCRIPTION_MAX];
  snprintf (desc, sizeof desc, "live volume %s (%" PRIu64 " bytes)",
            pcfg.disk, sc_volume_size (volume));
  if (access_may_list (!readonly, is_tls) &&
      nbdkit_add_export (e, LIVE_EXPORT, desc) == -1)
    return -1;

  struct sc_snapshot_info *snaps;
  size_t n;
  int r = sc_volume_snapshot_list (volume, &snaps, &n);
  if (r < 0) {
    nbdkit_error ("listing snapshots: %s", strerror (-r));
    return -1;
  }
  for (size_t i = 0; i < n && r == 0; i++) {
    if (snaps[i].invalid_reason != SC_VALID || snaps[i].checkpoint)
      continue;                 /* never served, so not listed */
    if (!access_may_list (snaps[i].clone && !readonly, is_tls))
      continue;
    snapshot_description (&snaps[i], desc, sizeof desc);
    r = nbdkit_add_export (e, snaps[i].name, desc);
  }
  free (snaps);
  return r;
}

static const char *
shadowcopy_default_export (int readonly, int is_tls)
{
  return LIVE_EXPORT;
}

struct handle {
  bool live;
  bool clone;                   /* snap_id is a writable clone's */
  bool no_trim;                 /* a snapshot read in plaintext under
                                   tls-for= (access.c): no trim */
  uint64_t ticket;              /* live: sc_volume_live_open's */
  uint64_t snap_id;
  uint64_t size;
  char name[SC_NAME_MAX + 1];
  char description[SNAPSHOT_DESCRIPTION_MAX];
};

static void *
shadowcopy_open (int readonly)
{
  const char *name = nbdkit_export_name ();
  struct handle *h = calloc (1, sizeof *h);
  if (!h) {
    nbdkit_error ("calloc: %m");
    return NULL;
  }
  /* readonly (nbdkit -r, or a filter opening us read-only): this
   * connection cannot write, so even live or a clone is not writable for
   * tls-for=write. */
  if (!name || !*name || strcmp (name, LIVE_EXPORT) == 0) {
    if (access_check_open (name ? name : "", !readonly,
                           nbdkit_is_tls ()) < 0) {
      free (h);
      return NULL;
    }
    h->live = true;
    h->ticket = sc_volume_live_open (volume);
    h->size = sc_volume_size (volume);
    snprintf (h->name, sizeof h->name, LIVE_EXPORT);
    snprintf (h->description, sizeof h->description, "live volume %s",
              pcfg.disk);
    return h;
  }

  /* tls-for=all: a plaintext client learns nothing of the snapshots;
   * a clone is checked again once known (access.c). */
  if (access_check_open (name, false, nbdkit_is_tls ()) < 0) {
    free (h);
    return NULL;
  }
  struct sc_snapshot_info info;
  int r = sc_volume_snapshot_lookup (volume, name, &info);
  if (r == 0 && info.clone &&
      access_check_open (info.name, !readonly, nbdkit_is_tls ()) < 0) {
    free (h);
    return NULL;
  }
  if (r == -ENOENT) {
    nbdkit_error ("unknown export '%.*s': it is neither \"live\" nor the "
                  "name of a snapshot", SC_NAME_MAX, name);
    nbdkit_set_error (ENOENT);
    free (h);
    return NULL;
  }
  if (r == 0 && info.checkpoint) {
    nbdkit_error ("%s is a checkpoint: it keeps no data; export a snapshot",
                  info.name);
    nbdkit_set_error (EINVAL);
    free (h);
    return NULL;
  }
  if (r < 0 || info.invalid_reason != SC_VALID) {
    nbdkit_error ("snapshot '%s' is invalid and cannot be served: %s%s%s",
                  name, r < 0 ? strerror (-r)
                              : sc_invalid_reason_text (info.invalid_reason),
                  info.invalid_errno ? ": " : "",
                  info.invalid_errno ? strerror (info.invalid_errno) : "");
    nbdkit_set_error (EIO);
    free (h);
    return NULL;
  }
  h->snap_id = info.id;
  h->clone = info.clone;
  h->no_trim = !h->clone && access_plaintext_readonly (nbdkit_is_tls ());
  if (h->clone && (r = sc_volume_clone_read (volume, h->snap_id, NULL, 0,
                                             0)) < 0) {
    nbdkit_error ("clone '%s' cannot be served: %s", name,
                  r == -EIO ? "it is damaged, or its base snapshot is "
                              "invalid" : strerror (-r));
    nbdkit_set_error (-r);
    free (h);
    return NULL;
  }
  h->size = info.volume_size;
  snprintf (h->name, sizeof h->name, "%s", info.name);
  snapshot_description (&info, h->description, sizeof h->description);
  return h;
}

static void
shadowcopy_close (void *handle)
{
  struct handle *h = handle;
  if (h->live)
    sc_volume_live_close (volume, h->ticket);
  free (handle);
}

/* A live connection revoked by `revert --force`: its caches are stale,
 * so every request fails from then on. */
static int
revoked (const struct handle *h)
{
  if (!h->live || sc_volume_live_check (volume, h->ticket) == 0)
    return 0;
  nbdkit_error ("this connection to the live volume was revoked by a "
                "revert (its cache is stale): reconnect");
  nbdkit_set_error (ESHUTDOWN);
  return -1;
}

static const char *
shadowcopy_export_description (void *handle)
{
  struct handle *h = handle;
  return h->description;
}

static int64_t
shadowcopy_get_size (void *handle)
{
  struct handle *h = handle;
  return (int64_t) h->size;
}

static int
shadowcopy_block_size (void *handle, uint32_t *minimum, uint32_t *preferred,
                       uint32_t *maximum)
{
  *minimum = 1;
  *preferred = sc_volume_chunk_size (volume);
  *maximum = 0xffffffff;
  return 0;
}

/* The live volume and writable clones take writes, zeros and flushes. */
static int
live_only (void *handle)
{
  struct handle *h = handle;
  return h->live || h->clone;
}

/* Snapshots are read-only for data, but with discard-snapshots=on their
 * reader may trim (NBD needs the export writable for that).  Trim is
 * allowed exactly where this is true. */
static int
shadowcopy_can_write (void *handle)
{
  struct handle *h = handle;
  return h->live || h->clone || (pcfg.discard_snapshots && !h->no_trim);
}

static int
shadowcopy_can_fua (void *handle)
{
  struct handle *h = handle;
  return h->live || h->clone ? NBDKIT_FUA_NATIVE : NBDKIT_FUA_NONE;
}

/* The live volume's map is the origin's; a snapshot's comes from where
 * each of its chunks is kept (engine/volume-extents.c). */
static int
shadowcopy_can_extents (void *handle)
{
  return 1;
}

static int
shadowcopy_can_multi_conn (void *handle)
{
  /* One origin fd and one journal serve every connection, and flush
   * fdatasyncs both, so a flush anywhere covers all acknowledged writes. */
  return 1;
}

/* Report a failed request: one message naming it, and the errno. */
static int
fail (const struct handle *h, const char *what, uint32_t count,
      uint64_t offset, int r)
{
  if (r == -ENOENT && !h->live) {
    nbdkit_error ("%s: %s '%s' was deleted", what,
                  h->clone ? "clone" : "snapshot", h->name);
    r = -ESHUTDOWN;
  }
  else if (r == -ESHUTDOWN && h->live)    /* revoked in the engine */
    nbdkit_error ("%s: this connection to the live volume was revoked by "
                  "a revert (its cache is stale): reconnect", what);
  else if (r == -EIO && !h->live)
    nbdkit_error ("%s: %s '%s' is no longer valid", what,
                  h->clone ? "clone" : "snapshot", h->name);
  else
    nbdkit_error ("%s of %" PRIu32 " bytes at offset %" PRIu64 " on %s: %s",
                  what, count, offset, h->name, strerror (-r));
  nbdkit_set_error (-r);
  return -1;
}

static int
shadowcopy_pread (void *handle, void *buf, uint32_t count, uint64_t offset,
                  uint32_t flags)
{
  struct handle *h = handle;
  if (revoked (h))
    return -1;
  int r = h->live ? sc_volume_read (volume, buf, count, offset)
          : h->clone ? sc_volume_clone_read (volume, h->snap_id, buf, count,
                                             offset)
          : sc_volume_snapshot_read (volume, h->snap_id, buf, count,
                                     offset);
  return r < 0 ? fail (h, "read", count, offset, r) : 0;
}

static unsigned
engine_flags (uint32_t flags)
{
  return (flags & NBDKIT_FLAG_FUA ? SC_FUA : 0) |
         (flags & NBDKIT_FLAG_MAY_TRIM ? SC_MAY_TRIM : 0);
}

static int
shadowcopy_pwrite (void *handle, const void *buf, uint32_t count,
                   uint64_t offset, uint32_t flags)
{
  struct handle *h = handle;
  if (h->clone) {
    int r = sc_volume_clone_write (volume, h->snap_id, buf, count, offset,
                                   engine_flags (flags));
    return r < 0 ? fail (h, "write", count, offset, r) : 0;
  }
  if (!h->live)
    return fail (h, "write", count, offset, -EPERM);
  if (revoked (h))
    return -1;
  int r = sc_volume_live_write (volume, h->ticket, buf, count, offset,
                                engine_flags (flags));
  return r < 0 ? fail (h, "write", count, offset, r) : 0;
}

static int
shadowcopy_zero (void *handle, uint32_t count, uint64_t offset,
                 uint32_t flags)
{
  struct handle *h = handle;
  if (!h->live && !h->clone)
    return fail (h, "zero", count, offset, -EPERM);
  if (revoked (h))
    return -1;
  if (flags & NBDKIT_FLAG_FAST_ZERO) {
    nbdkit_set_error (ENOTSUP);
    return -1;
  }
  int r = h->clone
    ? sc_volume_clone_zero (volume, h->snap_id, count, offset,
                            engine_flags (flags))
    : sc_volume_live_zero (volume, h->ticket, count, offset,
                           engine_flags (flags));
  return r < 0 ? fail (h, "zero", count, offset, r) : 0;
}

static int
shadowcopy_trim (void *handle, uint32_t count, uint64_t offset,
                 uint32_t flags)
{
  struct handle *h = handle;
  if (h->clone) {
    int r = sc_volume_clone_trim (volume, h->snap_id, count, offset,
                                  engine_flags (flags));
    return r < 0 ? fail (h, "trim", count, offset, r) : 0;
  }
  if (!h->live && pcfg.discard_snapshots && !h->no_trim) {
    /* The reader no longer needs this range: no data changes. */
    int r = sc_volume_snapshot_discard (volume, h->snap_id, count, offset);
    if (r == -EBUSY) {
      int p = sc_volume_snapshot_protected (volume, h->snap_id);
      nbdkit_error ("trim on snapshot %s refused: snapshot %s %s", h->name,
                    h->name, p == SC_PROTECTED_CLONES
                    ? "has clones (a discard would change what they read)"
                    : "is the target of the running revert (a discard "
                      "would change what the live volume reads)");
      nbdkit_set_error (EBUSY);
      return -1;
    }
    return r < 0 ? fail (h, "trim", count, offset, r) : 0;
  }
  if (!h->live)
    return fail (h, "trim", count, offset, -EPERM);
  if (revoked (h))
    return -1;
  int r = sc_volume_live_trim (volume, h->ticket, count, offset,
                               engine_flags (flags));
  return r < 0 ? fail (h, "trim", count, offset, r) : 0;
}

static int
shadowcopy_flush (void *handle, uint32_t flags)
{
  struct handle *h = handle;
  if (revoked (h))
    return -1;
  int r = h->clone ? sc_volume_clone_flush (volume, h->snap_id)
                   : sc_volume_flush (volume);
  return r < 0 ? fail (h, "flush", 0, 0, r) : 0;
}

static int
add_extent (void *opaque, uint64_t offset, uint64_t length, unsigned type)
{
  uint32_t t = (type & SC_EXTENT_HOLE ? NBDKIT_EXTENT_HOLE : 0) |
               (type & SC_EXTENT_ZERO ? NBDKIT_EXTENT_ZERO : 0);
  return nbdkit_add_extent (opaque, offset, length, t) == -1 ? -1 : 0;
}

static int
shadowcopy_extents (void *handle, uint32_t count, uint64_t offset,
                    uint32_t flags, struct nbdkit_extents *extents)
{
  struct handle *h = handle;
  if (revoked (h))
    return -1;
  int r = h->live
    ? sc_volume_extents (volume, count, offset, add_extent, extents)
    : h->clone ? sc_volume_clone_extents (volume, h->snap_id, count, offset,
                                          add_extent, extents)
    : sc_volume_snapshot_extents (volume, h->snap_id, count, offset,
                                  flags & NBDKIT_FLAG_REQ_ONE, add_extent,
                                  extents);
  if (r == -1)
    return -1;                  /* nbdkit_add_extent said why */
  return r < 0 ? fail (h, "extents", count, offset, r) : 0;
}

/* nbdkit shadowcopy --dump-plugin: what this build is, for packagers and
 * admins (key=value lines after nbdkit's own).  shadowcopy_io_uring says
 * whether a ring could be made here and now (no: the kernel or a seccomp
 * policy refuses io_uring, or SHADOWCOPY_NO_URING=1; then pread/pwrite). */
static void
shadowcopy_dump_plugin (void)
{
  printf ("shadowcopy_version=%s\n", PACKAGE_VERSION);
  printf ("shadowcopy_format_version=%d\n", SC_FORMAT_VERSION);
  printf ("shadowcopy_format_version_min=%d\n", SC_FORMAT_VERSION_MIN);
  printf ("shadowcopy_features=%s\n", SC_VOLUME_FEATURES);
  printf ("shadowcopy_origin_backends=%s\n", SC_ORIGIN_BACKENDS);
  printf ("shadowcopy_io_uring=%s\n", sc_io_uring_active () ? "yes" : "no");
}

#define THREAD_MODEL NBDKIT_THREAD_MODEL_PARALLEL

static struct nbdkit_plugin plugin = {
  .name               = "shadowcopy",
  .version            = PACKAGE_VERSION,
  .longname           = "shadowcopy live snapshot plugin",
  .description        = "Live disk with copy-on-write point-in-time snapshots",
  .unload             = plugin_config_free,
  .config             = plugin_config,
  .config_complete    = plugin_config_complete,
  .config_help        = plugin_config_help,
  .magic_config_key   = NULL,
  .dump_plugin        = shadowcopy_dump_plugin,
  .get_ready          = shadowcopy_get_ready,
  .preconnect         = shadowcopy_preconnect,
  .after_fork         = shadowcopy_after_fork,
  .cleanup            = shadowcopy_cleanup,
  .list_exports       = shadowcopy_list_exports,
  .default_export     = shadowcopy_default_export,
  .open               = shadowcopy_open,
  .close              = shadowcopy_close,
  .export_description = shadowcopy_export_description,
  .get_size           = shadowcopy_get_size,
  .block_size         = shadowcopy_block_size,
  .can_write          = shadowcopy_can_write,
  .can_flush          = live_only,
  .can_trim           = shadowcopy_can_write,  /* trim where writable */
  .can_zero           = live_only,
  /* Declared: without it nbdkit 1.32 aborts on a client's FAST_ZERO
   * (backend_zero asserts it was advertised); shadowcopy_zero answers the
   * flag with ENOTSUP, so clients zero the ordinary way. */
  .can_fast_zero      = live_only,
  .can_extents        = shadowcopy_can_extents,
  .can_fua            = shadowcopy_can_fua,
  .can_multi_conn     = shadowcopy_can_multi_conn,
  .pread              = shadowcopy_pread,
  .pwrite             = shadowcopy_pwrite,
  .zero               = shadowcopy_zero,
  .trim               = shadowcopy_trim,
  .flush              = shadowcopy_flush,
  .extents            = shadowcopy_extents,
  .errno_is_preserved = 0,
};

NBDKIT_REGISTER_PLUGIN (plugin)
