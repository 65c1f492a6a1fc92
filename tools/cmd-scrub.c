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

#include "engine/control-protocol.h"
#include "engine/size.h"
#include "tools/cli.h"
#include "tools/commands.h"
#include "tools/json.h"

struct scrub_ctx { bool json, seen; };

static void
print_json (const struct sc_ctl_line *line)
{
  struct sc_json j;

  sc_json_init (&j, stdout);
  sc_json_begin_object (&j);
  for (size_t i = 0; i < line->nfields; i++) {
    char key[64];
    const char *k = line->fields[i].key, *v = line->fields[i].value;

    snprintf (key, sizeof key, "%s", k);
    for (size_t c = 0; key[c]; c++)
      if (key[c] == '-')
        key[c] = '_';
    if (strcmp (k, "state") == 0 || strcmp (k, "started") == 0 ||
        strcmp (k, "finished") == 0 || strcmp (k, "error") == 0)
      sc_json_member_string (&j, key, v);
    else {
      sc_json_key (&j, key);
      sc_json_number_text (&j, v);
    }
  }
  sc_json_end_object (&j);
}

static int
on_scrub (const struct sc_ctl_line *line, void *opaque)
{
  struct scrub_ctx *x = opaque;

  if (strcmp (line->kind, "scrub") != 0)
    return 0;
  x->seen = true;
  if (x->json) {
    print_json (line);
    return 0;
  }
#define F(k) (sc_ctl_field (line, k) ? sc_ctl_field (line, k) : "-")
  const char *rate = F ("rate");
  printf ("scrub: %s\n", F ("state"));
  printf ("copies checked: %s of %s\n", F ("copies-checked"),
          F ("copies-total"));
  printf ("bytes checked: %s of %s\n", F ("bytes-checked"), F ("bytes-total"));
  printf ("damaged copies found: %s (freed: %s)\n", F ("damaged"),
          F ("freed"));
  printf ("copies that could not be read: %s\n", F ("read-errors"));
  if (strcmp (rate, "0") == 0)
    printf ("rate: unbounded\n");
  else
    printf ("rate: %s bytes/s at most\n", rate);
  printf ("started: %s\n", F ("started"));
  printf ("finished: %s\n", F ("finished"));
  if (sc_ctl_field (line, "error"))
    printf ("error: %s\n", F ("error"));
#undef F
  return 0;
}

int
sc_cmd_scrub (const struct sc_cli_target *t, int argc, char **argv)
{
  const char *rate = NULL;
  bool status = false, json = false;
  char arg[40], err[1024];
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
    snprintf (arg, sizeof arg, "rate=%" PRIu64, bytes);
  }

  struct sc_client *c;
  int st = sc_cli_open_target (t, SC_CLIENT_SERVER, &c);
  if (st != EXIT_SUCCESS)
    return st;
  struct scrub_ctx x = { .json = json };
  const char *args[1] = { arg };
  int r = sc_client_request (c, status ? "SCRUB-STATUS" : "SCRUB", args,
                             rate ? 1 : 0, on_scrub, &x, err, sizeof err);
  if (r == -ENOTCONN)
    snprintf (err, sizeof err, "scrub needs a running server (offline, "
              "`shadowcopy check --data DIFFAREA` verifies every copy)");
  if (r == 0 && !x.seen) {
    snprintf (err, sizeof err, "bad reply from the server: no scrub line");
    r = -EPROTO;
  }
  if (r < 0) {
    sc_cli_error ("%s", err);
    st = EXIT_FAILURE;
  }
  return sc_cli_close_target (c, st);
}
