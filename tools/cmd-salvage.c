/* shadowcopy salvage: a diff area whose journal is damaged, made usable
 * again, offline.
 *
 *   shadowcopy salvage DIFFAREA
 *   shadowcopy --diff DIFFAREA salvage
 *
 * It keeps what can be proven intact, drops the rest, and says what was
 * lost and, per snapshot, whether it was kept or marked invalid
 * (cow/salvage.h).  Exit status: 0 salvaged, or nothing to salvage; 1
 * the salvage failed (damage it cannot go past, an I/O error); 2 usage
 * error or it could not start (no such file, in use by a server).
 */
#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cow/salvage.h"
#include "tools/cli.h"
#include "tools/commands.h"

/* Text from the file (names, messages) never reaches the terminal
 * unsanitized. */
static void
print_clean (const char *prefix, const char *text)
{
  char line[1024];

  snprintf (line, sizeof line, "%s", text);
  sc_cli_sanitize (line);
  printf ("%s%s\n", prefix, line);
}

static void
print_loss (const struct sc_salvage_loss *l)
{
  char head[160];

  if (l->last_seq == SC_SALVAGE_TO_END)
    snprintf (head, sizeof head, "  records %" PRIu64 " to the end of the "
              "journal (how many is unknown), damage at offset %" PRIu64
              ": ", l->first_seq, l->offset);
  else if (l->last_seq == l->first_seq)
    snprintf (head, sizeof head, "  record %" PRIu64 ", at offset %" PRIu64
              ": ", l->first_seq, l->offset);
  else
    snprintf (head, sizeof head, "  records %" PRIu64 "-%" PRIu64
              ", damage at offset %" PRIu64 ": ", l->first_seq, l->last_seq,
              l->offset);
  print_clean (head, l->why);
}

static void
print_salvage (const char *path, const struct sc_salvage_report *r)
{
  size_t i, kept = 0, marked = 0;

  print_clean ("diff area: ", path);
  print_clean ("refused because: ", r->refusal);
  printf ("journal records lost: %" PRIu64 " place%s\n", r->nlosses_total,
          r->nlosses_total == 1 ? "" : "s");
  for (i = 0; i < r->nlosses; i++)
    print_loss (&r->losses[i]);
  if (r->nlosses < r->nlosses_total)
    printf ("  (%" PRIu64 " more not shown)\n",
            r->nlosses_total - r->nlosses);
  if (r->skipped)
    printf ("later records about snapshots lost with them, skipped: %"
            PRIu64 "\n", r->skipped);
  if (r->superseded)
    printf ("snapshots deleted by lost records (a later snapshot has the "
            "name), gone: %" PRIu64 "\n", r->superseded);
  printf ("snapshots:\n");
  for (i = 0; i < r->nsnaps; i++) {
    const struct sc_salvage_snap *s = &r->snaps[i];
    char head[200];
    snprintf (head, sizeof head, "  %s (id %" PRIu64 ", epoch %" PRIu32
              "): ", s->name, s->id, s->epoch);
    sc_cli_sanitize (head);
    if (s->reason == SC_VALID) {
      printf ("%skept\n", head);
      kept++;
    }
    else if (s->marked) {
      printf ("%smarked invalid: %s\n", head,
              sc_invalid_reason_text (s->reason));
      marked++;
    }
    else
      printf ("%salready invalid: %s\n", head,
              sc_invalid_reason_text (s->reason));
  }
  printf ("kept: %zu; marked invalid: %zu\n", kept, marked);
  if (r->revert_target[0])
    print_clean ("a revert ran; it was ended unfinished (chunks not "
                 "written back hold their pre-revert content; run "
                 "`shadowcopy revert` again): its target was ",
                 r->revert_target);
  printf ("a snapshot created by a lost record, if any, is gone\n");
  printf ("written: a new journal (checkpoint); the disk was not touched\n");
}

int
sc_cmd_salvage (const struct sc_cli_target *t, int argc, char **argv)
{
  struct sc_salvage_report rep;
  const char *path = t->diff;
  char err[1280];
  int r;

  if (t->socket)
    return sc_cli_usage_error ("salvage works on the diff-area file, with "
                               "the server stopped: shadowcopy salvage "
                               "DIFFAREA");
  if (argc > 0 && strcmp (argv[0], "--") == 0) {
    argc--;
    argv++;
  }
  else if (argc > 0 && argv[0][0] == '-')
    return sc_cli_usage_error ("salvage: unknown option '%s'", argv[0]);
  if (argc > 1)
    return sc_cli_usage_error ("salvage takes one DIFFAREA");
  if (argc == 1 && path)
    return sc_cli_usage_error ("salvage: give the diff area once, with "
                               "--diff or as the argument");
  if (argc == 1)
    path = argv[0];
  if (!path)
    return sc_cli_usage_error ("salvage needs DIFFAREA");

  r = sc_diff_salvage (path, &rep, err, sizeof err);
  if (r < 0) {
    sc_cli_sanitize (err);
    sc_cli_error ("%s", err);
    switch (r) {
    case -EWOULDBLOCK: case -ENOENT: case -EACCES: case -EPERM:
    case -EPROTONOSUPPORT: case -EISDIR: case -ENOTDIR:
      return SC_EXIT_USAGE;
    }
    return EXIT_FAILURE;
  }
  if (!rep.needed) {
    print_clean ("diff area: ", path);
    printf ("nothing to salvage: it opens as it is; nothing was written\n");
    return EXIT_SUCCESS;
  }
  print_salvage (path, &rep);
  sc_salvage_report_free (&rep);
  return EXIT_SUCCESS;
}
