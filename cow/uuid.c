/* shadowcopy: UUIDs (uuid.h). */
#include <config.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

#include "cow/uuid.h"

int
sc_uuid_random (uint8_t id[16])
{
  ssize_t n = getrandom (id, 16, 0);
  if (n != 16)
    return n < 0 ? -errno : -EIO;
  id[6] = (uint8_t) ((id[6] & 0x0f) | 0x40);
  id[8] = (uint8_t) ((id[8] & 0x3f) | 0x80);
  return 0;
}

void
sc_uuid_format (const uint8_t id[16], char *buf)
{
  char *p = buf;

  for (int i = 0; i < 16; i++) {
    if (i == 4 || i == 6 || i == 8 || i == 10)
      *p++ = '-';
    p += sprintf (p, "%02x", id[i]);
  }
}

static int
hexval (char c)
{
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

int
sc_uuid_parse (const char *s, uint8_t id[16])
{
  int i = 0;

  if (strlen (s) != SC_UUID_TEXT_LEN - 1)
    return -EINVAL;
  for (const char *p = s; *p; ) {
    if (p - s == 8 || p - s == 13 || p - s == 18 || p - s == 23) {
      if (*p++ != '-')
        return -EINVAL;
      continue;
    }
    int hi = hexval (p[0]), lo = hexval (p[1]);
    if (hi < 0 || lo < 0 || i == 16)
      return -EINVAL;
    id[i++] = (uint8_t) (hi << 4 | lo);
    p += 2;
  }
  return i == 16 ? 0 : -EINVAL;
}
