/* shadowcopy: a backup image opened as an NBD export through qemu-nbd
 * (image-nbd.h). */
#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cow/crc32c.h"
#include "tools/image-nbd.h"

int
sc_image_nbd_open (const char *path, enum sc_image_format f, bool writable,
                   struct nbd_handle **out, uint64_t *size, char *err,
                   size_t errlen)
{
  /* --discard=unmap: a zeroed range may be deallocated (a qcow2 overlay
   * then marks it zero, masking its backing file); --cache=writeback
   * with a flush at the end is qemu-img's own way of writing. */
  char *argv[9], *rel = NULL;
  size_t n = 0;
  struct nbd_handle *h;
  int64_t got;
  int r;

  /* qemu-nbd would take a relative path starting with '-' as an option,
   * and one with a ':' before any '/' as a protocol ("nbd:", "json:"):
   * "./" makes it a file name. */
  if (path[0] != '/' && asprintf (&rel, "./%s", path) < 0) {
    snprintf (err, errlen, "%s", strerror (ENOMEM));
    return -ENOMEM;
  }
  h = nbd_create ();

  /* qemu-nbd in a session of its own: libnbd forks it in our process
   * group, where a Ctrl-C on the terminal would reach it too (it exits
   * on SIGINT, whatever disposition it inherits), and the backup would
   * lose its image before its last state.  setsid execs it in the same
   * process (the forked child is no group leader), as socket activation
   * needs (LISTEN_PID); it goes when we close the handle, as before. */
  argv[n++] = (char *) "setsid";
  argv[n++] = (char *) "qemu-nbd";
  argv[n++] = (char *) "--format";
  argv[n++] = (char *) sc_image_format_name (f);
  argv[n++] = (char *) "--cache=writeback";
  argv[n++] = (char *) "--discard=unmap";
  if (!writable)
    argv[n++] = (char *) "--read-only";
  argv[n++] = rel ? rel : (char *) path;
  argv[n] = NULL;
  if (!h) {
    snprintf (err, errlen, "libnbd: %s", nbd_get_error ());
    free (rel);
    return -ENOMEM;
  }
  r = nbd_add_meta_context (h, LIBNBD_CONTEXT_BASE_ALLOCATION) < 0 ||
    nbd_connect_systemd_socket_activation (h, argv) < 0 ? -1 : 0;
  free (rel);
  if (r < 0) {
    snprintf (err, errlen, "cannot open %s (%s) with qemu-nbd: %s", path,
              sc_image_format_name (f), nbd_get_error ());
    nbd_close (h);
    return -EIO;
  }
  if (writable && nbd_is_read_only (h) == 1) {
    snprintf (err, errlen, "qemu-nbd opened %s read-only", path);
    nbd_close (h);
    return -EROFS;
  }
  got = nbd_get_size (h);
  if (got < 0) {
    snprintf (err, errlen, "%s: %s", path, nbd_get_error ());
    nbd_close (h);
    return -EIO;
  }
  if (size)
    *size = (uint64_t) got;
  *out = h;
  return 0;
}

int
sc_image_nbd_block_crc (struct nbd_handle *nbd, const char *name,
                        uint64_t size, uint64_t block_size, uint64_t i,
                        uint32_t *crc, char *err, size_t errlen)
{
  const size_t piece = 1024 * 1024;     /* a block may be up to 1 GiB */
  uint64_t start = i * block_size, end;
  uint32_t c = 0;
  char *buf;

  if (start >= size) {
    snprintf (err, errlen, "%s: block %" PRIu64 " is past the end", name, i);
    return -EINVAL;
  }
  end = size - start < block_size ? size : start + block_size;
  if (!(buf = malloc (piece))) {
    snprintf (err, errlen, "%s", strerror (ENOMEM));
    return -ENOMEM;
  }
  for (uint64_t off = start; off < end; off += piece) {
    size_t k = end - off < piece ? (size_t) (end - off) : piece;
    if (nbd_pread (nbd, buf, k, off, 0) < 0) {
      int e = nbd_get_errno ();
      snprintf (err, errlen, "cannot read %s at %" PRIu64 ": %s", name, off,
                nbd_get_error ());
      free (buf);
      return e > 0 ? -e : -EIO;
    }
    c = crc32c (c, buf, k);
  }
  free (buf);
  *crc = c;
  return 0;
}
