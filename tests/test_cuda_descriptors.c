/* The cuDNN descriptors of every convolution of every model in configs/, at batch 64 and 128, in
 * each precision, built exactly as the CUDA backend builds them (gan_cuda_conv_descriptors_create),
 * must give the shapes the model planned, according to cuDNN
 * itself (batch norm runs on kernels of ours, without cuDNN descriptors):
 *   - cudnnGetConvolution2dForwardOutputDim(conv, x, w) is the planned y. For a Conv2d layer, y
 *     is its output; for a ConvTranspose2d, y is its input and x its output (the layer is the
 *     backward-data of that convolution), so the check covers both directions;
 *   - cudnnGetTensor4dDescriptor / cudnnGetFilter4dDescriptor read back the planned dims;
 *   - where the sub-pixel backward-data applies (gan/cuda_args.h), its inner convolution too;
 *   - in each layout its precision may run (fp32: NCHW; tf32: NCHW and NHWC; bf16: NHWC), and in
 *     NHWC with the input channels padded to 16 bytes (the image layers: to 4 FP32 or 8 BF16);
 *   - the element type is FP32, or BF16 in bf16, the layout packed NCHW or NHWC (filter KRSC), with
 *     FP32 sums (the convolution descriptors' compute type) in every precision, and each
 *     precision's GEMM compute type is the one it promises.
 * The geometries are the ones the layers hand the backend: the models are planned with a backend
 * that records every conv_workspace_bytes call. Descriptor calls need no device (nor a cuDNN
 * handle), so this runs in CI; a build without CUDA reports it skipped. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_util.h"

#ifndef GAN_HAVE_CUDA
int main(void)
{
    printf("skipped: this build has no CUDA backend (cuDNN descriptors cannot be built)\n");
    return TEST_SKIP_EXIT_CODE;
}
#else

#include <dirent.h>

#include "backend/cuda_internal.h"
#include "gan/config.h"
#include "gan/nn.h"
#include "nn/layer.h"

/* ---- a backend that records the geometries the layers plan ---------------------------------- */

enum { MAX_GEOMS = 64 };
static gan_conv_geom recorded[MAX_GEOMS];
static unsigned recorded_passes[MAX_GEOMS];
static int recorded_count;

static size_t record_conv_workspace_bytes(gan_backend *be, const gan_conv_geom *g, unsigned passes)
{
    if (recorded_count < MAX_GEOMS) {
        recorded[recorded_count] = *g;
        recorded_passes[recorded_count] = passes;
    }
    recorded_count++;
    return 0;
}

static int configs_checked, convs_checked, subpixel_checked, padded_checked[3], inference_checked, nhwc_checked[3];

/* fp32, tf32, bf16 */
enum { PRECISIONS = GAN_PRECISION_BF16 + 1 };

static void check_tensor(const char *what, cudnnTensorDescriptor_t desc, gan_precision precision, bool nhwc,
                         int n, int c, int h, int w)
{
    cudnnDataType_t want_type = precision == GAN_PRECISION_BF16 ? CUDNN_DATA_BFLOAT16 : CUDNN_DATA_FLOAT;
    cudnnDataType_t type;
    int dn, dc, dh, dw, sn, sc, sh, sw;
    CHECK(cudnnGetTensor4dDescriptor(desc, &type, &dn, &dc, &dh, &dw, &sn, &sc, &sh, &sw) ==
          CUDNN_STATUS_SUCCESS);
    CHECK_MSG(type == want_type && dn == n && dc == c && dh == h && dw == w,
              "%s: descriptor type %d [%d, %d, %d, %d], planned type %d [%d, %d, %d, %d]", what,
              (int)type, dn, dc, dh, dw, (int)want_type, n, c, h, w);
    if (nhwc)
        CHECK_MSG(sc == 1 && sw == c && sh == w * c && sn == c * h * w,
                  "%s: strides [%d, %d, %d, %d] are not packed NHWC", what, sn, sc, sh, sw);
    else
        CHECK_MSG(sw == 1 && sh == w && sc == h * w && sn == c * h * w,
                  "%s: strides [%d, %d, %d, %d] are not packed NCHW", what, sn, sc, sh, sw);
}

/* One convolution geometry in one layout, as the layer planned it and as cuDNN sees it. */
static void check_conv_layout(const char *where, const gan_conv_geom *g, gan_precision precision,
                              gan_conv_layout layout)
{
    gan_cuda_conv_descriptors d;
    gan_status status = gan_cuda_conv_descriptors_create(g, precision, layout, &d);
    CHECK_MSG(status == GAN_OK, "%s: %s", where, gan_error_message());
    if (status != GAN_OK)
        return;
    bool nhwc = layout == GAN_CONV_LAYOUT_NHWC;
    /* NHWC pads the input channels to 16 bytes: 4 FP32 (tf32) or 8 BF16 (the image layers' 1 and 3) */
    int group = precision == GAN_PRECISION_BF16 ? 8 : precision == GAN_PRECISION_TF32 ? 4 : 1;
    int c_in = nhwc ? (g->c_in + group - 1) / group * group : g->c_in;
    if (c_in != g->c_in)
        padded_checked[precision]++;
    if (nhwc)
        nhwc_checked[precision]++;
    check_tensor(where, d.x, precision, nhwc, g->n, c_in, g->h_in, g->w_in);
    check_tensor(where, d.y, precision, nhwc, g->n, g->c_out, g->h_out, g->w_out);
    cudnnDataType_t want_type = precision == GAN_PRECISION_BF16 ? CUDNN_DATA_BFLOAT16 : CUDNN_DATA_FLOAT;
    cudnnTensorFormat_t want_format = nhwc ? CUDNN_TENSOR_NHWC : CUDNN_TENSOR_NCHW;

    cudnnDataType_t type;
    cudnnTensorFormat_t format;
    int k, c, r, s;
    CHECK(cudnnGetFilter4dDescriptor(d.w, &type, &format, &k, &c, &r, &s) == CUDNN_STATUS_SUCCESS);
    CHECK_MSG(type == want_type && format == want_format && k == g->c_out &&
                  c == c_in && r == g->k_h && s == g->k_w,
              "%s: filter [%d, %d, %d, %d], planned [%d, %d, %d, %d]", where, k, c, r, s, g->c_out,
              c_in, g->k_h, g->k_w);

    cudnnConvolutionDescriptor_t convs[3] = {d.forward, d.backward_data, d.backward_filter};
    for (int i = 0; i < 3; i++) {
        int pad_h, pad_w, u, v, dil_h, dil_w;
        cudnnConvolutionMode_t conv_mode;
        cudnnDataType_t compute;
        CHECK(cudnnGetConvolution2dDescriptor(convs[i], &pad_h, &pad_w, &u, &v, &dil_h, &dil_w,
                                              &conv_mode, &compute) == CUDNN_STATUS_SUCCESS);
        CHECK_MSG(pad_h == g->pad_h && pad_w == g->pad_w && u == g->stride_h && v == g->stride_w &&
                      dil_h == 1 && dil_w == 1 && conv_mode == CUDNN_CROSS_CORRELATION &&
                      compute == CUDNN_DATA_FLOAT,
                  "%s: convolution descriptor %d: pad %dx%d stride %dx%d dilation %dx%d mode %d",
                  where, i, pad_h, pad_w, u, v, dil_h, dil_w, (int)conv_mode);
        cudnnMathType_t math;
        CHECK(cudnnGetConvolutionMathType(convs[i], &math) == CUDNN_STATUS_SUCCESS);
        CHECK_MSG(math == (precision == GAN_PRECISION_FP32 ? CUDNN_FMA_MATH : CUDNN_DEFAULT_MATH),
                  "%s: math type %d in %s", where, (int)math, gan_precision_name(precision));

        int on, oc, oh, ow;
        CHECK(cudnnGetConvolution2dForwardOutputDim(convs[i], d.x, d.w, &on, &oc, &oh, &ow) ==
              CUDNN_STATUS_SUCCESS);
        CHECK_MSG(on == g->n && oc == g->c_out && oh == g->h_out && ow == g->w_out,
                  "%s: cuDNN computes y [%d, %d, %d, %d], the plan says [%d, %d, %d, %d]", where,
                  on, oc, oh, ow, g->n, g->c_out, g->h_out, g->w_out);
    }
    gan_cuda_conv_descriptors_destroy(&d);
}

/* ... in every layout its precision may run: fp32 NCHW, tf32 both, bf16 NHWC. */
static void check_conv(const char *where, const gan_conv_geom *g, gan_precision precision)
{
    static const unsigned want[PRECISIONS] = {1u << GAN_CONV_LAYOUT_NCHW,
                                              1u << GAN_CONV_LAYOUT_NCHW | 1u << GAN_CONV_LAYOUT_NHWC,
                                              1u << GAN_CONV_LAYOUT_NHWC};
    unsigned layouts = gan_cuda_conv_layouts(precision);
    CHECK_MSG(layouts == want[precision], "%s: layouts 0x%x", gan_precision_name(precision), layouts);
    for (int l = GAN_CONV_LAYOUT_NCHW; l <= GAN_CONV_LAYOUT_NHWC; l++)
        if (layouts & 1u << l)
            check_conv_layout(where, g, precision, (gan_conv_layout)l);
    convs_checked++;
}

/* Plans `model` with the recording backend, then checks each conv/convt layer. */
static void check_model(const char *config, gan_model *model, gan_backend *recorder)
{
    gan_pool pool;
    gan_pool_init(&pool, recorder);
    recorded_count = 0;
    CHECK_OK(gan_model_plan(model, &pool));
    gan_pool_release(&pool);
    CHECK(recorded_count <= MAX_GEOMS);

    int next_geom = 0;
    for (int i = 0; i < model->layer_count; i++) {
        gan_layer *layer = model->layers[i];
        char where[160];
        snprintf(where, sizeof where, "%s batch %d %s layer %d (%s)", config, model->batch,
                 model->name, layer->index, gan_layer_kind_name(layer->spec.kind));
        gan_layer_kind kind = layer->spec.kind;
        if (kind == GAN_LAYER_CONV || kind == GAN_LAYER_CONVT) {
            CHECK_MSG(next_geom < recorded_count && next_geom < MAX_GEOMS,
                      "%s: planned no convolution geometry", where);
            if (next_geom >= recorded_count || next_geom >= MAX_GEOMS)
                return;
            /* A trained model plans every pass; an inference-only one the pass its layer runs:
             * a Conv2d's forward, a ConvTranspose2d's backward-data. */
            unsigned want = !model->inference_only ? GAN_CONV_PASSES_ALL
                            : kind == GAN_LAYER_CONV ? GAN_CONV_PASS_BIT(GAN_CONV_FORWARD)
                                                     : GAN_CONV_PASS_BIT(GAN_CONV_BACKWARD_DATA);
            CHECK_MSG(recorded_passes[next_geom] == want, "%s: planned passes 0x%x, want 0x%x", where,
                      recorded_passes[next_geom], want);
            const gan_conv_geom *g = &recorded[next_geom++];
            /* Conv: x = input, y = output. ConvT: the convolution from its output to its input. */
            gan_shape x = kind == GAN_LAYER_CONV ? layer->in : layer->out;
            gan_shape y = kind == GAN_LAYER_CONV ? layer->out : layer->in;
            CHECK_MSG(g->n == model->batch && g->c_in == x.c && g->h_in == x.h && g->w_in == x.w &&
                          g->c_out == y.c && g->h_out == y.h && g->w_out == y.w &&
                          g->k_h == layer->spec.kernel && g->stride_h == layer->spec.stride &&
                          g->pad_h == layer->spec.pad,
                      "%s: geometry does not match the layer's shapes", where);
            for (int p = 0; p < PRECISIONS; p++)
                check_conv(where, g, (gan_precision)p);
            /* The inner convolution of the sub-pixel backward-data, where it applies. */
            if (gan_conv_subpixel_applies(g)) {
                gan_conv_geom inner;
                CHECK_OK(gan_conv_subpixel_inner(g, &inner));
                char inner_where[200];
                snprintf(inner_where, sizeof inner_where, "%s, sub-pixel inner", where);
                for (int p = 0; p < PRECISIONS; p++)
                    check_conv(inner_where, &inner, (gan_precision)p);
                subpixel_checked++;
            }
        }
    }
    CHECK_MSG(next_geom == recorded_count, "%s %s: %d geometries planned, %d conv layers",
              config, model->name, recorded_count, next_geom);
}

static void check_config(const char *path, const char *name, int batch, gan_backend *recorder)
{
    gan_config cfg;
    gan_config_defaults(&cfg);
    CHECK_OK(gan_config_load(&cfg, path));
    char assignment[64];
    snprintf(assignment, sizeof assignment, "train.batch_size=%d", batch);
    CHECK_OK(gan_config_override(&cfg, assignment));
    gan_shape z_shape = {cfg.nz, 1, 1};
    gan_shape image = {cfg.channels, cfg.image_size, cfg.image_size};
    gan_model *g = NULL, *d = NULL, *sampler = NULL;
    CHECK_OK(gan_model_create("G", cfg.generator, z_shape, batch, recorder, &g));
    CHECK_OK(gan_model_create("D", cfg.discriminator, image, batch, recorder, &d));
    /* the trainer's sampler: G at another batch, inference only */
    CHECK_OK(gan_model_create("G(samples)", cfg.generator, z_shape, batch / 2, recorder, &sampler));
    if (g)
        check_model(name, g, recorder);
    if (d)
        check_model(name, d, recorder);
    if (sampler) {
        sampler->inference_only = true;
        check_model(name, sampler, recorder);
        inference_checked++;
    }
    gan_model_destroy(g);
    gan_model_destroy(d);
    gan_model_destroy(sampler);
    configs_checked++;
}

static int compare_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int main(void)
{
    gan_backend recorder;
    memset(&recorder, 0, sizeof recorder);
    recorder.name = "recorder";
    recorder.conv_workspace_bytes = record_conv_workspace_bytes;

    char dir_path[4096];
    snprintf(dir_path, sizeof dir_path, "%s/configs", test_source_dir());
    DIR *dir = opendir(dir_path);
    CHECK_MSG(dir != NULL, "cannot open %s", dir_path);
    if (!dir)
        return test_finish();
    char *names[64];
    int name_count = 0;
    struct dirent *entry;
    while ((entry = readdir(dir)) && name_count < 64) {
        size_t len = strlen(entry->d_name);
        if (len > 4 && strcmp(entry->d_name + len - 4, ".ini") == 0)
            names[name_count++] = strdup(entry->d_name);
    }
    closedir(dir);
    qsort(names, (size_t)name_count, sizeof names[0], compare_names);

    bool have_dcgan[3] = {false, false, false};
    for (int i = 0; i < name_count; i++) {
        char path[8192];
        snprintf(path, sizeof path, "%s/%s", dir_path, names[i]);
        have_dcgan[0] |= strcmp(names[i], "dcgan_celeba64.ini") == 0;
        have_dcgan[1] |= strcmp(names[i], "dcgan_fmnist32.ini") == 0;
        have_dcgan[2] |= strcmp(names[i], "dcgan_cifar32.ini") == 0;
        check_config(path, names[i], 64, &recorder);
        check_config(path, names[i], 128, &recorder);
        free(names[i]);
    }
    CHECK_MSG(have_dcgan[0] && have_dcgan[1] && have_dcgan[2], "a DCGAN config is missing from %s",
              dir_path);
    /* The GEMMs' compute types: FP32 storage in every precision, the products as promised. */
    CHECK(gan_cuda_gemm_compute_type(GAN_PRECISION_FP32) == CUBLAS_COMPUTE_32F_PEDANTIC);
    CHECK(gan_cuda_gemm_compute_type(GAN_PRECISION_TF32) == CUBLAS_COMPUTE_32F_FAST_TF32);
    CHECK(gan_cuda_gemm_compute_type(GAN_PRECISION_BF16) == CUBLAS_COMPUTE_32F_FAST_16BF);
    /* dcgan_celeba64 alone has 5 + 5 convolutions per batch size. */
    CHECK(convs_checked >= PRECISIONS * 2 * 10);
    /* ... of which 3 + 3 are kernel 4, stride 2, pad 1 (the sub-pixel form applies). */
    CHECK(subpixel_checked >= 2 * 6);
    /* ... and 2 take the 3-channel image (padded in NHWC), as dcgan_fmnist32's 2 take 1 channel;
     * fp32 is never NHWC nor padded, tf32 and bf16 are NHWC for every convolution */
    CHECK(padded_checked[GAN_PRECISION_TF32] >= 2 * 2 * 2 && padded_checked[GAN_PRECISION_BF16] >= 2 * 2 * 2);
    CHECK(padded_checked[GAN_PRECISION_FP32] == 0 && nhwc_checked[GAN_PRECISION_FP32] == 0);
    CHECK(nhwc_checked[GAN_PRECISION_TF32] == convs_checked / PRECISIONS &&
          nhwc_checked[GAN_PRECISION_BF16] == convs_checked / PRECISIONS);
    CHECK(inference_checked == configs_checked);
    printf("%d configs x batch sizes, %d convolution geometries (fp32 NCHW, tf32 NCHW and NHWC, bf16 NHWC), %d "
           "of them with a sub-pixel backward-data\n",
           configs_checked, convs_checked / PRECISIONS - subpixel_checked, subpixel_checked);
    return test_finish();
}
#endif
