/* The transform against PIL: every case of tests/data/transform/manifest.txt (made by
 * tools/make_transform_refs.py with Pillow) is decoded by our decoder, resized and cropped by our
 * transform, and compared with Pillow's output: max |difference| <= 1 in uint8. Then the crop-only
 * computation against a full resize followed by a crop, and torchvision's size arithmetic. */
#include <stdlib.h>
#include <string.h>

#include "gan/data.h"
#include "gan/image.h"
#include "gan/npy.h"
#include "test_util.h"

static void check_reference_cases(void)
{
    char dir[4200], manifest[4300];
    snprintf(dir, sizeof dir, "%s/tests/data/transform", test_source_dir());
    snprintf(manifest, sizeof manifest, "%s/manifest.txt", dir);
    FILE *f = fopen(manifest, "r");
    CHECK_MSG(f != NULL, "cannot open %s", manifest);
    if (!f)
        return;
    char line[1024];
    int cases = 0, exact = 0;
    gan_transform *t = NULL;
    while (fgets(line, sizeof line, f)) {
        if (line[0] == '#' || line[0] == '\n')
            continue;
        char input[256], expected[256];
        int size, channels;
        if (sscanf(line, "%255s %d %d %255s", input, &size, &channels, expected) != 4) {
            CHECK_MSG(false, "bad manifest line: %s", line);
            continue;
        }
        char path[4600], want_path[4600];
        snprintf(path, sizeof path, "%s/%s", dir, input);
        snprintf(want_path, sizeof want_path, "%s/%s", dir, expected);
        uint8_t *pixels = NULL, *want = NULL;
        int w = 0, h = 0, ndim = 0;
        int64_t shape[GAN_NPY_MAX_DIMS];
        CHECK_OK(gan_image_load(path, channels, &pixels, &w, &h));
        CHECK_OK(gan_npy_read_u8(want_path, &want, &ndim, shape));
        CHECK_OK(gan_transform_create(size, &t));
        uint8_t *got = malloc((size_t)size * size * channels);
        if (pixels && want && t && got) {
            CHECK(ndim == (channels == 3 ? 3 : 2) && shape[0] == size && shape[1] == size);
            CHECK_OK(gan_transform_apply(t, pixels, w, h, channels, got));
            int worst = 0;
            size_t differing = 0, n = (size_t)size * size * channels;
            for (size_t i = 0; i < n; i++) {
                int d = abs((int)got[i] - (int)want[i]);
                worst = d > worst ? d : worst;
                differing += d != 0;
            }
            printf("%-28s S=%-3d C=%d  max |diff| %d, %zu of %zu values differ\n", input, size, channels, worst,
                   differing, n);
            CHECK_MSG(worst <= 1, "%s at S=%d C=%d: max |diff| %d vs PIL", input, size, channels, worst);
            exact += worst == 0;
            /* the one-shot function gives the same */
            uint8_t *again = malloc(n);
            CHECK_OK(gan_resize_center_crop(pixels, w, h, channels, size, again));
            CHECK(memcmp(again, got, n) == 0);
            free(again);
        }
        cases++;
        gan_transform_destroy(t);
        t = NULL;
        free(got);
        free(pixels);
        free(want);
    }
    fclose(f);
    printf("%d reference cases, %d bit-exact\n", cases, exact);
    CHECK(cases >= 20);
}

/* Only the kept pixels are computed: compare with a full resize followed by a crop. */
static void check_crop_only_matches_full_resize(void)
{
    const int sizes[][3] = {{178, 218, 64}, {218, 178, 64}, {97, 151, 37}, {28, 28, 32}, {23, 41, 64},
                            {300, 299, 17}, {64, 65, 64}, {1, 50, 8}, {50, 1, 8}, {640, 480, 64}};
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++)
        for (int channels = 1; channels <= 3; channels += 2) {
            int in_w = sizes[k][0], in_h = sizes[k][1], size = sizes[k][2];
            size_t in_bytes = (size_t)in_w * in_h * channels;
            uint8_t *in = malloc(in_bytes);
            for (size_t i = 0; i < in_bytes; i++)
                in[i] = (uint8_t)((i * 2654435761u) >> 13);
            int new_w, new_h;
            gan_resize_output_size(in_w, in_h, size, &new_w, &new_h);
            uint8_t *full = malloc((size_t)new_w * new_h * channels), *got = malloc((size_t)size * size * channels);
            CHECK_OK(gan_resize_bilinear(in, in_w, in_h, channels, full, new_w, new_h));
            CHECK_OK(gan_resize_center_crop(in, in_w, in_h, channels, size, got));
            /* the crop torchvision takes: offsets int(round((new - S) / 2.0)), half to even */
            int top = (new_h - size) / 2, left = (new_w - size) / 2;
            if ((new_h - size) % 2 && top % 2)
                top++;
            if ((new_w - size) % 2 && left % 2)
                left++;
            bool same = true;
            for (int y = 0; y < size; y++)
                same &= !memcmp(got + (size_t)y * size * channels,
                                full + ((size_t)(y + top) * new_w + left) * channels, (size_t)size * channels);
            CHECK_MSG(same, "%dx%d -> S=%d C=%d: crop-only differs from resize + crop", in_w, in_h, size, channels);
            free(in);
            free(full);
            free(got);
        }
}

static void check_output_sizes(void)
{
    int w, h;
    gan_resize_output_size(178, 218, 64, &w, &h); /* CelebA: int(64 * 218 / 178) = int(78.38) */
    CHECK(w == 64 && h == 78);
    gan_resize_output_size(218, 178, 64, &w, &h);
    CHECK(w == 78 && h == 64);
    gan_resize_output_size(28, 28, 32, &w, &h);
    CHECK(w == 32 && h == 32);
    gan_resize_output_size(151, 97, 64, &w, &h); /* int(99.63) */
    CHECK(w == 99 && h == 64);
    gan_resize_output_size(3, 10, 9, &w, &h); /* exactly 30 */
    CHECK(w == 9 && h == 30);
    /* a 1-pixel-wide strip still gives S x something */
    gan_resize_output_size(1, 1000, 4, &w, &h);
    CHECK(w == 4 && h == 4000);
}

static void check_bad_arguments(void)
{
    uint8_t px[4] = {0};
    CHECK_FAILS_WITH(gan_resize_bilinear(px, 0, 2, 1, px, 2, 2), GAN_ERR_ARG, "resize");
    gan_transform *t;
    CHECK_FAILS_WITH(gan_transform_create(0, &t), GAN_ERR_ARG, "size");
    CHECK_OK(gan_transform_create(2, &t));
    CHECK_FAILS_WITH(gan_transform_apply(t, px, 2, -1, 1, px), GAN_ERR_ARG, "cannot resize");
    gan_transform_destroy(t);
}

int main(void)
{
    check_reference_cases();
    check_crop_only_matches_full_resize();
    check_output_sizes();
    check_bad_arguments();
    return test_finish();
}
