/* shadowcopy scrub: verify every copy of a running server's diff area in
 * the background.
 *
 *   shadowcopy scrub [--rate BYTES/S]    start it (default 64M; 0 or
 *                                        unbounded: no limit)
 *   shadowcopy scrub --status [--json]   its progress
 *
 * The server does the work (engine/scrub.c); with no server running,
 * `shadowcopy check --data DIFFAREA` verifies the same offline.
 */
#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/size.h"
#include "tools/cli.h"
#include "tools/commands.h"
#include "tools/json.h"

/* The status as one JSON object, in the order the server says it. */
static void
print_json (const struct shadowcopy_scrub *sc)
{
  struct sc_json j;

  sc_json_init (&j, stdout);
  sc_json_begin_object (&j);
  sc_json_member_string (&j, "state", sc->state);
  sc_json_member_uint (&j, "rate", sc->rate);
  sc_json_member_uint (&j, "copies_checked", sc->copies_checked);
  sc_json_member_uint (&j, "copies_total", sc->copies_total);
  sc_json_member_uint (&j, "bytes_checked", sc->bytes_checked);
  sc_json_member_uint (&j, "bytes_total", sc->bytes_total);
  sc_json_member_uint (&j, "damaged", sc->damaged);
  sc_json_member_uint (&j, "freed", sc->freed);
  sc_json_member_uint (&j, "read_errors", sc->read_errors);
  if (sc->started[0])
    sc_json_member_string (&j, "started", sc->started);
  if (sc->finished[0])
    sc_json_member_string (&j, "finished", sc->finished);
  if (sc->error[0])
    sc_json_member_string (&j, "error", sc->error);
  sc_json_end_object (&j);
}

static void
print_text (const struct shadowcopy_scrub *sc)
{
  printf ("scrub: %s\n", sc->state);
  printf ("copies checked: %" PRIu64 " of %" PRIu64 "\n", sc->copies_checked,
          sc->copies_total);
  printf ("bytes checked: %" PRIu64 " of %" PRIu64 "\n", sc->bytes_checked,
          sc->bytes_total);
  printf ("damaged copies found: %" PRIu64 " (freed: %" PRIu64 ")\n",
          sc->damaged, sc->freed);
  printf ("copies that could not be read: %" PRIu64 "\n", sc->read_errors);
  if (sc->rate == 0)
    printf ("rate: unbounded\n");
  else
    printf ("rate: %" PRIu64 " bytes/s at most\n", sc->rate);
  printf ("started: %s\n", sc->started[0] ? sc->started : "-");
  printf ("finished: %s\n", sc->finished[0] ? sc->finished : "-");
  if (sc->error[0])
    printf ("error: %s\n", sc->error);
}

int
sc_cmd_scrub (const struct sc_cli_target *t, int argc, char **argv)
{
  const char *rate = NULL;
  bool status = false, json = false;
  uint64_t bytes = 0;

  for (int i = 0; i < argc; i++) {
    if (strcmp (argv[i], "--status") == 0)
      status = true;
    else if (strcmp (argv[i], "--json") == 0)
      json = true;
    else if (strcmp (argv[i], "--rate") == 0 && i + 1 < argc)
      rate = argv[++i];
    else if (strncmp (argv[i], "--rate=", 7) == 0)
      rate = argv[i] + 7;
    else
      return sc_cli_usage_error ("scrub: unexpected argument '%s'", argv[i]);
  }
  if (status && rate)
    return sc_cli_usage_error ("scrub: --status takes no --rate");
  if (json && !status)
    return sc_cli_usage_error ("scrub: --json goes with --status");
  if (rate) {
    struct sc_size size;

    if (sc_size_parse (rate, SC_SIZE_UNBOUNDED, &size) < 0)
      return sc_cli_usage_error ("scrub: --rate %s: not a number of bytes "
                                 "per second (e.g. 64M; 0 or unbounded: "
                                 "no limit)", rate);
    bytes = sc_size_bytes (&size, 0);
  }

  struct shadowcopy *c;
  int st = sc_cli_open_target (t, SHADOWCOPY_OPEN_SERVER, &c);
  if (st != EXIT_SUCCESS)
    return st;
  struct shadowcopy_scrub sc;
  int r = status ? shadowcopy_scrub_status (c, &sc)
                 : shadowcopy_scrub (c, rate ? (bytes ? bytes
                                                : SHADOWCOPY_RATE_UNBOUNDED)
                                             : 0, &sc);
  if (r < 0) {
    sc_cli_lib_error ();
    st = EXIT_FAILURE;
  }
  else if (json)
    print_json (&sc);
  else
    print_text (&sc);
  return sc_cli_close_target (c, st);
}
