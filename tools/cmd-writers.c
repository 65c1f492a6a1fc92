/* shadowcopy writers: the writers a create would run, and the last
 * result each one recorded.
 *
 *   shadowcopy writers [--json] [--writer CMD]... [--writers-dir DIR]
 */
#include <config.h>

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "tools/cli.h"
#include "tools/commands.h"
#include "lib/writers.h"

int
sc_cmd_writers (const struct sc_cli_target *t, int argc, char **argv)
{
  struct sc_writer *w;
  size_t n, nc = 0;
  const char *dir = NULL;
  bool json = false;
  char err[1024];
  char **cmds = calloc (argc + 1, sizeof *cmds);
  int i;

  if (!cmds)
    return EXIT_FAILURE;
  for (i = 0; i < argc; i++) {
    if (strcmp (argv[i], "--json") == 0)
      json = true;
    else if (strcmp (argv[i], "--writer") == 0 && i + 1 < argc)
      cmds[nc++] = argv[++i];
    else if (strcmp (argv[i], "--writers-dir") == 0 && i + 1 < argc)
      dir = argv[++i];
    else {
      free (cmds);
      return sc_cli_usage_error ("writers: unexpected argument '%s'", argv[i]);
    }
  }
  if (sc_writers_collect (cmds, nc, dir ? dir : SC_WRITERS_DIR_DEFAULT,
                          !dir, &w, &n, err, sizeof err) < 0) {
    free (cmds);
    sc_cli_error ("%s", err);
    return EXIT_FAILURE;
  }
  free (cmds);
  sc_writers_print (w, n, json);
  sc_writers_free (w, n);
  return EXIT_SUCCESS;
}
