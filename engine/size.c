/* shadowcopy: sizes given by the user (see size.h). */
#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "engine/size.h"

static inline bool
is_digit (char c)
{
  return c >= '0' && c <= '9';
}

/* 1024 to the power of the suffix letter's place in "KMGTPE" (1-based,
 * any case), or 0 if it is not one of the first `n` of them. */
static uint64_t
binary_scale (char c, size_t n)
{
  static const char letters[] = "KMGTPE";

  if (c >= 'a' && c <= 'z')
    c = (char) (c - 'a' + 'A');
  for (size_t i = 0; i < n && i < sizeof letters - 1; i++)
    if (letters[i] == c)
      return (uint64_t) 1 << (10 * (i + 1));
  return 0;
}

/* DIGITS [K|M|G|T [B|iB]]: the CLI's sizes. */
static int
parse_cli_bytes (const char *s, uint64_t *out)
{
  char *end;
  uint64_t n, scale = 1;

  if (!is_digit (*s))
    return -EINVAL;
  errno = 0;
  n = strtoull (s, &end, 10);
  if (errno)
    return -EINVAL;
  if (*end) {
    scale = binary_scale (*end++, 4);
    if (scale == 0)
      return -EINVAL;
    if ((end[0] == 'i' || end[0] == 'I') && (end[1] == 'B' || end[1] == 'b'))
      end += 2;
    else if (end[0] == 'B' || end[0] == 'b')
      end++;
  }
  if (*end || n > UINT64_MAX / scale)
    return -EINVAL;
  *out = n * scale;
  return 0;
}

/* What nbdkit_parse_size accepts (nbdkit 1.32), for the plugin's keys. */
static int
parse_nbdkit_bytes (const char *s, uint64_t *out)
{
  char *end;
  intmax_t n;
  uint64_t scale = 1;

  errno = 0;
  n = strtoimax (s, &end, 10);
  if (end == s || n < 0 || errno)
    return -EINVAL;
  if (*end == 's' || *end == 'S')
    scale = 512;
  else if (*end && *end != 'b' && *end != 'B')
    scale = binary_scale (*end, 6);
  if (scale == 0 || (*end && end[1]))
    return -EINVAL;
  if ((uint64_t) n > (uint64_t) INT64_MAX / scale)
    return -EINVAL;
  *out = (uint64_t) n * scale;
  return 0;
}

/* DIGITS "%", 1 to SC_SIZE_PERCENT_MAX. */
static int
parse_percent (const char *s, uint64_t *out)
{
  uint64_t n = 0;
  const char *p;

  for (p = s; is_digit (*p); p++) {
    n = n * 10 + (uint64_t) (*p - '0');
    if (n > SC_SIZE_PERCENT_MAX)
      return -EINVAL;
  }
  if (p == s || strcmp (p, "%") != 0 || n < 1)
    return -EINVAL;
  *out = n;
  return 0;
}

int
sc_size_parse (const char *s, unsigned flags, struct sc_size *out)
{
  size_t len = strlen (s);
  uint64_t n;
  int r;

  if ((flags & SC_SIZE_UNBOUNDED) && strcmp (s, "unbounded") == 0) {
    *out = (struct sc_size) { SC_SIZE_NO_LIMIT, 0 };
    return 0;
  }
  if ((flags & SC_SIZE_PERCENT) && len > 0 && s[len - 1] == '%') {
    r = parse_percent (s, &n);
    if (r == 0)
      *out = (struct sc_size) { SC_SIZE_OF_VOLUME, n };
    return r;
  }
  r = flags & SC_SIZE_NBDKIT ? parse_nbdkit_bytes (s, &n)
                             : parse_cli_bytes (s, &n);
  if (r == 0)
    *out = (struct sc_size) { SC_SIZE_BYTES, n };
  return r;
}

uint64_t
sc_size_percent (uint64_t whole, uint64_t percent)
{
  return whole / 100 * percent + whole % 100 * percent / 100;
}

uint64_t
sc_size_bytes (const struct sc_size *size, uint64_t volume_size)
{
  switch (size->kind) {
  case SC_SIZE_OF_VOLUME:
    return sc_size_percent (volume_size, size->n);
  case SC_SIZE_NO_LIMIT:
    return 0;
  case SC_SIZE_BYTES:
  default:
    return size->n;
  }
}
