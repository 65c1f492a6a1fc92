/* shadowcopy: is the NBD export the snapshot the control socket named?
 * (export-identity.h) */
#include <config.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "tools/export-identity.h"

#define UUID_TEXT 36

int
sc_export_description_uuid (const char *desc, char out[37])
{
  static const char key[] = "uuid=";
  for (const char *p = desc; p && (p = strstr (p, key)) != NULL; p++) {
    const char *v = p + sizeof key - 1;
    if (p != desc && p[-1] != ' ')
      continue;                 /* inside another word */
    if (strlen (v) < UUID_TEXT || (v[UUID_TEXT] != '\0' &&
                                   v[UUID_TEXT] != ' '))
      continue;
    memcpy (out, v, UUID_TEXT);
    out[UUID_TEXT] = '\0';
    return 0;
  }
  return -ENOENT;
}

int
sc_export_identity_check (struct nbd_handle *h, const char *name,
                          const char *server, const char *uuid,
                          char *err, size_t errlen)
{
  char *desc = nbd_get_export_description (h);
  char got[UUID_TEXT + 1];
  int r = desc ? sc_export_description_uuid (desc, got) : -ENOENT;

  free (desc);
  if (r < 0) {
    snprintf (err, errlen, "the export %s on %s does not say which snapshot "
              "it is (no uuid= in its description; not a shadowcopy "
              "server?), and the control socket names snapshot %s: refused",
              name, server, uuid);
    return -EXDEV;
  }
  if (strcasecmp (got, uuid) != 0) {
    snprintf (err, errlen, "the export %s on %s is snapshot %s, but the "
              "control socket names snapshot %s: that server is not this "
              "volume's (another volume with a snapshot of that name?)",
              name, server, got, uuid);
    return -EXDEV;
  }
  return 0;
}
