/* .npy: the header parser on the raw bytes, then the file readers (read into memory, memory map,
 * the float32 and uint8 readers) on the same bytes as a file. */
#include <stdint.h>
#include <stdlib.h>

#include "fuzz_util.h"
#include "gan/npy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    gan_npy_header header;
    (void)gan_npy_parse_header(data, size, "fuzz.npy", &header);
    const char *path = fuzz_write_file("input.npy", data, size);
    gan_npy_array array;
    if (gan_npy_read(path, &array) == GAN_OK) {
        /* touch every byte the header promises */
        volatile uint8_t sum = 0;
        for (size_t i = 0; i < array.header.data_bytes; i++)
            sum += ((const uint8_t *)array.data)[i];
        (void)sum;
        gan_npy_release(&array);
    }
    if (gan_npy_map(path, &array) == GAN_OK)
        gan_npy_release(&array);
    float *f32 = NULL;
    uint8_t *u8 = NULL;
    int ndim;
    int64_t shape[GAN_NPY_MAX_DIMS];
    if (gan_npy_read_f32(path, &f32, &ndim, shape) == GAN_OK)
        free(f32);
    if (gan_npy_read_u8(path, &u8, &ndim, shape) == GAN_OK)
        free(u8);
    return 0;
}
