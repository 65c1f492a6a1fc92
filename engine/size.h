/* shadowcopy: sizes given by the user, such as diff-max=10G or
 * resize --max 20%.
 *
 * One parser for the plugin's keys and the CLI's options.  The number
 * comes in one of two spellings, chosen by the caller so that each keeps
 * the syntax its users already know:
 *
 *   default          DIGITS [K|M|G|T [B|iB]]   (case-insensitive suffix,
 *                    powers of 1024; "10G", "10GiB" and "10gb" are equal)
 *   SC_SIZE_NBDKIT   the syntax of nbdkit_parse_size(3), so a plugin key
 *                    reads like every other nbdkit plugin's: optional
 *                    blanks and sign, DIGITS, then one of b k m g t p e
 *                    (powers of 1024, any case) or s (512-byte sectors);
 *                    at most INT64_MAX bytes, never negative
 *
 * and, where the caller allows them:
 *
 *   SC_SIZE_PERCENT    DIGITS "%", 1% to 1000% (of the volume size)
 *   SC_SIZE_UNBOUNDED  the word "unbounded"
 *
 * Zero bytes is a valid parse: callers that need more say so in their own
 * words.  Pure functions, safe from any thread.
 */
#ifndef SHADOWCOPY_ENGINE_SIZE_H
#define SHADOWCOPY_ENGINE_SIZE_H

#include <stdint.h>

#define SC_SIZE_NBDKIT    0x1
#define SC_SIZE_PERCENT   0x2
#define SC_SIZE_UNBOUNDED 0x4

#define SC_SIZE_PERCENT_MAX 1000

enum sc_size_kind { SC_SIZE_BYTES, SC_SIZE_OF_VOLUME, SC_SIZE_NO_LIMIT };

struct sc_size {
  enum sc_size_kind kind;
  uint64_t n;                   /* bytes, or the percentage of the volume */
};

/* Parse `s` as `flags` allow.  Returns 0, or -EINVAL (and *out is
 * untouched) if it is not one of the allowed forms. */
int sc_size_parse (const char *s, unsigned flags, struct sc_size *out);

/* `percent` % of `whole` bytes, rounded down; exact whenever the result
 * fits in 64 bits (whole * percent itself may not). */
uint64_t sc_size_percent (uint64_t whole, uint64_t percent);

/* What a parsed size means on a volume of `volume_size` bytes: bytes, 0
 * for SC_SIZE_NO_LIMIT. */
uint64_t sc_size_bytes (const struct sc_size *size, uint64_t volume_size);

#endif
