/* libFuzzer harness: the control protocol as the server and the CLI read
 * it: the line reader, the request and reply parsers, the writers they
 * must agree with, and the server's request handler on a real volume.
 *
 * Input: a byte stream, as a client (or, for the reply parser, a server)
 * would send it.  The stream is cut into lines by sc_ctl_read_line, fed by
 * a fake read(2) that hands out pieces of the input of varying sizes and
 * now and then fails with EINTR (run.sh compiles control-protocol.c with
 * -Dread=fuzz_ctl_read for that; the piece sizes come from a hash of the
 * input, so a run is reproducible).  Every line is then
 *   - parsed as a reply; an accepted one is written back with the
 *     writers and must come out the same (data lines byte for byte);
 *   - parsed as a request; an accepted one must be accepted by
 *     sc_ctl_write_request and come out the same;
 *   - answered by sc_control_handle_line on a volume opened once per
 *     process (64 KiB origin, 4 KiB chunks, in a temporary directory),
 *     replies going to /dev/null; after each line the harness writes one
 *     chunk of the live volume, so snapshots get copies to list and free
 *     (and, one time in eight, the copy fails and invalidates them).
 * The parsers also get the whole input as one string.
 * Each input starts with no snapshots (the harness deletes them).
 */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "cow/diffarea.h"
#include "cow/io.h"
#include "engine/control-protocol.h"
#include "engine/control.h"
#include "engine/volume.h"

#define ORIGIN_SIZE (64u * 1024u)
#define CHUNK_SIZE  4096u
/* The diff area checkpoints a journal longer than 2 * live + 65536 records
 * by itself; past this, the harness closes and reopens the volume (an open
 * checkpoints a long journal too), so a long run stays fast and its inputs
 * independent of its history. */
#define REOPEN_RECORDS 200000
#define FAKE_FD 1000000         /* the reader's fd: served by fuzz_ctl_read */

static char tmpdir[256];
static char origin_path[300], diff_path[300];
static struct sc_volume *vol;
static int null_fd = -1;
static int capture[2] = { -1, -1 };     /* pipe: writers -> harness */
static uint64_t lines_done;

static void
die (const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  fprintf (stderr, "fuzz-control: ");
  vfprintf (stderr, fmt, ap);
  fprintf (stderr, "\n");
  va_end (ap);
  /* The volume may be in any state: just drop its files. */
  unlink (origin_path);
  unlink (diff_path);
  rmdir (tmpdir);
  abort ();
}

/* ---- the fake read(2) of the line reader ------------------------------ */

static const uint8_t *in_data;
static size_t in_len, in_pos;
static uint64_t rng;

static uint64_t
rng_next (void)
{
  /* splitmix64 */
  uint64_t z = (rng += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

ssize_t fuzz_ctl_read (int fd, void *buf, size_t count);

ssize_t
fuzz_ctl_read (int fd, void *buf, size_t count)
{
  if (fd != FAKE_FD)
    return syscall (SYS_read, fd, buf, count);
  if (count == 0)
    return 0;
  uint64_t x = rng_next ();
  if (x % 61 == 0) {
    errno = EINTR;
    return -1;
  }
  size_t left = in_len - in_pos;
  if (left == 0)
    return 0;
  /* Half the time a few bytes, else up to all the reader asked for. */
  size_t n = (x >> 8) & 1 ? 1 + (x >> 16) % 16 : 1 + (x >> 16) % count;
  if (n > count)
    n = count;
  if (n > left)
    n = left;
  memcpy (buf, in_data + in_pos, n);
  in_pos += n;
  return (ssize_t) n;
}

/* ---- the volume -------------------------------------------------------- */

static void
volume_open (void)
{
  char err[512];
  struct sc_volume_config cfg = {
    .origin_path = origin_path, .diff_path = diff_path,
    .chunk_size = CHUNK_SIZE,
  };
  int r = sc_volume_open (&cfg, &vol, err, sizeof err);
  if (r < 0)
    die ("sc_volume_open: %s", err);
}

static void
cleanup (void)
{
  sc_volume_close (vol);
  vol = NULL;
  unlink (origin_path);
  unlink (diff_path);
  rmdir (tmpdir);
}

int
LLVMFuzzerInitialize (int *argc, char ***argv)
{
  setenv ("SHADOWCOPY_NO_URING", "1", 0);
  const char *base = getenv ("FUZZ_TMPDIR");
  if (!base)
    base = access ("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
  snprintf (tmpdir, sizeof tmpdir, "%s/shadowcopy-fuzz-XXXXXX", base);
  if (!mkdtemp (tmpdir))
    die ("mkdtemp %s: %m", tmpdir);
  snprintf (origin_path, sizeof origin_path, "%s/origin", tmpdir);
  snprintf (diff_path, sizeof diff_path, "%s/diffarea", tmpdir);

  int fd = open (origin_path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd == -1)
    die ("%s: %m", origin_path);
  uint8_t block[CHUNK_SIZE];
  for (unsigned off = 0; off < ORIGIN_SIZE; off += sizeof block) {
    memset (block, off / CHUNK_SIZE % 2 ? 0 : 0x5a, sizeof block);
    if (pwrite (fd, block, sizeof block, off) != sizeof block)
      die ("writing %s: %m", origin_path);
  }
  close (fd);
  volume_open ();
  atexit (cleanup);

  null_fd = open ("/dev/null", O_WRONLY | O_CLOEXEC);
  if (null_fd == -1 || pipe2 (capture, O_CLOEXEC | O_NONBLOCK) == -1)
    die ("/dev/null or pipe: %m");
  return 0;
}

/* Start every input from the same kind of state: no snapshots, and a
 * journal of bounded length.  A revert recorded by the last input (its
 * target cannot go, and may never be written back if it was invalidated)
 * is dropped with the whole diff area: a new one is made. */
static void
volume_reset (void)
{
  struct sc_diff_stats st;
  struct sc_snapshot_info *list;
  struct sc_revert_status rs;
  size_t n;
  if (sc_volume_revert_status (vol, &rs) == 0) {
    sc_volume_close (vol);
    unlink (diff_path);
    volume_open ();
  }
  int r = sc_diff_snapshot_list (sc_volume_diff (vol), &list, &n);
  if (r < 0)
    die ("sc_diff_snapshot_list: %s", strerror (-r));
  /* Clones first: a snapshot with clones cannot be deleted. */
  for (int clones = 1; clones >= 0; clones--)
    for (size_t i = 0; i < n; i++)
      if (list[i].clone == (bool) clones &&
          (r = sc_volume_snapshot_delete (vol, list[i].name)) < 0)
        die ("deleting %s: %s", list[i].name, strerror (-r));
  free (list);
  sc_diff_stats (sc_volume_diff (vol), &st);
  if (st.snapshots != 0 || st.copies != 0)
    die ("after deleting every snapshot: %" PRIu64 " snapshots, %" PRIu64
         " copies", st.snapshots, st.copies);
  if (st.journal_records > REOPEN_RECORDS) {
    sc_volume_close (vol);
    volume_open ();
  }
}

/* Origin reads fail while this is set: the copy-on-write of the live
 * write fails, and the snapshots that needed the copy become invalid. */
static int
fail_reads (const struct sc_io_req *req)
{
  return req->op == SC_IO_READ ? -EIO : 0;
}

/* A live write after each line: copies for the snapshots to hold, and
 * (one time in eight) a failed copy that invalidates them. */
static void
volume_poke (void)
{
  static uint8_t buf[CHUNK_SIZE];
  uint64_t chunk = lines_done++ % (ORIGIN_SIZE / CHUNK_SIZE);
  memset (buf, (int) (lines_done & 0xff), sizeof buf);
  if (rng_next () % 8 == 0)
    sc_io_fault_hook = fail_reads;
  int r = sc_volume_write (vol, buf, sizeof buf, chunk * CHUNK_SIZE, 0);
  sc_io_fault_hook = NULL;
  /* While a revert runs, a write to a chunk not written back yet first
   * reads the target's copy: the injected read failure fails it (EIO),
   * never the target's content.  Otherwise the live volume wins. */
  struct sc_revert_status rs;
  if (r == -EIO && sc_volume_revert_status (vol, &rs) == 0)
    return;
  if (r < 0)
    die ("sc_volume_write: %s", strerror (-r));
}

/* ---- round trips through the writers -------------------------------- */

/* What the writer put in the capture pipe: one line, LF removed. */
static char *
captured_line (char *buf, size_t size)
{
  ssize_t n = read (capture[0], buf, size - 1);
  if (n <= 0)
    die ("the writer wrote nothing");
  if (buf[n - 1] != '\n' || memchr (buf, '\n', (size_t) n - 1))
    die ("the writer did not write exactly one line");
  buf[n - 1] = '\0';
  if ((size_t) n > SC_CTL_LINE_MAX)
    die ("the writer wrote %zd bytes, more than a line may have", n);
  return buf;
}

static char *
xstrdup (const char *s)
{
  char *copy = strdup (s);
  if (!copy)
    die ("out of memory");
  return copy;
}

static void
check_reply (const char *line)
{
  static char again[SC_CTL_LINE_MAX + 1];
  static char out[2 * SC_CTL_LINE_MAX];
  struct sc_ctl_line l, l2;
  const char *why = NULL;
  char *copy = xstrdup (line);

  if (sc_ctl_parse_reply (copy, &l, &why) < 0) {
    if (!why)
      die ("reply refused without a reason");
    free (copy);
    return;
  }
  if (strlen (line) >= SC_CTL_LINE_MAX)
    die ("accepted a reply of %zu bytes", strlen (line));
  switch (l.type) {
  case SC_CTL_OK:
    if (strcmp (line, "OK") != 0)
      die ("\"%s\" parsed as OK", line);
    break;
  case SC_CTL_DATA:
    if (l.nfields > SC_CTL_FIELDS_MAX)
      die ("%zu fields", l.nfields);
    for (size_t i = 0; i < l.nfields; i++)
      if (sc_ctl_field (&l, l.fields[i].key) != l.fields[i].value)
        die ("field %s not found by its key", l.fields[i].key);
    if (sc_ctl_write_data (capture[1], l.kind, l.fields, l.nfields) < 0)
      die ("a data line that parses cannot be written back");
    /* Fields past the cap are dropped, so only a line within it comes
     * back whole. */
    if (strcmp (captured_line (out, sizeof out), line) != 0 && l.ignored == 0)
      die ("data line changed in a round trip:\n  %s\n  %s", line, out);
    break;
  case SC_CTL_ERR:
    if (l.err <= 0)
      die ("ERR line with errno %d", l.err);
    if (sc_ctl_write_err (capture[1], l.err, "%s", l.message) < 0)
      die ("an ERR line that parses cannot be written back");
    snprintf (again, sizeof again, "%s", captured_line (out, sizeof out));
    if (sc_ctl_parse_reply (again, &l2, &why) < 0)
      die ("written ERR line does not parse (%s): %s", why, out);
    if (l2.type != SC_CTL_ERR || l2.err != l.err)
      die ("ERR line changed its error in a round trip: %s", line);
    /* The writer truncates a message that does not fit; else it is
     * unchanged. */
    if (strlen (l.message) + 5 + strlen (sc_ctl_errname (l.err))
        < SC_CTL_LINE_MAX && strcmp (l.message, l2.message) != 0)
      die ("ERR message changed in a round trip: %s", line);
    break;
  default:
    die ("reply of unknown type %d", (int) l.type);
  }
  free (copy);
}

static void
check_request (const char *line)
{
  static char out[2 * SC_CTL_LINE_MAX];
  struct sc_ctl_request req;
  const char *why = NULL;
  uint64_t num;
  char *copy = xstrdup (line);

  if (sc_ctl_parse_request (copy, &req, &why) < 0) {
    if (!why)
      die ("request refused without a reason");
    free (copy);
    return;
  }
  if (strlen (line) >= SC_CTL_LINE_MAX)
    die ("accepted a request of %zu bytes", strlen (line));
  if (!req.verb || !*req.verb || req.nargs > SC_CTL_ARGS_MAX)
    die ("accepted request with no verb or %zu arguments", req.nargs);
  for (size_t i = 0; i < req.nargs; i++) {
    if (!req.args[i] || !*req.args[i])
      die ("accepted request with an empty argument");
    (void) sc_ctl_parse_u64 (req.args[i], &num);
  }
  if (sc_ctl_write_request (capture[1], req.verb, req.args, req.nargs) < 0)
    die ("a request that parses cannot be written: %s", line);
  if (strcmp (captured_line (out, sizeof out), line) != 0)
    die ("request changed in a round trip:\n  %s\n  %s", line, out);
  free (copy);
}

/* ---- the input --------------------------------------------------------- */

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  volume_reset ();

  /* FNV-1a of the input seeds the read sizes. */
  rng = 0xcbf29ce484222325ull;
  for (size_t i = 0; i < size; i++)
    rng = (rng ^ data[i]) * 0x100000001b3ull;
  in_data = data;
  in_len = size;
  in_pos = 0;

  /* The parsers also see the whole input as one string, as a caller with
   * its own framing would pass it (lines over the limit included). */
  char *whole = malloc (size + 1);
  if (!whole)
    die ("out of memory");
  memcpy (whole, data, size);
  whole[size] = '\0';
  check_reply (whole);
  check_request (whole);
  free (whole);

  struct sc_ctl_reader rd;
  sc_ctl_reader_init (&rd, FAKE_FD);
  /* Each call consumes at least one byte or ends the input. */
  for (size_t calls = 0;; calls++) {
    char *line;
    const char *why = NULL;
    if (calls > size + 2)
      die ("the line reader makes no progress");
    int r = sc_ctl_read_line (&rd, &line, &why);
    if (r == -EINVAL) {
      if (!why)
        die ("reader refused a line without a reason");
      sc_ctl_write_err (null_fd, EINVAL, "%s", why);
      continue;
    }
    if (r == 0)
      break;
    if (r < 0)
      die ("sc_ctl_read_line: %s", strerror (-r));
    if (r != 1)
      die ("sc_ctl_read_line returned %d", r);
    size_t len = strnlen (line, SC_CTL_LINE_MAX);
    if (len >= SC_CTL_LINE_MAX || memchr (line, '\n', len))
      die ("the reader returned a line of %zu bytes or with an LF", len);

    check_reply (line);
    check_request (line);
    r = sc_control_handle_line (vol, line, null_fd);
    if (r < 0)
      die ("sc_control_handle_line: %s", strerror (-r));
    volume_poke ();
  }
  if (in_pos != in_len)
    die ("the reader stopped %zu bytes before the end", in_len - in_pos);
  return 0;
}
