/* shadowcopy: the origin interface (see origin.h): dispatch to the kind
 * of origin, and what every kind shares. */
#include <config.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cow/crc32c.h"
#include "engine/origin-impl.h"

void
sc_origin_close (struct sc_origin *o)
{
  if (o)
    o->ops->close (o);
}

uint64_t
sc_origin_size (const struct sc_origin *o)
{
  return o->id.size;
}

void
sc_origin_identity (const struct sc_origin *o, struct sc_origin_id *id)
{
  *id = o->id;
}

int
sc_origin_pread (struct sc_origin *o, void *buf, uint64_t len, uint64_t off)
{
  return o->ops->pread (o, buf, len, off);
}

/* Count a failure of an operation that syncs (a flush, or SC_FUA). */
static int
synced (struct sc_origin *o, int r, bool syncs)
{
  if (r < 0 && syncs)
    __atomic_add_fetch (&o->failures, 1, __ATOMIC_SEQ_CST);
  return r;
}

uint64_t
sc_origin_failures (const struct sc_origin *o)
{
  return __atomic_load_n (&o->failures, __ATOMIC_SEQ_CST);
}

int
sc_origin_pwrite (struct sc_origin *o, const void *buf, uint64_t len,
                  uint64_t off, unsigned flags)
{
  return synced (o, o->ops->pwrite (o, buf, len, off, flags), flags & SC_FUA);
}

int
sc_origin_flush (struct sc_origin *o)
{
  return synced (o, o->ops->flush (o), true);
}

int
sc_origin_zero (struct sc_origin *o, uint64_t len, uint64_t off,
                unsigned flags)
{
  return synced (o, o->ops->zero (o, len, off, flags), flags & SC_FUA);
}

int
sc_origin_trim (struct sc_origin *o, uint64_t len, uint64_t off,
                unsigned flags)
{
  return synced (o, o->ops->trim (o, len, off, flags), flags & SC_FUA);
}

int
sc_origin_extents (struct sc_origin *o, uint64_t len, uint64_t off,
                   sc_extent_cb cb, void *opaque)
{
  return o->ops->extents (o, len, off, cb, opaque);
}

bool
sc_origin_is_hole (struct sc_origin *o, uint64_t off, uint64_t len)
{
  return o->ops->is_hole (o, off, len);
}

int
sc_origin_fd (const struct sc_origin *o)
{
  return o->ops->fd ? o->ops->fd (o) : -1;
}

/* The samples are read through the kind's pread, so every kind of origin
 * has them, whatever else it can tell. */
int
sc_origin_stamp (struct sc_origin *o, struct sc_origin_stamp *st)
{
  memset (st, 0, sizeof *st);
  st->size = o->id.size;
  int r = o->ops->stamp ? o->ops->stamp (o, st) : 0;
  if (r < 0)
    return r;
  uint8_t *buf = malloc (SC_STAMP_SAMPLE_SIZE);
  if (!buf)
    return -ENOMEM;
  for (uint32_t i = 0; i < SC_STAMP_SAMPLES && r == 0; i++) {
    uint64_t off;
    uint32_t len;
    sc_origin_stamp_sample (o->id.size, i, &off, &len);
    r = o->ops->pread (o, buf, len, off);
    st->sample_crc[i] = crc32c (0, buf, len);
  }
  free (buf);
  st->nsamples = r == 0 ? SC_STAMP_SAMPLES : 0;
  return r;
}

void
sc_origin_on_changed (struct sc_origin *o,
                      void (*cb) (void *opaque, const char *why),
                      void *opaque)
{
  o->changed = cb;
  o->changed_opaque = opaque;
}
