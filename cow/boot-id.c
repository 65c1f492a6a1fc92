/* shadowcopy: which boot of the machine this is (see boot-id.h). */
#include <config.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cow/boot-id.h"
#include "cow/uuid.h"

int (*sc_boot_id_hook) (uint8_t id[16]);

int
sc_boot_id (uint8_t id[16])
{
  memset (id, 0, 16);
  if (sc_boot_id_hook)
    return sc_boot_id_hook (id);
  FILE *f = fopen ("/proc/sys/kernel/random/boot_id", "re");
  if (!f)
    return -errno;
  char line[64];
  bool ok = fgets (line, sizeof line, f) != NULL;
  fclose (f);
  if (!ok)
    return -EIO;
  /* 36 characters: 32 hex digits and four dashes. */
  line[strcspn (line, "\n")] = '\0';
  if (sc_uuid_parse (line, id) < 0) {
    memset (id, 0, 16);
    return -EINVAL;
  }
  return 0;
}

bool
sc_boot_id_is_now (const uint8_t id[16])
{
  static const uint8_t zero[16];
  uint8_t now[16];
  return memcmp (id, zero, 16) != 0 && sc_boot_id (now) == 0 &&
         memcmp (id, now, 16) == 0;
}
