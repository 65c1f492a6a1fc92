/* shadowcopy: I/O faults driven by a file, for the shell tests (see
 * cow/fault.h).
 *
 * A test cannot put nbdkit's error filter under the diff area (the plugin
 * opens that file itself), so a server started with
 * SHADOWCOPY_TEST_IO_FAULTS=FILE installs this hook: while FILE exists,
 * each request to the diff area that matches its one line fails with its
 * errno.  The line is "KIND ERRNO [once]":
 *
 *   KIND   journal-write     a write of metadata (not a data slot, not a
 *                            superblock)
 *          data-write        a write of one whole, aligned data slot
 *          superblock-write  a write into the two superblocks
 *          write             any write to the diff area
 *          fdatasync         an fdatasync of the diff area
 *   ERRNO  EIO, ENOSPC, EROFS, EDQUOT or a number; or `stall`: the
 *          request does not fail but waits while FILE still says so
 *          (a test holds a copy in flight, then removes FILE)
 *   once   fail the first matching request only: the hook removes FILE
 *
 * The file is read at every request: slow, and for tests only.
 */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cow/fault.h"
#include "cow/format.h"
#include "cow/io.h"

static char *fault_path;
static dev_t diff_dev;
static ino_t diff_ino;
static uint32_t diff_chunk;
static pthread_mutex_t fault_lock = PTHREAD_MUTEX_INITIALIZER;

static bool
kind_matches (const char *kind, const struct sc_io_req *req)
{
  bool write = req->op == SC_IO_WRITE;
  bool sb = write && req->off < SC_SB_AREA;
  bool data = write && !sb && req->len == diff_chunk &&
              req->off % diff_chunk == 0;
  if (strcmp (kind, "fdatasync") == 0)
    return req->op == SC_IO_FDATASYNC;
  if (strcmp (kind, "write") == 0)
    return write;
  if (strcmp (kind, "superblock-write") == 0)
    return sb;
  if (strcmp (kind, "data-write") == 0)
    return data;
  if (strcmp (kind, "journal-write") == 0)
    return write && !sb && !data;
  return false;
}

static int
errno_of (const char *s)
{
  static const struct { const char *name; int err; } names[] = {
    { "EIO", EIO }, { "ENOSPC", ENOSPC }, { "EROFS", EROFS },
    { "EDQUOT", EDQUOT }, { "ENOMEM", ENOMEM },
  };
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
    if (strcmp (s, names[i].name) == 0)
      return names[i].err;
  int n = atoi (s);
  return n > 0 ? n : EIO;
}

/* Does FILE say "KIND stall" for req? */
static bool
stalled (const struct sc_io_req *req)
{
  bool r = false;
  FILE *f = fopen (fault_path, "re");
  if (f) {
    char kind[32] = "", what[32] = "";
    r = fscanf (f, "%31s %31s", kind, what) == 2 &&
        strcmp (what, "stall") == 0 && kind_matches (kind, req);
    fclose (f);
  }
  return r;
}

static int
file_fault (const struct sc_io_req *req)
{
  struct stat st;
  if (req->op != SC_IO_WRITE && req->op != SC_IO_FDATASYNC)
    return 0;
  if (fstat (req->fd, &st) < 0 || st.st_dev != diff_dev ||
      st.st_ino != diff_ino)
    return 0;
  while (stalled (req))
    usleep (5000);
  pthread_mutex_lock (&fault_lock);
  int r = 0;
  FILE *f = fopen (fault_path, "re");
  if (f) {
    char kind[32] = "", err[32] = "", once[16] = "";
    if (fscanf (f, "%31s %31s %15s", kind, err, once) >= 2 &&
        strcmp (err, "stall") != 0 && kind_matches (kind, req)) {
      r = -errno_of (err);
      if (strcmp (once, "once") == 0)
        unlink (fault_path);
    }
    fclose (f);
  }
  pthread_mutex_unlock (&fault_lock);
  return r;
}

int
sc_io_fault_file_install (const char *path, const char *diff_path,
                          uint32_t chunk_size)
{
  struct stat st;
  if (stat (diff_path, &st) < 0)
    return -errno;
  free (fault_path);
  if (!(fault_path = strdup (path)))
    return -ENOMEM;
  diff_dev = st.st_dev;
  diff_ino = st.st_ino;
  diff_chunk = chunk_size;
  sc_io_fault_hook = file_fault;
  return 0;
}
