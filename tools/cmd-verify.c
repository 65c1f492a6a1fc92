/* shadowcopy verify: a backup image checked against its manifest.
 *
 *   shadowcopy verify TARGET
 *
 * Offline, with no server: TARGET.manifest.json is read (strictly), the
 * image must be the volume's size, and every block's CRC32C is compared;
 * the first block that differs is named by its byte range.  Exit 0 when
 * clean, 1 when damaged (or the manifest is), 2 on a usage error.
 *
 * Not yet: --against SNAPSHOT (byte for byte against a snapshot export)
 * and the chain of an incremental (each link's manifest and image).
 */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tools/cli.h"
#include "tools/commands.h"
#include "tools/image-sums.h"
#include "tools/manifest.h"

int
sc_cmd_verify (const struct sc_cli_target *t, int argc, char **argv)
{
  const char *target = NULL;
  char manifest[PATH_MAX + 32], err[2048];
  struct sc_manifest m;
  struct stat st;
  uint64_t bad;
  uint32_t found;
  int fd, i;

  for (i = 0; i < argc && !sc_cli_options_end (argv, &i); i++)
    return sc_cli_usage_error ("verify: unexpected option '%s'", argv[i]);
  if (i >= argc)
    return sc_cli_usage_error ("verify needs TARGET (a backup image)");
  if (i + 1 < argc)
    return sc_cli_usage_error ("verify: unexpected argument '%s'",
                               argv[i + 1]);
  target = argv[i];
  if ((size_t) snprintf (manifest, sizeof manifest, "%s%s", target,
                         SC_MANIFEST_SUFFIX) >= sizeof manifest)
    return sc_cli_usage_error ("verify: %s: path too long", target);

  if (sc_manifest_read (manifest, &m, err, sizeof err) < 0) {
    sc_cli_error ("verify %s: %s", target, err);
    return EXIT_FAILURE;
  }
  fd = open (target, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    sc_cli_error ("verify %s: cannot open it: %s", target, strerror (errno));
    sc_manifest_free (&m);
    return EXIT_FAILURE;
  }
  if (fstat (fd, &st) < 0 || (uint64_t) st.st_size != m.volume_size) {
    sc_cli_error ("verify %s: damaged: it is %" PRIu64 " bytes; its manifest "
                  "says %" PRIu64, target, (uint64_t) st.st_size,
                  m.volume_size);
    goto damaged;
  }
  if (sc_image_first_bad_block (fd, target, m.volume_size, m.block_size,
                                m.crc, m.nblocks, &bad, &found, err,
                                sizeof err) < 0) {
    sc_cli_error ("verify %s: %s", target, err);
    goto damaged;
  }
  if (bad < m.nblocks) {
    uint64_t start = bad * m.block_size;
    uint64_t end = m.volume_size - start < m.block_size ? m.volume_size
      : start + m.block_size;
    sc_cli_error ("verify %s: damaged: bytes %" PRIu64 "-%" PRIu64
                  " (block %" PRIu64 " of %" PRIu64 " bytes): CRC32C %08x, "
                  "the manifest says %08x", target, start, end - 1, bad,
                  m.block_size, found, m.crc[bad]);
    goto damaged;
  }
  close (fd);
  printf ("%s: clean: %" PRIu64 " blocks of %" PRIu64 " bytes match its "
          "manifest\n", target, m.nblocks, m.block_size);
  sc_manifest_free (&m);
  return EXIT_SUCCESS;

damaged:
  close (fd);
  sc_manifest_free (&m);
  return EXIT_FAILURE;
}
