/* shadowcopy: allocation-failure injection for tests.
 *
 * cow/ asks sc_fault() at the points where it grows its in-memory state
 * (named sites below).  Tests set sc_fault_hook to make one of them fail;
 * in a server the hook is NULL and sc_fault() is one well-predicted
 * branch.  (I/O faults have their own hook: sc_io_fault_hook, cow/io.h.)
 *
 * Sites:
 *   "snapshot-table"   the snapshot table grows (a create, a replay)
 *   "discard-extent"   a snapshot's discarded-extent list grows
 */
#ifndef SHADOWCOPY_COW_FAULT_H
#define SHADOWCOPY_COW_FAULT_H

#include <stdint.h>

/* When set: called at each site; a negative errno fails the allocation
 * there with that error, 0 lets it go ahead. */
extern int (*sc_fault_hook) (const char *site);

static inline int
sc_fault (const char *site)
{
  return sc_fault_hook ? sc_fault_hook (site) : 0;
}

/* Shell tests: fail requests to the diff area at `diff_path` (chunk
 * size `chunk_size`) as the file at `path` says while it exists (see
 * cow/fault-file.c for its one line).  Installs sc_io_fault_hook. */
int sc_io_fault_file_install (const char *path, const char *diff_path,
                              uint32_t chunk_size);

#endif
