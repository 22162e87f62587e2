/* The real Fashion-MNIST (Debian's dataset-fashion-mnist; skipped where it is not installed): read
 * through the configs that use it (dcgan_fmnist32: Resize(32) of 28x28; mlp_mnist: 28x28 as is),
 * batches checked against the permutation and the transform, and a sample of images against PIL
 * (when /usr/bin/python3 has PIL and numpy). */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gan/data.h"
#include "test_util.h"

static const char *FMNIST = "/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz";

static void check_config(const char *name, int size, const gan_image_set *raw, const char *dir)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/configs/%s.ini", test_source_dir(), name);
    gan_config cfg;
    gan_config_defaults(&cfg);
    CHECK_OK(gan_config_load(&cfg, path));
    CHECK(!strcmp(cfg.data_path, FMNIST) && cfg.image_size == size && cfg.channels == 1);
    gan_data_source *src = NULL;
    CHECK_OK(gan_data_source_open_for_config(&cfg, &src));
    if (!src)
        return;
    int B = cfg.batch_size;
    CHECK(src->samples == 60000 && src->batches_per_epoch == 60000 / B && src->height == size &&
          src->width == size && src->channels == 1);
    uint8_t *batch = malloc((size_t)B * size * size);
    int64_t *order = malloc(60000 * sizeof *order);
    uint8_t *want = malloc((size_t)size * size);
    gan_data_permutation(cfg.seed, 0, 60000, order);
    bool same = true;
    for (int k = 0; k < 3; k++) {
        CHECK_OK(src->next_batch(src, batch));
        for (int j = 0; j < B; j++) {
            CHECK_OK(gan_resize_center_crop(raw->pixels + order[k * B + j] * 784, 28, 28, 1, size, want));
            same &= !memcmp(batch + (size_t)j * size * size, want, (size_t)size * size);
        }
    }
    CHECK_MSG(same, "%s: batches are not the transformed images of the permutation", name);
    if (size == 28) /* no resize: the pixels themselves */
        CHECK(!memcmp(batch, raw->pixels + order[2 * B] * 784, 784));
    src->close(src);

    /* images 0, 1, 777 and 59999 against PIL's resize */
    if (size != 28 && system("/usr/bin/python3 -c 'import numpy, PIL' 2>/dev/null") == 0) {
        const int64_t picks[4] = {0, 1, 777, 59999};
        uint8_t *ours = malloc(4 * (size_t)size * size);
        for (int i = 0; i < 4; i++)
            CHECK_OK(gan_resize_center_crop(raw->pixels + picks[i] * 784, 28, 28, 1, size, ours + i * size * size));
        char npy[4300], cmd[9000];
        snprintf(npy, sizeof npy, "%s/ours_%s.npy", dir, name);
        int64_t shape[3] = {4, size, size};
        CHECK_OK(gan_npy_write_u8(npy, ours, 3, shape));
        snprintf(cmd, sizeof cmd,
                 "/usr/bin/python3 -c \"import gzip, numpy as np; from PIL import Image\n"
                 "raw = np.frombuffer(gzip.open('%s').read()[16:], np.uint8).reshape(-1, 28, 28)\n"
                 "ours = np.load('%s')\n"
                 "for k, i in enumerate([0, 1, 777, 59999]):\n"
                 "    ref = np.asarray(Image.fromarray(raw[i]).resize((%d, %d), Image.BILINEAR))\n"
                 "    d = np.abs(ref.astype(int) - ours[k]).max()\n"
                 "    assert d <= 1, (i, d)\n\"",
                 FMNIST, npy, size, size);
        CHECK_MSG(system(cmd) == 0, "%s: our Resize(%d) differs from PIL's by more than 1", name, size);
        free(ours);
    }
    free(batch);
    free(order);
    free(want);
}

int main(void)
{
    if (access(FMNIST, R_OK) != 0) {
        printf("%s not installed (apt-get install dataset-fashion-mnist): skipped\n", FMNIST);
        return TEST_SKIP_EXIT_CODE;
    }
    const char *dir = test_temp_dir("test_data_fmnist");
    gan_image_set raw;
    CHECK_OK(gan_idx_read_images(FMNIST, &raw));
    CHECK(raw.count == 60000 && raw.height == 28 && raw.width == 28 && raw.channels == 1);
    if (raw.pixels) {
        check_config("dcgan_fmnist32", 32, &raw, dir);
        check_config("mlp_mnist", 28, &raw, dir);
    }
    gan_image_set_free(&raw);
    return test_finish();
}
