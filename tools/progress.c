/* shadowcopy: a long verb's progress (progress.h). */
#include <config.h>

#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tools/cli.h"
#include "tools/progress.h"

int
sc_progress_option (const char *verb, const char *arg, struct sc_progress *p)
{
  char *end;
  long fd;

  if (strcmp (arg, "--progress") == 0) {
    p->on = true;
    p->fd = -1;
    return 1;
  }
  if (strncmp (arg, "--progress=", 11) != 0)
    return 0;
  fd = strtol (arg + 11, &end, 10);
  if (!arg[11] || *end || fd < 0 || fd > INT_MAX)
    return sc_cli_usage_error ("%s: --progress=FD needs a file descriptor "
                               "number", verb);
  p->on = true;
  p->fd = (int) fd;
  return 1;
}

void
sc_progress_start (struct sc_progress *p)
{
  p->start_ms = p->last_ms = sc_cli_mono_ms ();
  p->last_pct = -1;
}

void
sc_progress_update (void *opaque, uint64_t done, uint64_t total)
{
  struct sc_progress *p = opaque;
  int pct = total ? (int) (done * 100 / total) : 100;
  uint64_t now = sc_cli_mono_ms ();

  if (!p->on)
    return;
  if (p->fd >= 0) {
    if (pct != p->last_pct)
      dprintf (p->fd, "%d/100\n", pct);
    p->last_pct = pct;
    return;
  }
  if (pct == p->last_pct && now - p->last_ms < 500 && done != total)
    return;
  p->last_pct = pct;
  p->last_ms = now;
  double s = (double) (now - p->start_ms) / 1000.0;
  double rate = s > 0 ? (double) done / s : 0;
  double eta = rate > 0 ? (double) (total - done) / rate : 0;
  fprintf (stderr, "\r%3d%% %" PRIu64 "/%" PRIu64 " MiB %.1f MiB/s ETA "
           "%.0fs ", pct, done >> 20, total >> 20, rate / 1048576.0, eta);
  if (done == total)
    fputc ('\n', stderr);
}
