/* CIFAR-10 binary batches: one file of records (label byte + 3 planes of 32x32). */
#include <stdint.h>
#include <stdlib.h>

#include "fuzz_util.h"
#include "gan/data.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_write_file("input_batch.bin", data, size);
    gan_image_set set;
    if (gan_cifar_read(path, "all", &set) != GAN_OK)
        return 0;
    volatile uint8_t sum = 0;
    size_t bytes = (size_t)set.count * set.height * set.width * set.channels;
    for (size_t i = 0; i < bytes; i++)
        sum += set.pixels[i];
    (void)sum;
    gan_image_set_free(&set);
    return 0;
}
