/* shadowcopy writers: the writers a create would run, and the last
 * result each one recorded.
 *
 *   shadowcopy writers [--json] [--writer CMD]... [--writers-dir DIR]
 */
#include <config.h>

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "lib/shadowcopy.h"
#include "tools/cli.h"
#include "tools/commands.h"
#include "tools/writers-state.h"

static void
notice (const char *message, void *opaque)
{
  (void) opaque;
  sc_cli_error ("%s", message);
}

int
sc_cmd_writers (const struct sc_cli_target *t, int argc, char **argv)
{
  struct shadowcopy_set *s;
  const char *dir = NULL;
  bool json = false;
  int i, r = 0;

  (void) t;
  for (i = 0; i < argc; i++)
    if (strcmp (argv[i], "--json") == 0)
      json = true;
    else if ((strcmp (argv[i], "--writer") == 0 ||
              strcmp (argv[i], "--writers-dir") == 0) && i + 1 < argc)
      i++;
    else
      return sc_cli_usage_error ("writers: unexpected argument '%s'", argv[i]);
  if (shadowcopy_set_new (&s) < 0) {
    sc_cli_error ("%s", shadowcopy_get_error ());
    return EXIT_FAILURE;
  }
  shadowcopy_set_notify (s, notice, NULL);
  /* Each --writer in order, then the directory: as create runs them. */
  for (i = 0; i < argc && r == 0; i++)
    if (strcmp (argv[i], "--writer") == 0)
      r = shadowcopy_set_add_writer (s, argv[++i]);
    else if (strcmp (argv[i], "--writers-dir") == 0)
      dir = argv[++i];
  if (r == 0)
    r = shadowcopy_set_add_writers_dir (s, dir ? dir
                                        : SHADOWCOPY_WRITERS_DIR, !dir);
  if (r < 0) {
    sc_cli_error ("%s", shadowcopy_get_error ());
    shadowcopy_set_free (s);
    return EXIT_FAILURE;
  }
  sc_writers_print (s, json);
  shadowcopy_set_free (s);
  return EXIT_SUCCESS;
}
