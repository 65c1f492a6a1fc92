/* shadowcopy: UUIDs: the volume's, each snapshot's, a snapshot set's.
 *
 * 16 bytes; as text, 8-4-4-4-12 lower-case hex digits (RFC 4122's form).
 * New ones are random, with RFC 4122's version 4 and variant bits.
 */
#ifndef SHADOWCOPY_COW_UUID_H
#define SHADOWCOPY_COW_UUID_H

#include <stdint.h>

#define SC_UUID_TEXT_LEN 37     /* 36 characters and the NUL */

/* A new random (version 4) UUID.  0, or a negative errno when the
 * kernel's random source failed. */
int sc_uuid_random (uint8_t id[16]);

/* id as text into buf (SC_UUID_TEXT_LEN bytes). */
void sc_uuid_format (const uint8_t id[16], char *buf);

/* Exactly 36 characters of text, either case, into id.  0 or -EINVAL. */
int sc_uuid_parse (const char *s, uint8_t id[16]);

#endif
