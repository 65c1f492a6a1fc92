/* libFuzzer harness: a backup's manifest (tools/manifest.c) as backup and
 * verify read it.
 *
 * Input: the bytes of a TARGET.manifest.json.  Each is parsed; an
 * accepted one is printed back with the writer and must parse again, and
 * print the same (the writer and the parser agree).  Nothing may crash,
 * leak or read past the input.
 */
#include <config.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <unistd.h>

#include "tools/manifest.h"

/* run.sh builds engine/control-protocol.c (for sc_uuid_parse) reading
 * through the control harness's fake read(2); here it is the real one. */
ssize_t fuzz_ctl_read (int fd, void *buf, size_t n);
ssize_t
fuzz_ctl_read (int fd, void *buf, size_t n)
{
  return read (fd, buf, n);
}

static char *
print (const struct sc_manifest *m, size_t *len)
{
  char *buf = NULL;
  FILE *f = open_memstream (&buf, len);
  if (!f || sc_manifest_print (m, f) < 0)
    abort ();
  fclose (f);
  return buf;
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  struct sc_manifest m, again;
  char err[512];
  size_t n1, n2;

  if (sc_manifest_parse ((const char *) data, size, &m, err, sizeof err) < 0)
    return 0;
  char *one = print (&m, &n1);
  if (sc_manifest_parse (one, n1, &again, err, sizeof err) < 0) {
    fprintf (stderr, "printed manifest refused: %s\n%s\n", err, one);
    abort ();
  }
  char *two = print (&again, &n2);
  if (n1 != n2 || memcmp (one, two, n1) != 0)
    abort ();
  free (one);
  free (two);
  sc_manifest_free (&m);
  sc_manifest_free (&again);
  return 0;
}
