/* libshadowcopy: the thread's last error (shadowcopy_get_error). */
#include <config.h>

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>

#include "lib/api-internal.h"

static __thread char last_message[4096];
static __thread int last_errno;

int
sc_api_fail (int err, const char *fmt, ...)
{
  va_list ap;

  if (err <= 0)                 /* a caller's slip: still an error */
    err = EIO;
  va_start (ap, fmt);
  vsnprintf (last_message, sizeof last_message, fmt, ap);
  va_end (ap);
  last_errno = err;
  return -err;
}

void
sc_api_clear_error (void)
{
  last_message[0] = '\0';
  last_errno = 0;
}

const char *
shadowcopy_get_error (void)
{
  return last_message;
}

int
shadowcopy_get_errno (void)
{
  return last_errno;
}

const char *
shadowcopy_version (void)
{
  return PACKAGE_VERSION;
}
