/* libFuzzer harness: a configuration file of key=value lines
 * (engine/config-file.c), as `shadowcopy serve` and the plugin's
 * config=FILE read a volume's VOLUME.conf.
 *
 * Input: the bytes of a file.  An accepted file must keep its promises:
 * keys valid and distinct, values without control characters or blanks
 * at either end, line numbers increasing, every key found by
 * sc_config_get.  A refusal must say "FILE:LINE:".  Nothing may crash,
 * leak or read past the input.
 */
#include <config.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <unistd.h>

#include "engine/config-file.h"

/* run.sh builds engine/control-protocol.c reading through the control
 * harness's fake read(2); here it is the real one. */
ssize_t fuzz_ctl_read (int fd, void *buf, size_t n);
ssize_t
fuzz_ctl_read (int fd, void *buf, size_t n)
{
  return read (fd, buf, n);
}

static void
check (int ok, const char *what)
{
  if (!ok) {
    fprintf (stderr, "fuzz-config: %s\n", what);
    abort ();
  }
}

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  struct sc_config_file cf;
  char err[512];

  if (sc_config_parse ("f.conf", (const char *) data, size, &cf, err,
                       sizeof err) < 0) {
    check (strncmp (err, "f.conf:", 7) == 0, "an error without FILE:");
    return 0;
  }
  for (size_t i = 0; i < cf.n; i++) {
    const struct sc_config_entry *e = &cf.entries[i];
    size_t kl = strlen (e->key), vl = strlen (e->value);

    check (kl >= 1 && kl <= SC_CONFIG_KEY_MAX, "key length");
    check (e->key[0] >= 'a' && e->key[0] <= 'z', "key start");
    check (strspn (e->key, "abcdefghijklmnopqrstuvwxyz0123456789-_") == kl,
           "key characters");
    check (vl <= SC_CONFIG_LINE_MAX, "value length");
    for (size_t j = 0; j < vl; j++)
      check ((unsigned char) e->value[j] >= 0x20 &&
             e->value[j] != 0x7f, "a control character in a value");
    check (vl == 0 || (e->value[0] != ' ' && e->value[vl - 1] != ' ' &&
                       e->value[0] != '\t' && e->value[vl - 1] != '\t'),
           "blanks around a value");
    check (i == 0 || e->line > cf.entries[i - 1].line, "line order");
    check (sc_config_get (&cf, e->key) == e, "a key given twice");
  }
  check (cf.n <= SC_CONFIG_ENTRIES_MAX, "too many entries");
  sc_config_free (&cf);
  return 0;
}
