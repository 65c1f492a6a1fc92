/* shadowcopy: a backup's writes to its target on a thread of their own.
 *
 * The copy engine's thread receives the snapshot's data over NBD; the
 * target's writes (a copy into the page cache for a raw file, an NBD
 * write for qcow2) then took as long again on that same thread.  This
 * sink hands each write and zero, in order, to a writer thread that
 * calls the target's own sink: the two halves of the copy run on two
 * cores.  write() copies the data into one of a few buffers of its own
 * (waiting for one to be free), so the engine's buffer is free again at
 * once.
 *
 * An error of the target is reported by a later write() or zero(), or
 * by flush(), whichever comes first, with the offset it happened at in
 * the message flush() gives; after one, nothing more is written.
 * flush() waits until everything handed over is written: what the
 * engine's watermark needs before the target is synced.
 */
#ifndef SHADOWCOPY_TOOLS_BACKUP_WRITER_H
#define SHADOWCOPY_TOOLS_BACKUP_WRITER_H

#include <stddef.h>
#include <stdint.h>

#include "tools/backup-copy.h"

struct sc_backup_writer;

/* Start a writer over inner, with nbufs buffers of bufsize bytes (a
 * write larger than bufsize is written directly, after the others).
 * 0 or a negative errno. */
int sc_backup_writer_start (const struct sc_backup_sink *inner,
                            unsigned nbufs, size_t bufsize,
                            struct sc_backup_writer **out);

/* The sink that hands over to the writer; its name is inner's. */
void sc_backup_writer_sink (struct sc_backup_writer *w,
                            struct sc_backup_sink *s);

/* Wait until everything handed over is written: 0, or the target's
 * first error (negative errno, err says where). */
int sc_backup_writer_flush (struct sc_backup_writer *w, char *err,
                            size_t errlen);

/* Flush, then end the thread and free w (NULL: nothing).  Returns as
 * flush. */
int sc_backup_writer_stop (struct sc_backup_writer *w, char *err,
                           size_t errlen);

#endif
