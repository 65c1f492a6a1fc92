/* shadowcopy: a configuration file of key=value lines (a volume's
 * /etc/shadowcopy/VOLUME.conf, the plugin's config=FILE).
 *
 * The syntax, one entry per line:
 *
 *   # a comment (a line whose first non-blank character is '#')
 *   key = value
 *
 * Blank lines are skipped; blanks (space, tab) around the key and the
 * value are dropped; the value is the rest of the line, as is ('#' in it
 * is no comment, there is no quoting: a value cannot start or end with a
 * blank).  A key is 1 to 63 of [a-z0-9_-], starting with a letter.  A
 * line holds at most SC_CONFIG_LINE_MAX bytes, a file at most
 * SC_CONFIG_ENTRIES_MAX entries.  Refused, with "FILE:LINE: why": a line
 * without '=', a bad key, a key given twice (naming the first line), a
 * control character or a NUL byte, a tab inside a value, a line too
 * long.
 *
 * The parser knows no keys: its callers check them.
 */
#ifndef SHADOWCOPY_ENGINE_CONFIG_FILE_H
#define SHADOWCOPY_ENGINE_CONFIG_FILE_H

#include <stddef.h>

#define SC_CONFIG_LINE_MAX 4096
#define SC_CONFIG_KEY_MAX 63
#define SC_CONFIG_ENTRIES_MAX 256

struct sc_config_entry {
  char *key;
  char *value;
  unsigned line;                /* 1-based */
};

struct sc_config_file {
  char *path;                   /* as given, for messages */
  struct sc_config_entry *entries;
  size_t n;
};

/* Parse `len` bytes of `text`, read from `path` (only named in errors).
 * 0 and *out (sc_config_free it), or a negative errno with "PATH:LINE:
 * why" in err: -EINVAL for a syntax error, -ENOMEM. */
int sc_config_parse (const char *path, const char *text, size_t len,
                     struct sc_config_file *out, char *err, size_t errlen);

/* Read and parse the file at `path`: as sc_config_parse, and a negative
 * errno with "PATH: strerror" when it cannot be read (-EFBIG past
 * 1 MiB). */
int sc_config_read (const char *path, struct sc_config_file *out,
                    char *err, size_t errlen);

/* The entry of `key`, or NULL. */
const struct sc_config_entry *sc_config_get (const struct sc_config_file *cf,
                                             const char *key);

void sc_config_free (struct sc_config_file *cf);

#endif
