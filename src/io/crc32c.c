/* CRC-32C (Castagnoli), reflected, one table lookup per byte: TensorBoard's record framing and the
 * checksum of checkpoint data (see gan/crc32c.h). */
#include "gan/crc32c.h"

#include <pthread.h>

static uint32_t crc32c_table[256];
static pthread_once_t crc32c_table_once = PTHREAD_ONCE_INIT;

static void crc32c_make_table(void)
{
    for (uint32_t n = 0; n < 256; n++) {
        uint32_t c = n;
        for (int k = 0; k < 8; k++)
            c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
        crc32c_table[n] = c;
    }
}

uint32_t gan_crc32c_extend(uint32_t crc, const void *data, size_t size)
{
    pthread_once(&crc32c_table_once, crc32c_make_table);
    const uint8_t *p = data;
    uint32_t c = ~crc;
    for (size_t i = 0; i < size; i++)
        c = crc32c_table[(c ^ p[i]) & 0xFF] ^ (c >> 8);
    return ~c;
}

uint32_t gan_crc32c(const void *data, size_t size) { return gan_crc32c_extend(0, data, size); }
