/* CRC-32C (Castagnoli, polynomial 0x1EDC6F41 reflected): the check value of "123456789" is
 * 0xE3069283. Used by TensorBoard's record framing (gan/tb_events.h) and as the checksum of the
 * tensor data of checkpoints and exports (gan/checkpoint.h). */
#ifndef GAN_CRC32C_H
#define GAN_CRC32C_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* CRC-32C of `size` bytes; gan_crc32c_extend continues a CRC over more bytes. */
uint32_t gan_crc32c(const void *data, size_t size);
uint32_t gan_crc32c_extend(uint32_t crc, const void *data, size_t size);

#ifdef __cplusplus
}
#endif
#endif
