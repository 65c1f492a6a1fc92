/* shadowcopy: an image's backing chain as QEMU sees it.
 *
 * A qcow2 incremental backup is an overlay whose backing file is PREV;
 * which file QEMU actually reads below an image is written in the image
 * itself, and only QEMU's code reads qcow2.  So the chain is asked of
 * `qemu-img info --backing-chain --output=json -f FORMAT IMAGE`: one
 * layer per image, from IMAGE down, each with the file QEMU opened (a
 * path usable from the current directory), its format and whether it
 * has a backing file.  backup-chain.c compares it with the manifests'.
 *
 * Errors: 0 or a negative errno, with one line for the user in err
 * (qemu-img's own first line when it failed, e.g. a backing file it
 * could not open).
 */
#ifndef SHADOWCOPY_TOOLS_QEMU_CHAIN_H
#define SHADOWCOPY_TOOLS_QEMU_CHAIN_H

#include <stdbool.h>
#include <stddef.h>

struct sc_qemu_layer {
  char *filename;               /* as QEMU opened it: malloc'd */
  char format[16];
  bool has_backing;
};

struct sc_qemu_chain {
  struct sc_qemu_layer *v;      /* v[0] is the image asked about */
  size_t n;
};

/* The chain below the image at path (opened as `format`), into c. */
int sc_qemu_chain_read (const char *path, const char *format,
                        struct sc_qemu_chain *c, char *err, size_t errlen);

void sc_qemu_chain_free (struct sc_qemu_chain *c);

#endif
