/* shadowcopy: making a file's new name durable (durable.h). */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "tools/durable.h"

int
sc_fsync_dir_of (const char *path)
{
  char dir[PATH_MAX];
  const char *slash = strrchr (path, '/');
  int fd, r = 0;

  if (!slash)
    snprintf (dir, sizeof dir, ".");
  else if (slash == path)
    snprintf (dir, sizeof dir, "/");
  else
    snprintf (dir, sizeof dir, "%.*s", (int) (slash - path), path);
  fd = open (dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0)
    return -errno;
  if (fsync (fd) < 0)
    r = -errno;
  close (fd);
  return r;
}
