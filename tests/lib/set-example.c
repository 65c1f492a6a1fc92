/* set-example: a requester of libshadowcopy's snapshot sets, as a
 * vendor's backup application would be one, compiled against
 * <shadowcopy.h> alone (tests/test-set-api.sh runs it).
 *
 *   set-example [--name NAME] [--prefix PREFIX] [--writer W]...
 *               [--writers-dir DIR] [--auto-release] [--retries N]
 *               [--freeze-ms MS] [--delete] [--complete] VOLUME...
 *
 * Takes the set; prints each notice as "notice: MESSAGE" on stderr, and
 * on stdout
 *   name NAME
 *   set UUID
 *   volume WHERE NAME UUID SET-UUID auto-release=0|1
 *   result WRITER PHASE RESULT frozen_ns=N
 *   (--complete) complete 0
 *   (--delete) deleted
 * A failing call prints "error: CALL: -ERRNO: MESSAGE" and exits 1.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <shadowcopy.h>

static void
notice (const char *message, void *opaque)
{
  (*(unsigned *) opaque)++;
  fprintf (stderr, "notice: %s\n", message);
}

static void
result (const struct shadowcopy_writer_result *r, void *opaque)
{
  (void) opaque;
  printf ("result %s %s %s frozen_ns=%" PRIu64 "\n", r->writer, r->phase,
          r->result, r->frozen_ns);
}

static int
failed (const char *call, int r)
{
  printf ("error: %s: %d: %s\n", call, r, shadowcopy_get_error ());
  if (shadowcopy_get_errno () != -r) {
    printf ("error: shadowcopy_get_errno says %d\n", shadowcopy_get_errno ());
    return 2;
  }
  return 1;
}

int
main (int argc, char **argv)
{
  struct shadowcopy_set *s;
  unsigned notices = 0;
  bool del = false, complete = false;
  int r, i;

  if ((r = shadowcopy_set_new (&s)) < 0)
    return failed ("shadowcopy_set_new", r);
  shadowcopy_set_notify (s, notice, &notices);
  for (i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    r = 0;
    if (strcmp (a, "--name") == 0 && v && ++i)
      r = shadowcopy_set_name (s, v);
    else if (strcmp (a, "--prefix") == 0 && v && ++i)
      r = shadowcopy_set_name_prefix (s, v);
    else if (strcmp (a, "--writer") == 0 && v && ++i)
      r = shadowcopy_set_add_writer (s, v);
    else if (strcmp (a, "--writers-dir") == 0 && v && ++i)
      r = shadowcopy_set_add_writers_dir (s, v, false);
    else if (strcmp (a, "--retries") == 0 && v && ++i)
      shadowcopy_set_retries (s, atoi (v), 100, false);
    else if (strcmp (a, "--freeze-ms") == 0 && v && ++i)
      shadowcopy_set_timeouts (s, strtoull (v, NULL, 10), 0);
    else if (strcmp (a, "--auto-release") == 0)
      shadowcopy_set_auto_release (s, true);
    else if (strcmp (a, "--delete") == 0)
      del = true;
    else if (strcmp (a, "--complete") == 0)
      complete = true;
    else
      r = shadowcopy_set_add_volume (s, a);
    if (r < 0)
      return failed ("an option", r);
  }
  for (size_t k = 0; shadowcopy_set_writer (s, k); k++)
    printf ("writer %s\n", shadowcopy_set_writer (s, k));

  r = shadowcopy_set_create (s);
  shadowcopy_set_writer_results (s, result, NULL);
  if (r < 0) {
    printf ("notices %u\n", notices);
    r = failed ("shadowcopy_set_create", r);
    shadowcopy_set_free (s);
    return r;
  }
  printf ("name %s\nset %s\n", shadowcopy_set_snapshot_name (s),
          shadowcopy_set_id (s));
  for (size_t k = 0; k < shadowcopy_set_volumes (s); k++) {
    struct shadowcopy_snapshot snap;
    const char *where;
    if ((r = shadowcopy_set_snapshot (s, k, &where, &snap)) < 0)
      return failed ("shadowcopy_set_snapshot", r);
    printf ("volume %s %s %s %s auto-release=%d\n", where, snap.name,
            snap.uuid, snap.set, snap.auto_release);
  }
  if (shadowcopy_set_snapshot (s, shadowcopy_set_volumes (s), NULL, NULL)
      != -EINVAL)
    return printf ("error: volume %zu past the last is not -EINVAL\n",
                   shadowcopy_set_volumes (s)), 2;
  if (shadowcopy_set_create (s) != -EALREADY)
    return printf ("error: a set taken twice is not -EALREADY\n"), 2;
  fflush (stdout);
  if (complete) {
    r = shadowcopy_set_backup_complete (s, true);
    printf ("complete %d\n", r);
  }
  if (del) {
    if ((r = shadowcopy_set_delete (s)) < 0)
      return failed ("shadowcopy_set_delete", r);
    printf ("deleted\n");
  }
  shadowcopy_set_free (s);
  return 0;
}
