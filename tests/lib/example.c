/* A requester on libshadowcopy, built against the installed header and
 * pkg-config file by tests/test-libshadowcopy.sh.  Each line it prints is
 * one fact the test checks; errors go to stderr as "example: MESSAGE"
 * with the library's message, and the exit status is 1.
 *
 *   example online SOCKET       connect; list, create, find, checkpoint,
 *                               clone, diff, info, stats, delete
 *   example offline DIFFAREA    open the diff area (no server): list,
 *                               info, diff, clone, delete; stats refused
 *   example hello SOCKET        connect and say who answers
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <shadowcopy.h>

static int
die (const char *what)
{
  fprintf (stderr, "example: %s: %s (errno %d)\n", what,
           shadowcopy_get_error (), shadowcopy_get_errno ());
  return 1;
}

static int
count_extent (uint64_t offset, uint64_t length, void *opaque)
{
  uint64_t *v = opaque;

  (void) offset;
  v[0]++;
  v[1] += length;
  return 0;
}

static int
count_field (const char *key, const char *value, void *opaque)
{
  (void) value;
  if (strcmp (key, "chunks-copied") == 0)
    ++*(int *) opaque;
  return 0;
}

static void
say_deleted (const char *name, void *opaque)
{
  (void) opaque;
  printf ("deleted %s\n", name);
}

static void
print_list (struct shadowcopy *h)
{
  struct shadowcopy_snapshot *s;
  size_t n;

  if (shadowcopy_list (h, &s, &n) < 0) {
    die ("list");
    exit (1);
  }
  printf ("list %zu:", n);
  for (size_t i = 0; i < n; i++)
    printf (" %s/%s", s[i].name, s[i].type);
  printf ("\n");
  free (s);
}

static int
diff (struct shadowcopy *h, const char *from, const char *to)
{
  struct shadowcopy_diff d;
  uint64_t v[2] = { 0, 0 };

  if (shadowcopy_diff (h, from, to, count_extent, v, &d) < 0)
    return die ("diff");
  printf ("diff %s %s: %" PRIu64 " extents, %" PRIu64 " bytes (header %"
          PRIu64 "), from %s/%s to %s/%s, chunk %" PRIu64 "\n", from,
          to ? to : "live", v[0], v[1], d.bytes, d.from.name, d.from.type,
          d.to.name, d.to.type, d.chunk_size);
  return v[1] == d.bytes ? 0 : 1;
}

static int
online (const char *socket)
{
  struct shadowcopy *h;
  struct shadowcopy_snapshot s, f, ck, cl;
  struct shadowcopy_volume v;
  struct shadowcopy_create_args a = { .name = "ex1" };
  int counters = 0;

  if (shadowcopy_connect (socket, &h) < 0)
    return die ("connect");
  print_list (h);
  if (shadowcopy_create (h, &a, &s) < 0)
    return die ("create");
  printf ("created %s id=%" PRIu64 " type=%s uuid=%zu valid=%d\n", s.name,
          s.id, s.type, strlen (s.uuid), s.valid);
  if (shadowcopy_create (h, &a, NULL) != -EEXIST)
    return die ("create twice");
  printf ("again: %s\n", shadowcopy_get_error ());
  if (shadowcopy_find (h, "ex1", &f) < 0)
    return die ("find");
  printf ("found %s same-uuid=%d\n", f.name, strcmp (f.uuid, s.uuid) == 0);
  if (shadowcopy_find (h, "nosuch", &f) != -ENOENT)
    return die ("find nosuch");
  printf ("find nosuch: %s\n", shadowcopy_get_error ());
  if (shadowcopy_checkpoint (h, "ck1", false, &ck) < 0)
    return die ("checkpoint");
  printf ("checkpoint %s type=%s\n", ck.name, ck.type);
  if (shadowcopy_clone (h, "ex1", "excl", &cl) < 0)
    return die ("clone");
  printf ("clone %s type=%s base=%s\n", cl.name, cl.type, cl.base);
  if (diff (h, "ex1", NULL) || diff (h, "ck1", NULL))
    return 1;
  if (shadowcopy_info (h, &v) < 0)
    return die ("info");
  printf ("info size=%" PRIu64 " chunk=%" PRIu64 " snapshots=%" PRIu64
          " checkpoints=%" PRIu64 " listen=%d\n", v.volume_size,
          v.chunk_size, v.snapshots, v.checkpoints, v.listen[0] != 0);
  if (shadowcopy_stats (h, count_field, &counters) < 0)
    return die ("stats");
  printf ("stats chunks-copied seen=%d\n", counters);
  print_list (h);
  if (shadowcopy_delete (h, "excl", NULL, 0, say_deleted, NULL) < 0 ||
      shadowcopy_delete (h, "ex1", "00000000-0000-0000-0000-000000000000",
                         0, say_deleted, NULL) != -ESTALE)
    return die ("delete");
  printf ("stale uuid: %s\n", shadowcopy_get_error ());
  if (shadowcopy_delete (h, "ex1", s.uuid, 0, say_deleted, NULL) < 0)
    return die ("delete by uuid");
  print_list (h);
  if (shadowcopy_close (h) < 0)
    return die ("close");
  return 0;
}

static int
offline (const char *diffarea)
{
  struct shadowcopy *h;
  struct shadowcopy_server sv;
  struct shadowcopy_volume v;
  int counters = 0;

  if (shadowcopy_open (diffarea, SHADOWCOPY_OPEN_WRITE, &h) < 0)
    return die ("open");
  if (shadowcopy_server (h, &sv) < 0)
    return die ("server");
  printf ("offline=%d protocol=%u.%u\n", sv.offline, sv.protocol_major,
          sv.protocol_minor);
  print_list (h);
  if (shadowcopy_info (h, &v) < 0)
    return die ("info");
  printf ("info size=%" PRIu64 " snapshots=%" PRIu64 "\n", v.volume_size,
          v.snapshots);
  if (diff (h, "base", NULL))
    return 1;
  if (shadowcopy_stats (h, count_field, &counters) != -ENOTCONN)
    return die ("stats offline");
  printf ("stats offline: %s\n", shadowcopy_get_error ());
  if (shadowcopy_clone (h, "base", "offcl", NULL) < 0)
    return die ("clone offline");
  if (shadowcopy_delete (h, "offcl", NULL, SHADOWCOPY_DELETE_WITH_CLONES,
                         say_deleted, NULL) < 0)
    return die ("delete offline");
  print_list (h);
  return shadowcopy_close (h) < 0 ? die ("close") : 0;
}

static int
hello (const char *socket)
{
  struct shadowcopy *h;
  struct shadowcopy_server sv;

  if (shadowcopy_connect (socket, &h) < 0)
    return die ("connect");
  if (shadowcopy_server (h, &sv) < 0)
    return die ("server");
  printf ("protocol=%u.%u version=%s offline=%d\n", sv.protocol_major,
          sv.protocol_minor, sv.version, sv.offline);
  print_list (h);
  return shadowcopy_close (h) < 0 ? die ("close") : 0;
}

int
main (int argc, char **argv)
{
  if (argc != 3) {
    fprintf (stderr, "usage: example online|offline|hello WHERE\n");
    return 2;
  }
  printf ("libshadowcopy %s\n", shadowcopy_version ());
  if (strcmp (argv[1], "online") == 0)
    return online (argv[2]);
  if (strcmp (argv[1], "offline") == 0)
    return offline (argv[2]);
  if (strcmp (argv[1], "hello") == 0)
    return hello (argv[2]);
  fprintf (stderr, "example: unknown mode %s\n", argv[1]);
  return 2;
}
