/* shadowcopy: where the CLI reaches a server's NBD exports (see
 * nbd-target.h). */
#include <config.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tools/nbd-target.h"

static const char *const schemes[] = {
  "nbd://", "nbds://", "nbd+unix://", "nbds+unix://",
};

bool
sc_nbd_uri_is (const char *s)
{
  for (size_t i = 0; i < sizeof schemes / sizeof schemes[0]; i++)
    if (strncmp (s, schemes[i], strlen (schemes[i])) == 0)
      return true;
  return false;
}

/* Where the URI's path starts (after scheme://authority), and where it
 * ends (the query or the fragment, or the end). */
static void
uri_path (const char *uri, const char **path, const char **end)
{
  const char *p = strstr (uri, "://") + 3;
  p += strcspn (p, "/?#");
  *path = p;
  *end = p + strcspn (p, "?#");
}

int
sc_nbd_uri_check (const char *uri, char *err, size_t errlen)
{
  const char *path, *end;

  if (!sc_nbd_uri_is (uri)) {
    snprintf (err, errlen, "--nbd-uri %s: not an NBD URI (nbd://, nbds://, "
              "nbd+unix:// or nbds+unix://)", uri);
    return -1;
  }
  uri_path (uri, &path, &end);
  if (end - path > 1) {
    snprintf (err, errlen, "--nbd-uri %s: names the export '%.*s'; give "
              "the server only (the export is the snapshot's name)", uri,
              (int) (end - path - 1), path + 1);
    return -1;
  }
  return 0;
}

/* name with every byte outside [A-Za-z0-9._~:+-] percent-encoded. */
static void
encode (FILE *f, const char *name)
{
  for (const unsigned char *p = (const unsigned char *) name; *p; p++)
    if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
        (*p >= '0' && *p <= '9') || strchr ("._~:+-", *p))
      fputc (*p, f);
    else
      fprintf (f, "%%%02X", *p);
}

char *
sc_nbd_target_export_uri (const struct sc_nbd_target *t, const char *name)
{
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream (&buf, &len);

  if (!f)
    return NULL;
  if (t->uri) {
    const char *path, *end;
    uri_path (t->uri, &path, &end);
    fprintf (f, "%.*s/", (int) (path - t->uri), t->uri);
    encode (f, name);
    fputs (end, f);
  }
  else {
    fputs ("nbd+unix:///", f);
    encode (f, name);
    fprintf (f, "?socket=%s", t->socket);
  }
  if (fclose (f) != 0) {
    free (buf);
    return NULL;
  }
  return buf;
}

const char *
sc_nbd_target_text (const struct sc_nbd_target *t)
{
  return t->uri ? t->uri : t->socket ? t->socket : "(no NBD server)";
}

static int
hex (char c)
{
  return c >= '0' && c <= '9' ? c - '0'
         : c >= 'a' && c <= 'f' ? c - 'a' + 10
         : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* s[0, n) percent-decoded, malloc'd. */
static char *
decode (const char *s, size_t n)
{
  char *out = malloc (n + 1), *o = out;

  if (!out)
    return NULL;
  for (size_t i = 0; i < n; i++)
    if (s[i] == '%' && i + 2 < n && hex (s[i + 1]) >= 0 &&
        hex (s[i + 2]) >= 0) {
      *o++ = (char) (hex (s[i + 1]) * 16 + hex (s[i + 2]));
      i += 2;
    }
    else
      *o++ = s[i];
  *o = '\0';
  return out;
}

int
sc_nbd_uri_split_files (const char *uri, char **rest, char **psk,
                        char **certs)
{
  const char *q = strchr (uri, '?'), *frag;
  size_t len = 0;
  FILE *f;

  *rest = *psk = *certs = NULL;
  if (!(f = open_memstream (rest, &len)))
    return -ENOMEM;
  if (!q) {
    fputs (uri, f);
    return fclose (f) == 0 ? 0 : -ENOMEM;
  }
  frag = q + strcspn (q, "#");
  fprintf (f, "%.*s", (int) (q - uri), uri);
  char sep = '?';
  for (const char *p = q + 1; p < frag;) {
    size_t n = strcspn (p, "&;");
    if (p + n > frag)
      n = (size_t) (frag - p);
    char **val = strncmp (p, "tls-psk-file=", 13) == 0 ? psk
                 : strncmp (p, "tls-certificates=", 17) == 0 ? certs : NULL;
    if (val) {
      const char *eq = strchr (p, '=') + 1;
      free (*val);
      if (!(*val = decode (eq, (size_t) (p + n - eq))))
        goto nomem;
    }
    else if (n > 0) {
      fprintf (f, "%c%.*s", sep, (int) n, p);
      sep = '&';
    }
    p += n + (p + n < frag);
  }
  fputs (frag, f);
  if (fclose (f) != 0) {
    f = NULL;
    goto nomem;
  }
  return 0;

 nomem:
  if (f)
    fclose (f);
  free (*rest);
  free (*psk);
  free (*certs);
  *rest = *psk = *certs = NULL;
  return -ENOMEM;
}

int
sc_nbd_target_connect_uri (struct nbd_handle *h,
                           const struct sc_nbd_target *t, const char *name,
                           char *err, size_t errlen)
{
  char *uri = sc_nbd_target_export_uri (t, name);
  int r = -1;

  if (!uri)
    snprintf (err, errlen, "%s", strerror (ENOMEM));
  else if (nbd_set_uri_allow_local_file (h, true) < 0 ||
           nbd_connect_uri (h, uri) < 0)
    snprintf (err, errlen, "%s", nbd_get_error ());
  else
    r = 0;
  free (uri);
  return r;
}
