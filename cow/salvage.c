/* shadowcopy: salvaging a diff area whose journal is damaged (salvage.h).
 *
 * Notes on the design
 *
 * Salvage is an open like any other, with two differences made by replay
 * (replay.c, journal.c): it goes past damaged records to the next record
 * that checks out, and at the end it marks invalid every snapshot that was
 * listed when records were lost.  The open then writes a checkpoint, as a
 * read-write open after an unclean stop does, so the damaged journal is
 * left behind and the superblock points at a whole new one; closing marks
 * the diff area clean.  docs/design.md ("Salvage") gives the reasoning.
 *
 * Before that, a read-only open says whether anything needs salvaging at
 * all: a diff area that opens as it is is left alone.
 */
#include <config.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cow/diffarea-internal.h"
#include "cow/salvage.h"

void
sc_salvage_report_free (struct sc_salvage_report *rep)
{
  free (rep->losses);
  free (rep->snaps);
  free (rep->marked);
  rep->losses = NULL;
  rep->snaps = NULL;
  rep->marked = NULL;
  rep->nlosses = rep->nsnaps = rep->nmarked = 0;
}

/* Errors an open gives for reasons other than a damaged file. */
static bool
not_damage (int r)
{
  switch (r) {
  case -ENOMEM: case -EWOULDBLOCK: case -ENOENT: case -EACCES: case -EPERM:
  case -EPROTONOSUPPORT: case -EISDIR: case -ENOTDIR:
    return true;
  }
  return false;
}

/* The snapshots as salvage left them. */
static int
report_snapshots (struct sc_diff *d, struct sc_salvage_report *rep)
{
  struct sc_snapshot_info *infos = NULL;
  size_t n = 0;
  int r = sc_diff_snapshot_list (d, &infos, &n);
  if (r < 0)
    return r;
  rep->snaps = calloc (n ? n : 1, sizeof *rep->snaps);
  if (!rep->snaps) {
    free (infos);
    return -ENOMEM;
  }
  for (size_t i = 0; i < n; i++) {
    struct sc_salvage_snap *s = &rep->snaps[i];
    s->id = infos[i].id;
    s->epoch = infos[i].epoch;
    snprintf (s->name, sizeof s->name, "%s", infos[i].name);
    s->reason = infos[i].invalid_reason;
    for (size_t k = 0; k < rep->nmarked && !s->marked; k++)
      s->marked = rep->marked[k] == s->id;
  }
  rep->nsnaps = n;
  free (infos);
  return 0;
}

int
sc_diff_salvage (const char *path, struct sc_salvage_report *rep,
                 char *err, size_t errlen)
{
  memset (rep, 0, sizeof *rep);
  struct stat st;
  if (stat (path, &st) == -1) {
    int e = errno;
    snprintf (err, errlen, "%s: %s", path, strerror (e));
    return -e;
  }
  if (!S_ISREG (st.st_mode)) {
    snprintf (err, errlen, "%s: not a diff area: %s", path,
              S_ISDIR (st.st_mode) ? "it is a directory"
                                   : "not a regular file");
    return -EISDIR;
  }
  struct sc_diff *d = NULL;
  int r = sc_diff_open (path, SC_DIFF_RDONLY | SC_DIFF_NOWAIT, NULL, 0, &d,
                        rep->refusal, sizeof rep->refusal);
  if (r == 0) {
    sc_diff_close (d);          /* read-only: writes nothing */
    return 0;
  }
  if (not_damage (r)) {
    snprintf (err, errlen, "%s", rep->refusal);
    return r;
  }

  rep->needed = true;
  char msg[1024] = "";
  r = diff_open (path, SC_DIFF_NOWAIT, NULL, 0, 0, rep, &d, msg,
                 sizeof msg);
  if (r < 0) {
    snprintf (err, errlen, "salvage failed: %s", msg);
    sc_salvage_report_free (rep);
    return r;
  }
  r = report_snapshots (d, rep);
  int c = sc_diff_close (d);
  if (r == 0 && c < 0)
    r = c;
  if (r < 0) {
    snprintf (err, errlen, "%s: salvage: %s", path, strerror (-r));
    sc_salvage_report_free (rep);
  }
  return r;
}
