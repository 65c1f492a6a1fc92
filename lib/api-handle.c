/* libshadowcopy: a handle on one volume (shadowcopy_open(3)): connect to
 * a server, open a diff area (offline when no server listens), open a
 * configured volume, close, and who answers. */
#include <config.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/api-internal.h"
#include "tools/volume-conf.h"

static int
wrap (struct sc_client *c, struct shadowcopy **out)
{
  struct shadowcopy *h = calloc (1, sizeof *h);

  if (!h) {
    sc_client_close (c, NULL, 0);
    return sc_api_fail (ENOMEM, "%s", strerror (ENOMEM));
  }
  h->c = c;
  *out = h;
  return 0;
}

int
shadowcopy_connect (const char *socket, struct shadowcopy **out)
{
  char err[SC_API_ERRLEN];
  struct sc_client *c;
  int r;

  if (!socket || !out)
    return sc_api_fail (EINVAL, "shadowcopy_connect: no socket given");
  r = sc_client_connect (socket, &c, err, sizeof err);
  if (r < 0)
    return sc_api_fail (-r, "%s", err);
  return wrap (c, out);
}

int
shadowcopy_open (const char *diff, int how, struct shadowcopy **out)
{
  char err[SC_API_ERRLEN];
  struct sc_client *c;
  enum sc_client_access access;
  int r;

  if (!diff || !out)
    return sc_api_fail (EINVAL, "shadowcopy_open: no diff area given");
  switch (how) {
  case SHADOWCOPY_OPEN_SERVER: access = SC_CLIENT_SERVER; break;
  case SHADOWCOPY_OPEN_READ: access = SC_CLIENT_READ; break;
  case SHADOWCOPY_OPEN_WRITE: access = SC_CLIENT_WRITE; break;
  default:
    return sc_api_fail (EINVAL, "shadowcopy_open: %s: unknown mode %d",
                        diff, how);
  }
  r = sc_client_open_diff (diff, access, &c, err, sizeof err);
  if (r < 0)
    return sc_api_fail (-r, "%s", err);
  return wrap (c, out);
}

int
shadowcopy_open_volume (const char *name, struct shadowcopy **out)
{
  char err[SC_API_ERRLEN];
  struct sc_volume_conf vc;
  int r;

  if (!name || !out)
    return sc_api_fail (EINVAL, "shadowcopy_open_volume: no name given");
  if (sc_volume_conf_load (name, NULL, &vc, err, sizeof err) < 0) {
    /* No such volume, or one whose file is wrong. */
    char path[4096];
    snprintf (path, sizeof path, "%s/%s.conf", sc_volume_conf_dir (), name);
    return sc_api_fail (sc_volume_name_ok (name) && access (path, F_OK) < 0
                        && errno == ENOENT ? ENOENT : EINVAL, "%s", err);
  }
  r = shadowcopy_connect (vc.control, out);
  sc_volume_conf_free (&vc);
  return r;
}

int
shadowcopy_close (struct shadowcopy *h)
{
  char err[SC_API_ERRLEN];
  int r;

  if (!h)
    return 0;
  if (h->set_owned)
    return sc_api_fail (EINVAL, "this handle belongs to a snapshot set "
                        "(shadowcopy_set_handle): the set closes it, in "
                        "shadowcopy_set_free; not closed");
  r = sc_client_close (h->c, err, sizeof err);
  free (h);
  return r < 0 ? sc_api_fail (-r, "%s", err) : 0;
}

int
shadowcopy_server (struct shadowcopy *h, struct shadowcopy_server *out)
{
  const char *version, *where;

  SC_API_CHECK (h);
  SC_API_NEED (out);
  memset (out, 0, sizeof *out);
  sc_client_server (h->c, &out->protocol_major, &out->protocol_minor,
                    &version, &where, &out->offline);
  SC_API_COPY (out->version, version);
  SC_API_COPY (out->where, where);
  return 0;
}

int
shadowcopy_fd (struct shadowcopy *h)
{
  SC_API_CHECK (h);
  return sc_client_fd (h->c);
}
