/* shadowcopy: the CLONE verb: a writable clone of a snapshot (see
 * control-protocol.h and cow/diffarea.h, "writable clones").  It runs
 * offline too (the CLI's in-process server): a clone is records only,
 * until it is written through a server's export. */
#include <config.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "engine/control-verbs.h"

/* CLONE SNAPSHOT NAME: answers "* snapshot ... type=clone base=SNAPSHOT"
 * and OK; a bad request changes nothing and says why. */
int
sc_verb_clone (struct session *ss, const struct sc_ctl_request *req, int fd)
{
  const char *base = req->args[0], *name = req->args[1];
  struct sc_snapshot_info info;
  char err[512] = "";
  int r;

  if (!sc_snapshot_name_valid (base))
    return sc_reply_snapshot_err (fd, -EINVAL, "clone", base);
  r = sc_volume_clone_create (ss->v, base, name, &info, err, sizeof err);
  if (r < 0 && err[0])
    return sc_ctl_write_err (fd, -r, "cannot clone %s as %s: %s", base, name,
                             err);
  if (r < 0)
    return sc_reply_snapshot_verr (ss->v, fd, r, "clone", base);
  r = sc_reply_snapshot (fd, &info);
  return r < 0 ? r : sc_ctl_write_ok (fd);
}
