/* shadowcopy check: a diff area checked offline, read-only.
 *
 *   shadowcopy check [--data] DIFFAREA
 *   shadowcopy --diff DIFFAREA check [--data]
 *
 * --data also reads every copy back and verifies it against its
 * checksums (cow/check.h, SC_CHECK_DATA).
 *
 * Exit status: 0 clean (warnings allowed), 1 damaged, 2 usage error or
 * the check could not be done (no such file, in use by a server, a newer
 * format).
 */
#include <config.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cow/check.h"
#include "tools/cli.h"
#include "tools/commands.h"

/* One line of the report on stdout: the file's own bytes never reach
 * the terminal unsanitized. */
static void
print_finding (const struct sc_check_finding *f)
{
  char line[sizeof f->what];

  snprintf (line, sizeof line, "%s", f->what);
  sc_cli_sanitize (line);
  printf ("%s: %s\n", f->severity == SC_CHECK_DAMAGE ? "problem" : "warning",
          line);
}

static const char *
plural (uint64_t n)
{
  return n == 1 ? "" : "s";
}

static const char *
check_state (uint32_t flags)
{
  if (flags & SC_SB_CLEAN)
    return "closed cleanly";
  if (flags & SC_SB_FAILED)
    return "a metadata write failed in the last session: "
           "no snapshot of it is trusted";
  if (flags & SC_SB_VOLATILE)
    return "not closed cleanly, with durability=volatile: "
           "no snapshot of it is trusted";
  return "not closed cleanly: the next start recovers it";
}

static void
print_check (const char *path, const struct sc_check_report *r)
{
  size_t i;

  printf ("diff area: %s\n", path);
  printf ("file size: %" PRIu64 " bytes\n", r->file_bytes);
  for (i = 0; i < SC_SB_COPIES; i++) {
    if (r->sb[i].valid)
      printf ("superblock %c (offset %zu): valid, generation %" PRIu64 "\n",
              "AB"[i], i * SC_SB_SIZE, r->sb[i].generation);
    else
      printf ("superblock %c (offset %zu): damaged: %s\n", "AB"[i],
              i * SC_SB_SIZE, r->sb[i].why);
  }
  if (r->loaded) {
    printf ("state: %s\n", check_state (r->sb_flags));
    printf ("volume size: %" PRIu64 " bytes\n"
            "chunk size: %" PRIu32 " bytes\n"
            "epoch: %" PRIu32 "\n"
            "snapshots: %" PRIu64 " (%" PRIu64 " valid, %" PRIu64
            " invalid)\n"
            "clones: %" PRIu64 " (%" PRIu64 " valid, %" PRIu64 " invalid; "
            "%" PRIu64 " in data slots)\n"
            "journal: %" PRIu64 " record%s in %" PRIu64 " slot%s, from "
            "offset %" PRIu64 ", ending at offset %" PRIu64 "\n"
            "copies: %" PRIu64 " (%" PRIu64 " in data slots, %" PRIu64
            " of zeros)\n"
            "data slots read back: %" PRIu64 " of %" PRIu64 "\n"
            "bytes used: %" PRIu64 "\n"
            "bytes free: %" PRIu64 " (%" PRIu64 " free slot%s below the end "
            "of the file)\n",
            r->volume_size, r->chunk_size, r->epoch, r->snapshots,
            r->snapshots_valid, r->snapshots_invalid, r->clones,
            r->clones_valid, r->clones_invalid, r->clone_slots,
            r->journal_records,
            plural (r->journal_records), r->journal_slots,
            plural (r->journal_slots), r->journal_head_offset,
            r->journal_end_offset, r->copies,
            r->data_slots - r->clone_slots, r->zero_copies,
            r->data_slots_read, r->data_slots, r->used_bytes, r->free_bytes,
            r->free_slots, plural (r->free_slots));
    if (r->data_checked)
      printf ("copies verified: %" PRIu64 " (%" PRIu64 " bytes), %" PRIu64
              " damaged\n", r->copies_verified, r->bytes_verified,
              r->copies_damaged);
    else
      printf ("copies verified: not checked (use --data)\n");
  }
  printf ("problems: %zu\n", r->damage);
  printf ("warnings: %zu\n", r->warnings);
  for (i = 0; i < r->nfindings; i++)
    print_finding (&r->findings[i]);
  if (r->nfindings < r->damage + r->warnings)
    printf ("(%zu more not shown)\n",
            r->damage + r->warnings - r->nfindings);
}

/* check DIFFAREA, or --diff DIFFAREA check: offline and read-only, so
 * never through a server's socket.  0 clean (warnings allowed), 1
 * damaged, 2 usage or cannot check. */
int
sc_cmd_check (const struct sc_cli_target *t, int argc, char **argv)
{
  struct sc_check_report rep;
  const char *path = t->diff;
  char err[1024];
  int r;

  if (t->socket)
    return sc_cli_usage_error ("check works on the diff-area file, not "
                               "through a server: shadowcopy check "
                               "DIFFAREA");
  unsigned flags = 0;
  while (argc > 0 && strcmp (argv[0], "--data") == 0) {
    flags |= SC_CHECK_DATA;
    argc--;
    argv++;
  }
  if (argc > 0 && strcmp (argv[0], "--") == 0) {
    argc--;
    argv++;
  }
  else if (argc > 0 && argv[0][0] == '-')
    return sc_cli_usage_error ("check: unknown option '%s'", argv[0]);
  if (argc > 1)
    return sc_cli_usage_error ("check takes one DIFFAREA");
  if (argc == 1 && path)
    return sc_cli_usage_error ("check: give the diff area once, with "
                               "--diff or as the argument");
  if (argc == 1)
    path = argv[0];
  if (!path)
    return sc_cli_usage_error ("check needs DIFFAREA");

  r = sc_diff_check_with (path, flags, &rep, err, sizeof err);
  if (r < 0) {
    sc_cli_error ("%s", err);
    return SC_EXIT_USAGE;
  }
  print_check (path, &rep);
  r = EXIT_SUCCESS;
  if (rep.damage) {
    fflush (stdout);
    sc_cli_error ("%s: damaged: %zu problem%s found", path, rep.damage,
                  plural (rep.damage));
    r = EXIT_FAILURE;
  }
  sc_check_report_free (&rep);
  return r;
}
