/* MNIST / Fashion-MNIST IDX image files, raw or gzip (gzread reads both), then the data set over
 * them as training and gan prepare use it: each image converted to 3 channels and resized. */
#include <stdint.h>
#include <stdlib.h>

#include "fuzz_util.h"
#include "gan/data.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_write_file("input-idx3-ubyte", data, size);
    gan_image_set set;
    if (gan_idx_read_images(path, &set) != GAN_OK)
        return 0;
    gan_dataset *ds = NULL;
    gan_dataset_worker *worker = NULL;
    int out_size = 5 + (int)(set.count % 7);
    uint8_t out[11 * 11 * 3];
    if (gan_dataset_open_images(&set, out_size, 3, path, &ds) == GAN_OK &&
        gan_dataset_worker_create(ds, &worker) == GAN_OK) {
        int64_t n = gan_dataset_count(ds);
        for (int64_t i = 0; i < n && i < 4; i++)
            (void)gan_dataset_get(ds, worker, i, out);
    }
    gan_dataset_worker_destroy(worker);
    gan_dataset_close(ds);
    return 0;
}
