/* shadowcopy: the chain of a backup: TARGET, and for an incremental its
 * PREV, PREV's PREV... down to a full backup.
 *
 * Each link is an image and its manifest (IMAGE.manifest.json, read
 * strictly).  An incremental's manifest names its PREV's manifest by
 * absolute path (prev-manifest) and the snapshot PREV was made from by
 * UUID (base-uuid).  Going down, each link must be:
 *   - found: a chain is kept together, so a manifest of prev-manifest's
 *     file name beside the child's manifest, when there is one and it is
 *     the child's base (snapshot-uuid and volume-uuid), is the link (it
 *     is then `moved`); else the one at prev-manifest.  So a copy of a
 *     chain is checked (and read) as the copy, even while the originals
 *     are still where the manifests name them; when both are the base
 *     but different files, the one beside wins (QEMU reads that one
 *     below a qcow2 overlay whose backing file is a bare file name),
 *     but for a qcow2 child whose backing file QEMU finds at
 *     prev-manifest (named by absolute path): then that one.  A
 *     manifest beside that cannot be read is a damaged link (not passed
 *     over for the original); one of another snapshot or volume is
 *     passed over (`note` says so);
 *   - the right one: its snapshot-uuid is the child's base-uuid, its
 *     volume-uuid and volume-size are the child's;
 *   - with its image beside it (the manifest's path without the suffix).
 * The first link that is missing, damaged or not the child's base ends
 * the chain with one message naming it (where it was looked for, what
 * was expected and what was found).
 *
 * A qcow2 image reads its backing chain itself: for every qcow2 link,
 * QEMU's chain (qemu-img.h) must be the manifests' one, image for
 * image (same file, same format) down to the first link that is a full
 * backup or raw (a raw image is whole by itself: a raw incremental holds
 * PREV's content, it does not read PREV).
 *
 * Scope: SC_CHAIN_WHOLE follows every link down to the full backup
 * (verify); SC_CHAIN_READ only the links the top image reads (restore:
 * a raw incremental needs no other link, a qcow2 one its backing chain).
 *
 * Errors: 0 or a negative errno (-ENOENT: a link is missing; -EINVAL: a
 * link is damaged or not the child's base; -EIO: QEMU's chain differs or
 * qemu-img failed), with one line for the user in err.
 */
#ifndef SHADOWCOPY_TOOLS_BACKUP_CHAIN_H
#define SHADOWCOPY_TOOLS_BACKUP_CHAIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "tools/backup-target.h"
#include "tools/manifest.h"

#define SC_CHAIN_MAX_LINKS 4096

struct sc_chain_link {
  char *image;                  /* the image's path: malloc'd */
  char *manifest;               /* where its manifest was read */
  bool moved;                   /* not at its child's prev-manifest */
  char *recorded;               /* its child's prev-manifest (NULL: v[0]) */
  char *note;                   /* the other file not taken, or NULL */
  enum sc_image_format format;
  struct sc_manifest m;
};

struct sc_chain {
  struct sc_chain_link *v;      /* v[0] is TARGET, v[n - 1] the lowest */
  size_t n;
};

enum sc_chain_scope { SC_CHAIN_WHOLE, SC_CHAIN_READ };

/* The chain of the backup image at target, into c (which the caller
 * frees with sc_chain_free whatever this returns). */
int sc_chain_open (const char *target, enum sc_chain_scope scope,
                   struct sc_chain *c, char *err, size_t errlen);

void sc_chain_free (struct sc_chain *c);

/* Calls fn on every file of the chain of c: the image and the manifest
 * of each link of c, then of every backup the chain continues with,
 * from TARGET down to the full backup whatever c's scope, at its
 * child's recorded prev-manifest and beside its child both, when they
 * are the child's base (a copy and its original); best effort: a link
 * that is missing or cannot be read ends its branch.  A non-zero
 * return of fn stops the walk and is returned (else 0, or -ENOMEM). */
int sc_chain_each_file (const struct sc_chain *c,
                        int (*fn) (void *opaque, const char *path),
                        void *opaque);

/* One line on f for each link below TARGET that was not simply found at
 * its recorded path: read beside its child, or with another copy passed
 * over (its note). */
void sc_chain_print_where (const struct sc_chain *c, FILE *f);

#endif
