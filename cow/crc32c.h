/* shadowcopy: CRC32C (Castagnoli), the checksum of every metadata block
 * and record.  Uses the SSE4.2 instruction when the CPU has it. */
#ifndef SHADOWCOPY_COW_CRC32C_H
#define SHADOWCOPY_COW_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* Continue a CRC32C: crc32c(0, "123456789", 9) == 0xe3069283.  Chaining
 * crc32c(crc32c(0, a, n), b, m) gives the CRC of a followed by b. */
uint32_t crc32c (uint32_t crc, const void *buf, size_t len);

/* Continue crc over n zero bytes (a hole, a zero block). */
uint32_t crc32c_zeros (uint32_t crc, uint64_t n);

#endif
