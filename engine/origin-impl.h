/* shadowcopy: what a kind of origin implements (engine/origin-*.c).
 *
 * Nothing but the origin implementations and engine/origin.c includes
 * this: everyone else sees the opaque handle of engine/origin.h.
 *
 * An implementation embeds struct sc_origin as the first member of its
 * own struct, points `ops` at its table and returns &that.member from its
 * open function.  Every operation has the contract of the sc_origin_*
 * function of the same name in origin.h (ranges already checked against
 * the size, flags passed through).  `fd` may be NULL: no descriptor.
 */
#ifndef SHADOWCOPY_ENGINE_ORIGIN_IMPL_H
#define SHADOWCOPY_ENGINE_ORIGIN_IMPL_H

#include "engine/origin.h"

struct sc_origin_ops {
  void (*close) (struct sc_origin *o);
  int (*pread) (struct sc_origin *o, void *buf, uint64_t len, uint64_t off);
  int (*pwrite) (struct sc_origin *o, const void *buf, uint64_t len,
                 uint64_t off, unsigned flags);
  int (*flush) (struct sc_origin *o);
  int (*zero) (struct sc_origin *o, uint64_t len, uint64_t off,
               unsigned flags);
  int (*trim) (struct sc_origin *o, uint64_t len, uint64_t off,
               unsigned flags);
  int (*extents) (struct sc_origin *o, uint64_t len, uint64_t off,
                  sc_extent_cb cb, void *opaque);
  bool (*is_hole) (struct sc_origin *o, uint64_t off, uint64_t len);
  int (*fd) (const struct sc_origin *o);
  /* The kind's part of sc_origin_stamp (everything but the samples);
   * NULL: the samples alone. */
  int (*stamp) (struct sc_origin *o, struct sc_origin_stamp *st);
};

struct sc_origin {
  const struct sc_origin_ops *ops;
  struct sc_origin_id id;       /* filled by the open; id.size is the size */
  /* sc_origin_on_changed: called (once, with no lock of the origin held)
   * by a kind that finds it is no longer the disk of the open. */
  void (*changed) (void *opaque, const char *why);
  void *changed_opaque;
  uint64_t failures;            /* atomic: sc_origin_failures */
};

#endif
