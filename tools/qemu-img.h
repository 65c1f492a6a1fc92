/* shadowcopy: qemu-img run as a child process: an image created, an
 * image described.
 *
 * qcow2 images are made and inspected only by QEMU's own tools, never by
 * code of ours that reads or writes the format.  qemu-img is run with an
 * argv (no shell), with its standard input on /dev/null, its output read
 * back, and its standard error kept for the message: a failure is one
 * line of what qemu-img said (its lines joined), for the caller to put
 * after the name of the file and what it was doing.
 *
 * The format of an image is always given (-f): an image is never probed,
 * so a raw image whose content looks like a qcow2 header is still read
 * as raw.  A relative path is given as "./PATH": a ':' in a file name
 * (vol-2024-01-01T00:00:00.qcow2) is then no protocol prefix, and a
 * leading '-' no option.
 *
 * Errors: 0 or a negative errno, with one line in err ("qemu-img: ...",
 * or why qemu-img could not be run) that does not name the image.
 */
#ifndef SHADOWCOPY_TOOLS_QEMU_IMG_H
#define SHADOWCOPY_TOOLS_QEMU_IMG_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tools/backup-target.h"

/* `qemu-img create -f qcow2 [-b BACKING -F FMT] PATH SIZE`.  backing is
 * stored in the image as given: a relative name is resolved by QEMU
 * relative to the directory of PATH, and must not look like a protocol
 * prefix (give "./NAME").  NULL: no backing file. */
int sc_qemu_img_create_qcow2 (const char *path, uint64_t size,
                              const char *backing,
                              enum sc_image_format backing_format,
                              char *err, size_t errlen);

/* `qemu-img convert -n --target-is-zero -f FMT -O raw SRC DST`: the
 * content of src (format f, with its backing chain) into the existing
 * raw file dst, already of src's virtual size and all zeros (a new sparse
 * file): zeros are not written, so it stays sparse. */
int sc_qemu_img_convert_to_raw (const char *src, enum sc_image_format f,
                                const char *dst, char *err, size_t errlen);

/* What `qemu-img info --output=json` says of an image. */
struct sc_qemu_img_info {
  char format[16];
  uint64_t virtual_size;
  bool has_backing;
  /* The backing file's name as stored in the image, and its format ("":
   * not stored).  backing_exact is false when the name could not be read
   * back exactly (a non-ASCII escape, or too long): it then matches no
   * name. */
  char backing[PATH_MAX];
  bool backing_exact;
  char backing_format[16];
};

/* The same from one image's object of qemu-img's JSON (json-read.h):
 * 0, or -EINVAL when it has no format or virtual size. */
struct sc_jv;
int sc_qemu_img_parse_info (const struct sc_jv *img,
                            struct sc_qemu_img_info *info);

/* An image's backing chain as QEMU sees it: one layer per image, from
 * the image asked about down, each with the file QEMU opened (a path
 * usable from the current directory), its format and whether it has a
 * backing file.  backup-chain.c compares it with the manifests'. */
struct sc_qemu_layer {
  char *filename;               /* as QEMU opened it: malloc'd */
  char format[16];
  bool has_backing;
};

struct sc_qemu_chain {
  struct sc_qemu_layer *v;      /* v[0] is the image asked about */
  size_t n;
};

/* `qemu-img info --backing-chain` of the image at path (format f) into
 * c; a missing or unreadable link is an error (err names path). */
int sc_qemu_img_chain (const char *path, enum sc_image_format f,
                       struct sc_qemu_chain *c, char *err, size_t errlen);

/* The same from qemu-img's JSON (an array of images). */
int sc_qemu_chain_from_json (const struct sc_jv *doc,
                             struct sc_qemu_chain *c, char *err,
                             size_t errlen);

void sc_qemu_chain_free (struct sc_qemu_chain *c);

/* Describe the image at path, opened as format f.  With chain, the whole
 * backing chain is opened too (--backing-chain), so a missing or
 * unreadable link is an error here; info describes the image itself. */
int sc_qemu_img_info (const char *path, enum sc_image_format f, bool chain,
                      struct sc_qemu_img_info *info, char *err,
                      size_t errlen);

#endif
