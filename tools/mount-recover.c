/* shadowcopy mount --recover: a crash-consistent snapshot's filesystem
 * mounted with its journal replayed, on a temporary writable clone.
 *
 * A snapshot taken without a writer's freeze holds a filesystem as a
 * power cut would have left it: its journal must be replayed before it
 * is consistent, and a read-only device cannot be written to replay it
 * (hence mount's noload / norecovery, which show the filesystem without
 * the journal's last transactions).  VSS calls the cure auto-recovery.
 * Here the snapshot stays untouched: a clone of it (CLONE, redirect-on-
 * write in the diff area, the origin never written) takes the replay's
 * writes, is mounted read-write so that the kernel replays the journal,
 * then remounted read-only; umount deletes the clone, and the replay's
 * writes with it.  cmd-mount.c records the clone as the lowest layer of
 * the mount, so a failed mount or umount removes it last.
 */
#include <config.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "tools/cli.h"
#include "tools/client.h"
#include "tools/mount-recover.h"

int
sc_mount_recover_clone (const char *socket, const char *name, char *clone,
                        size_t len)
{
  struct sc_client *c;
  char err[1024], suffix[40];

  snprintf (suffix, sizeof suffix, ".recover-%ld", (long) getpid ());
  /* Names are at most SC_NAME_MAX (128) characters. */
  snprintf (clone, len, "%.*s%s", (int) (128 - strlen (suffix)), name,
            suffix);
  if (sc_client_connect (socket, &c, err, sizeof err) < 0) {
    sc_cli_error ("%s", err);
    return -1;
  }
  const char *args[] = { name, clone };
  int r = sc_client_request (c, "CLONE", args, 2, NULL, NULL, err,
                             sizeof err);
  if (r < 0) {
    sc_client_close (c, NULL, 0);
    sc_cli_error ("a clone of %s to replay its journal on: %s", name, err);
    return -1;
  }
  if (sc_client_close (c, err, sizeof err) < 0) {
    sc_cli_error ("%s", err);
    return -1;
  }
  return 0;
}

static void
deleted (const char *name, void *opaque)
{
  (void) name;
  (void) opaque;
}

int
sc_mount_recover_delete (const char *socket, const char *clone)
{
  struct sc_client *c;
  char err[1024];

  if (sc_client_connect (socket, &c, err, sizeof err) < 0) {
    sc_cli_error ("deleting the recovery clone %s: %s", clone, err);
    return -1;
  }
  int r = sc_client_delete (c, SC_CLIENT_DELETE_NAME, clone, deleted, NULL,
                            err, sizeof err);
  sc_client_close (c, NULL, 0);
  if (r < 0 && r != -ENOENT) {
    sc_cli_error ("deleting the recovery clone %s: %s", clone, err);
    return -1;
  }
  return 0;
}
