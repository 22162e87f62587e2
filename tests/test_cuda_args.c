/* The arguments the CUDA backend passes to cuBLAS and cuDNN (gan/cuda_args.h), run through CPU
 * references written to those libraries' documented conventions, and compared with the CPU
 * backend's ops on random data of odd shapes. If a transpose flag, a leading dimension, a
 * descriptor dim or stride or the convolution mode were wrong, the reference would compute
 * something else than the CPU backend and this test would fail, without a GPU. (Batch norm runs
 * on kernels of ours: tests/test_emu_kernels.cpp checks them.)
 *
 * References (double accumulation):
 *   sgemm_colmajor: BLAS sgemm, column-major: C(i,j) = alpha sum_l op(A)(i,l) op(B)(l,j)
 *     + beta C(i,j), X(i,j) = X[i + j ld], op(X)(i,j) = X(j,i) when transposed.
 *   cudnn_conv_*: cuDNN's NCHW convolution with explicit tensor strides, KCRS filters, padding,
 *     stride, dilation; CUDNN_CROSS_CORRELATION uses w[k,c,r,s] at input offset (r,s),
 *     CUDNN_CONVOLUTION the flipped w[k,c,R-1-r,S-1-s]. Backward-data and backward-filter are
 *     the adjoints of forward, with alpha/beta blending as cuDNN documents.
 * Tolerances: float results of sums of at most ~200 products against a double reference:
 * rtol 1e-5, atol 1e-5 (values are O(1)). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gan/cuda_args.h"
#include "test_util.h"

static gan_backend *cpu;

/* "<case>: <what>" for check messages (one static buffer: use it within one statement). */
static const char *label(const char *case_name, const char *what)
{
    static char text[256];
    snprintf(text, sizeof text, "%s: %s", case_name, what);
    return text;
}

static float *random_buffer(size_t n, unsigned seed)
{
    float *x = malloc((n ? n : 1) * sizeof *x);
    test_fill_uniform(x, n, seed, -1.0f, 1.0f);
    return x;
}

/* ---- GEMM ------------------------------------------------------------------------------- */

static void sgemm_colmajor(gan_cublas_op transa, gan_cublas_op transb, int m, int n, int k,
                           float alpha, const float *a, int lda, const float *b, int ldb,
                           float beta, float *c, int ldc)
{
    for (int j = 0; j < n; j++)
        for (int i = 0; i < m; i++) {
            double sum = 0.0;
            for (int l = 0; l < k; l++) {
                double av = transa == GAN_CUBLAS_OP_N ? a[i + (size_t)l * lda] : a[l + (size_t)i * lda];
                double bv = transb == GAN_CUBLAS_OP_N ? b[l + (size_t)j * ldb] : b[j + (size_t)l * ldb];
                sum += av * bv;
            }
            float *cij = &c[i + (size_t)j * ldc];
            *cij = (float)(alpha * sum + (beta == 0.0f ? 0.0 : (double)beta * *cij));
        }
}

static void test_gemm_case(bool trans_a, bool trans_b, int m, int n, int k, int pad)
{
    /* Row-major storage with rows padded by `pad` floats beyond what the shape needs. */
    int a_rows = trans_a ? k : m, a_cols = trans_a ? m : k;
    int b_rows = trans_b ? n : k, b_cols = trans_b ? k : n;
    int lda = a_cols + pad, ldb = b_cols + pad, ldc = n + pad;
    float *a = random_buffer((size_t)a_rows * lda, 1);
    float *b = random_buffer((size_t)b_rows * ldb, 2);
    float *c_ref = random_buffer((size_t)m * ldc, 3);
    float *c_cpu = malloc((size_t)m * ldc * sizeof *c_cpu);
    memcpy(c_cpu, c_ref, (size_t)m * ldc * sizeof *c_cpu);

    gan_cuda_gemm_args args;
    CHECK_OK(gan_cuda_gemm_args_make(trans_a, trans_b, m, n, k, lda, ldb, ldc, &args));
    CHECK(args.swap_operands);
    /* As cuda_backend.c calls cublasSgemm: A = caller's b, B = caller's a when swapped. */
    const float *first = args.swap_operands ? b : a, *second = args.swap_operands ? a : b;
    sgemm_colmajor(args.transa, args.transb, args.m, args.n, args.k, 0.75f, first, args.lda,
                   second, args.ldb, 0.5f, c_ref, args.ldc);
    CHECK_OK(cpu->gemm(cpu, trans_a, trans_b, m, n, k, 0.75f, a, lda, b, ldb, 0.5f, c_cpu, ldc));

    char name[96];
    snprintf(name, sizeof name, "gemm %c%c m%d n%d k%d pad%d", trans_a ? 'T' : 'N',
             trans_b ? 'T' : 'N', m, n, k, pad);
    /* The whole of C, padding included: neither side may write outside [m, n]. */
    CHECK_ALLCLOSE(name, c_ref, c_cpu, (size_t)m * ldc, 1e-5, 1e-5);
    free(a);
    free(b);
    free(c_ref);
    free(c_cpu);
}

static void test_gemm(void)
{
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++) {
            test_gemm_case(ta, tb, 7, 5, 3, 0);
            test_gemm_case(ta, tb, 13, 1, 9, 3);
            test_gemm_case(ta, tb, 1, 17, 31, 2);
        }
    /* The three GEMMs of a Linear layer (src/nn/linear.c), batch 5, 11 -> 6 features. */
    test_gemm_case(false, true, 5, 6, 11, 0); /* y = x W^T */
    test_gemm_case(true, false, 6, 11, 5, 0); /* dW = dy^T x */
    test_gemm_case(false, false, 5, 11, 6, 0); /* dx = dy W */

    gan_cuda_gemm_args args;
    CHECK_FAILS_WITH(gan_cuda_gemm_args_make(false, false, 4, 5, 6, 5, 5, 5, &args), GAN_ERR_ARG, "lda");
    CHECK_FAILS_WITH(gan_cuda_gemm_args_make(false, true, 4, 5, 6, 6, 5, 5, &args), GAN_ERR_ARG, "ldb");
    CHECK_FAILS_WITH(gan_cuda_gemm_args_make(false, false, 4, 5, 6, 6, 5, 4, &args), GAN_ERR_ARG, "ldc");
}

/* ---- convolution ------------------------------------------------------------------------- */

static size_t t_index(const gan_cudnn_tensor4d *t, int n, int c, int h, int w)
{
    return (size_t)n * t->stride_n + (size_t)c * t->stride_c + (size_t)h * t->stride_h +
           (size_t)w * t->stride_w;
}

static size_t t_span(const gan_cudnn_tensor4d *t)
{
    return t_index(t, t->n - 1, t->c - 1, t->h - 1, t->w - 1) + 1;
}

static size_t w_index(const gan_cudnn_filter4d *f, const gan_cudnn_conv2d *conv, int k, int c,
                      int r, int s)
{
    if (conv->mode == GAN_CUDNN_CONVOLUTION) {
        r = f->h - 1 - r;
        s = f->w - 1 - s;
    }
    return (((size_t)k * f->c + c) * f->h + r) * f->w + s;
}

/* Calls visit(n, k, p, q, c, r, s, x index, y index, w index) for every input tap that lands
 * inside x: the common loop of the three passes. */
typedef void (*tap_fn)(void *ctx, size_t xi, size_t yi, size_t wi);
static void for_each_tap(const gan_cuda_conv_args *a, void *ctx, tap_fn visit)
{
    const gan_cudnn_conv2d *cv = &a->conv;
    for (int n = 0; n < a->y.n; n++)
        for (int k = 0; k < a->y.c; k++)
            for (int p = 0; p < a->y.h; p++)
                for (int q = 0; q < a->y.w; q++)
                    for (int c = 0; c < a->w.c; c++)
                        for (int r = 0; r < a->w.h; r++)
                            for (int s = 0; s < a->w.w; s++) {
                                int ih = p * cv->stride_h - cv->pad_h + r * cv->dilation_h;
                                int iw = q * cv->stride_w - cv->pad_w + s * cv->dilation_w;
                                if (ih < 0 || ih >= a->x.h || iw < 0 || iw >= a->x.w)
                                    continue;
                                visit(ctx, t_index(&a->x, n, c, ih, iw), t_index(&a->y, n, k, p, q),
                                      w_index(&a->w, cv, k, c, r, s));
                            }
}

typedef struct conv_ctx {
    const float *x, *w, *dy;
    double *acc; /* the pass's output, accumulated in double */
} conv_ctx;

static void tap_forward(void *p, size_t xi, size_t yi, size_t wi)
{
    conv_ctx *c = p;
    c->acc[yi] += (double)c->x[xi] * c->w[wi];
}
static void tap_backward_data(void *p, size_t xi, size_t yi, size_t wi)
{
    conv_ctx *c = p;
    c->acc[xi] += (double)c->dy[yi] * c->w[wi];
}
static void tap_backward_filter(void *p, size_t xi, size_t yi, size_t wi)
{
    conv_ctx *c = p;
    c->acc[wi] += (double)c->x[xi] * c->dy[yi];
}

/* out = alpha * acc + beta * out (beta == 0: out is not read), as cuDNN blends. */
static void blend(float *out, const double *acc, size_t n, float alpha, float beta)
{
    for (size_t i = 0; i < n; i++)
        out[i] = (float)(alpha * acc[i] + (beta == 0.0f ? 0.0 : (double)beta * out[i]));
}

/* c = beta c + op(a) op(b) for the row-major GEMM m, computed as the CUDA backend calls cuBLAS
 * (gan_cuda_gemm_args_make, then a column-major sgemm with the operands swapped). */
static void gemm_as_cublas(const gan_conv_gemm *m, const float *a, const float *b, float beta,
                           float *c)
{
    gan_cuda_gemm_args args;
    CHECK_OK(gan_cuda_gemm_args_make(m->trans_a, m->trans_b, m->m, m->n, m->k, m->lda, m->ldb,
                                     m->ldc, &args));
    const float *first = args.swap_operands ? b : a, *second = args.swap_operands ? a : b;
    sgemm_colmajor(args.transa, args.transb, args.m, args.n, args.k, 1.0f, first, args.lda,
                   second, args.ldb, beta, c, args.ldc);
}

/* A kernel covering its whole input: each pass's GEMM (gan_conv_whole_input_gemm, as both
 * backends run it) against the convolution reference `ref_*` of the same inputs. */
static void check_whole_input(const char *name, const gan_conv_geom *g, const float *x,
                              const float *w, const float *dy, const float *ref_y,
                              const float *ref_dx, const float *ref_dw, size_t x_count,
                              size_t y_count, size_t w_count)
{
    gan_conv_gemm m;
    float *got = malloc((x_count + y_count + w_count) * sizeof *got);
    CHECK_OK(gan_conv_whole_input_gemm(g, GAN_CONV_FORWARD, &m));
    gemm_as_cublas(&m, x, w, 0.0f, got);
    CHECK_ALLCLOSE(label(name, "whole-input GEMM forward"), got, ref_y, y_count, 1e-5, 1e-5);
    CHECK_OK(gan_conv_whole_input_gemm(g, GAN_CONV_BACKWARD_DATA, &m));
    gemm_as_cublas(&m, dy, w, 0.0f, got);
    CHECK_ALLCLOSE(label(name, "whole-input GEMM backward data"), got, ref_dx, x_count, 1e-5, 1e-5);
    /* beta 1 onto a copy of the reference: 2 ref_dw. */
    CHECK_OK(gan_conv_whole_input_gemm(g, GAN_CONV_BACKWARD_FILTER, &m));
    memcpy(got, ref_dw, w_count * sizeof *got);
    gemm_as_cublas(&m, dy, x, 1.0f, got);
    for (size_t i = 0; i < w_count; i++)
        got[i] *= 0.5f;
    CHECK_ALLCLOSE(label(name, "whole-input GEMM backward filter beta=1"), got, ref_dw, w_count,
                   1e-5, 1e-5);
    free(got);
}

/* The im2col backward-filter (gan_conv_im2col_filter_*): col and dyt built on the host by the
 * layouts gan/cuda_args.h states, then its GEMM as the CUDA backend calls cuBLAS, against the
 * convolution reference's dw (beta 0, then beta 1 onto it). */
static void check_im2col_filter(const char *name, const gan_conv_geom *g, const float *x,
                                const float *dy, const float *ref_dw, size_t w_count)
{
    CHECK_MSG(gan_conv_im2col_filter_applies(g), "%s: the im2col backward-filter does not apply", name);
    const size_t k = (size_t)g->c_in * g->k_h * g->k_w, p = (size_t)g->n * g->h_out * g->w_out;
    const size_t at = gan_conv_im2col_filter_dyt_offset_floats(g);
    CHECK(at % 64 == 0 && at >= k * p && at < k * p + 64);
    CHECK(gan_conv_im2col_filter_scratch_floats(g) == at + (size_t)g->c_out * p);
    float *scratch = malloc(gan_conv_im2col_filter_scratch_floats(g) * sizeof *scratch);
    float *col = scratch, *dyt = scratch + at;
    for (int m = 0; m < g->n; m++)
        for (int c = 0; c < g->c_in; c++)
            for (int i = 0; i < g->k_h; i++)
                for (int j = 0; j < g->k_w; j++)
                    for (int oh = 0; oh < g->h_out; oh++)
                        for (int ow = 0; ow < g->w_out; ow++) {
                            int ih = oh * g->stride_h - g->pad_h + i, iw = ow * g->stride_w - g->pad_w + j;
                            size_t row = ((size_t)c * g->k_h + i) * g->k_w + j;
                            size_t column = ((size_t)m * g->h_out + oh) * g->w_out + ow;
                            bool in = ih >= 0 && iw >= 0 && ih < g->h_in && iw < g->w_in;
                            col[row * p + column] =
                                in ? x[(((size_t)m * g->c_in + c) * g->h_in + ih) * g->w_in + iw] : 0.0f;
                        }
    const size_t hw = (size_t)g->h_out * g->w_out;
    for (int m = 0; m < g->n; m++)
        for (int o = 0; o < g->c_out; o++)
            for (size_t q = 0; q < hw; q++)
                dyt[(size_t)o * p + m * hw + q] = dy[((size_t)m * g->c_out + o) * hw + q];
    gan_conv_gemm mm;
    CHECK_OK(gan_conv_im2col_filter_gemm(g, &mm));
    float *got = malloc(w_count * sizeof *got);
    gemm_as_cublas(&mm, dyt, col, 0.0f, got);
    CHECK_ALLCLOSE(label(name, "im2col backward filter beta=0"), got, ref_dw, w_count, 1e-5, 1e-5);
    gemm_as_cublas(&mm, dyt, col, 1.0f, got);
    for (size_t i = 0; i < w_count; i++)
        got[i] *= 0.5f;
    CHECK_ALLCLOSE(label(name, "im2col backward filter beta=1"), got, ref_dw, w_count, 1e-5, 1e-5);
    free(got);
    free(scratch);
}

static void test_conv_case(gan_conv_geom g)
{
    gan_cuda_conv_args args;
    CHECK_OK(gan_cuda_conv_args_make(&g, &args));
    CHECK(args.conv.mode == GAN_CUDNN_CROSS_CORRELATION);
    int dims[4];
    gan_cuda_conv_forward_output_dims(&args, dims);
    CHECK(dims[0] == g.n && dims[1] == g.c_out && dims[2] == g.h_out && dims[3] == g.w_out);

    size_t x_count = t_span(&args.x), y_count = t_span(&args.y);
    size_t w_count = (size_t)args.w.k * args.w.c * args.w.h * args.w.w;
    CHECK(x_count == (size_t)g.n * g.c_in * g.h_in * g.w_in);
    CHECK(y_count == (size_t)g.n * g.c_out * g.h_out * g.w_out);
    float *x = random_buffer(x_count, 11), *w = random_buffer(w_count, 12);
    float *dy = random_buffer(y_count, 13);
    float *ref = malloc((x_count + y_count + w_count) * sizeof *ref);
    float *got = malloc((x_count + y_count + w_count) * sizeof *got);
    double *acc = calloc(x_count + y_count + w_count, sizeof *acc);
    size_t ws_bytes = cpu->conv_workspace_bytes(cpu, &g, GAN_CONV_PASSES_ALL);
    void *ws = malloc(ws_bytes ? ws_bytes : 1);
    char name[128];
    snprintf(name, sizeof name, "x[%d,%d,%d,%d] k%dx%d s%dx%d p%dx%d", g.n, g.c_in, g.h_in, g.w_in,
             g.k_h, g.k_w, g.stride_h, g.stride_w, g.pad_h, g.pad_w);

    /* Forward: y = conv(x, w), beta 0. */
    conv_ctx ctx = {x, w, dy, acc};
    for_each_tap(&args, &ctx, tap_forward);
    blend(ref, acc, y_count, 1.0f, 0.0f);
    CHECK_OK(cpu->conv_forward(cpu, &g, x, w, got, ws));
    CHECK_ALLCLOSE(label(name, "conv forward"), got, ref, y_count, 1e-5, 1e-5);
    float *ref_y = malloc(y_count * sizeof *ref_y);
    memcpy(ref_y, ref, y_count * sizeof *ref_y);

    /* Backward data: dx = conv^T(dy, w), beta 0. */
    memset(acc, 0, x_count * sizeof *acc);
    for_each_tap(&args, &ctx, tap_backward_data);
    blend(ref, acc, x_count, 1.0f, 0.0f);
    CHECK_OK(cpu->conv_backward_data(cpu, &g, dy, w, got, ws));
    CHECK_ALLCLOSE(label(name, "conv backward data"), got, ref, x_count, 1e-5, 1e-5);
    float *ref_dx = malloc(x_count * sizeof *ref_dx);
    memcpy(ref_dx, ref, x_count * sizeof *ref_dx);

    /* Backward filter, overwriting (beta 0) then accumulating (beta 1) onto it. */
    memset(acc, 0, w_count * sizeof *acc);
    for_each_tap(&args, &ctx, tap_backward_filter);
    blend(ref, acc, w_count, 1.0f, 0.0f);
    CHECK_OK(cpu->conv_backward_filter(cpu, &g, x, dy, 0.0f, got, ws));
    CHECK_ALLCLOSE(label(name, "conv backward filter beta=0"), got, ref, w_count, 1e-5, 1e-5);
    if (gan_conv_is_whole_input(&g)) {
        check_whole_input(name, &g, x, w, dy, ref_y, ref_dx, ref, x_count, y_count, w_count);
        gan_conv_gemm m;
        CHECK(!gan_conv_im2col_filter_applies(&g) && gan_conv_im2col_filter_scratch_floats(&g) == 0);
        CHECK_FAILS_WITH(gan_conv_im2col_filter_gemm(&g, &m), GAN_ERR_ARG, "im2col");
    } else {
        gan_conv_gemm m;
        CHECK_FAILS_WITH(gan_conv_whole_input_gemm(&g, GAN_CONV_FORWARD, &m), GAN_ERR_ARG,
                         "whole input");
        check_im2col_filter(name, &g, x, dy, ref, w_count);
    }
    free(ref_y);
    free(ref_dx);
    blend(ref, acc, w_count, 1.0f, 1.0f);
    CHECK_OK(cpu->conv_backward_filter(cpu, &g, x, dy, 1.0f, got, ws));
    CHECK_ALLCLOSE(label(name, "conv backward filter beta=1"), got, ref, w_count, 1e-5, 1e-5);

    /* The convolution mode matters: with the filter flipped (CUDNN_CONVOLUTION) the reference
     * disagrees with the CPU backend (kernels larger than 1x1 only). */
    if (g.k_h * g.k_w > 1) {
        gan_cuda_conv_args flipped = args;
        flipped.conv.mode = GAN_CUDNN_CONVOLUTION;
        memset(acc, 0, y_count * sizeof *acc);
        for_each_tap(&flipped, &ctx, tap_forward);
        blend(ref, acc, y_count, 1.0f, 0.0f);
        CHECK_OK(cpu->conv_forward(cpu, &g, x, w, got, ws));
        test_diff d = test_compare(got, ref, y_count, 1e-3);
        CHECK_MSG(d.max_abs > 1e-3, "%s: CUDNN_CONVOLUTION matched cross-correlation", name);
    }
    free(x);
    free(w);
    free(dy);
    free(ref);
    free(got);
    free(acc);
    free(ws);
}

static gan_conv_geom geom(int n, int c_in, int h_in, int w_in, int c_out, int k_h, int k_w,
                          int s_h, int s_w, int p_h, int p_w)
{
    gan_conv_geom g = {
        .n = n, .c_in = c_in, .h_in = h_in, .w_in = w_in, .c_out = c_out,
        .h_out = (h_in + 2 * p_h - k_h) / s_h + 1, .w_out = (w_in + 2 * p_w - k_w) / s_w + 1,
        .k_h = k_h, .k_w = k_w, .stride_h = s_h, .stride_w = s_w, .pad_h = p_h, .pad_w = p_w,
    };
    return g;
}

static void test_conv(void)
{
    test_conv_case(geom(2, 3, 8, 8, 4, 4, 4, 2, 2, 1, 1));   /* a DCGAN layer, small */
    test_conv_case(geom(3, 2, 7, 6, 5, 3, 2, 2, 1, 1, 0));   /* odd and anisotropic */
    test_conv_case(geom(2, 5, 4, 4, 3, 4, 4, 1, 1, 0, 0));   /* D's last layer / G's first ConvT */
    test_conv_case(geom(3, 8, 4, 4, 1, 4, 4, 1, 1, 0, 0));   /* D's last: one output channel */
    test_conv_case(geom(2, 3, 4, 5, 6, 4, 5, 2, 3, 0, 0));   /* whole input, any stride */
    test_conv_case(geom(1, 1, 5, 9, 2, 1, 1, 1, 3, 0, 0));   /* 1x1 kernel, stride 3 across */
    test_conv_case(geom(2, 2, 9, 7, 3, 5, 3, 3, 2, 2, 1));   /* stride leaves input unread */
    /* The FID Inception's rectangular kernels with per-axis padding (src/eval/inception.c):
     * 1x7 padded (0, 3), 7x1 padded (3, 0), 1x3 (0, 1), 3x1 (1, 0), shapes kept; and its 1x1. */
    test_conv_case(geom(2, 3, 5, 9, 4, 1, 7, 1, 1, 0, 3));
    test_conv_case(geom(2, 3, 9, 5, 4, 7, 1, 1, 1, 3, 0));
    test_conv_case(geom(1, 4, 4, 6, 3, 1, 3, 1, 1, 0, 1));
    test_conv_case(geom(1, 4, 6, 4, 3, 3, 1, 1, 1, 1, 0));
    test_conv_case(geom(2, 6, 5, 5, 3, 1, 1, 1, 1, 0, 0));

    /* A plan whose output shape cuDNN would not produce is refused. */
    gan_conv_geom bad = geom(2, 3, 8, 8, 4, 4, 4, 2, 2, 1, 1);
    bad.h_out += 1;
    gan_cuda_conv_args args;
    CHECK_FAILS_WITH(gan_cuda_conv_args_make(&bad, &args), GAN_ERR_SHAPE, "plan says");
}

/* ---- the sub-pixel backward-data of a kernel 4, stride 2, pad 1 convolution ---------------- */

/* g's backward-data as the inner forward convolution of gan_conv_subpixel_inner on rearranged
 * weights, then gathered, all through the references above; against the reference
 * backward-data of g. */
static void test_subpixel_case(gan_conv_geom g)
{
    char name[128];
    snprintf(name, sizeof name, "subpixel x[%d,%d,%d,%d] w[%d,%d,4,4]", g.n, g.c_in, g.h_in, g.w_in,
             g.c_out, g.c_in);
    CHECK_MSG(gan_conv_subpixel_applies(&g), "%s: does not apply", name);
    gan_conv_geom inner;
    CHECK_OK(gan_conv_subpixel_inner(&g, &inner));
    gan_cuda_conv_args args, inner_args;
    CHECK_OK(gan_cuda_conv_args_make(&g, &args));
    CHECK_OK(gan_cuda_conv_args_make(&inner, &inner_args));
    CHECK(inner.n == g.n && inner.c_in == g.c_out && inner.h_in == g.h_out && inner.w_in == g.w_out);
    CHECK(inner.c_out == 4 * g.c_in && inner.h_out == g.h_out + 1 && inner.w_out == g.w_out + 1);

    const int n = g.n, ci = g.c_in, co = g.c_out, ho = g.h_out, wo = g.w_out;
    size_t x_count = t_span(&args.x), y_count = t_span(&args.y);
    size_t w_count = (size_t)co * ci * 16, y2_count = t_span(&inner_args.y);
    CHECK(gan_conv_subpixel_y2_offset_floats(&g) == (w_count + 63) / 64 * 64);
    CHECK(gan_conv_subpixel_scratch_floats(&g) == (w_count + 63) / 64 * 64 + y2_count);
    float *w = random_buffer(w_count, 21), *dy = random_buffer(y_count, 22);
    float *w2 = malloc(w_count * sizeof *w2), *y2 = malloc(y2_count * sizeof *y2);
    float *ref = malloc(x_count * sizeof *ref), *got = malloc(x_count * sizeof *got);
    double *acc = calloc(x_count > y2_count ? x_count : y2_count, sizeof *acc);

    /* Reference: dx = conv^T(dy, w) on g. */
    conv_ctx ctx = {NULL, w, dy, acc};
    for_each_tap(&args, &ctx, tap_backward_data);
    blend(ref, acc, x_count, 1.0f, 0.0f);

    /* w2[(a*2 + b)*ci + c, o, i, j] = w[o, c, 3 - a - 2i, 3 - b - 2j] */
    for (int a = 0; a < 2; a++)
        for (int b = 0; b < 2; b++)
            for (int c = 0; c < ci; c++)
                for (int o = 0; o < co; o++)
                    for (int i = 0; i < 2; i++)
                        for (int j = 0; j < 2; j++)
                            w2[((((size_t)(a * 2 + b) * ci + c) * co + o) * 2 + i) * 2 + j] =
                                w[(((size_t)o * ci + c) * 4 + 3 - a - 2 * i) * 4 + 3 - b - 2 * j];
    /* y2 = conv(dy, w2) on the inner geometry. */
    memset(acc, 0, y2_count * sizeof *acc);
    conv_ctx inner_ctx = {dy, w2, NULL, acc};
    for_each_tap(&inner_args, &inner_ctx, tap_forward);
    blend(y2, acc, y2_count, 1.0f, 0.0f);
    /* dx[m, c, 2p + a, 2q + b] = y2[m, (a*2 + b)*ci + c, p + a, q + b] */
    for (size_t e = 0; e < x_count; e++)
        got[e] = NAN;
    for (int m = 0; m < n; m++)
        for (int c = 0; c < ci; c++)
            for (int p = 0; p < ho; p++)
                for (int q = 0; q < wo; q++)
                    for (int a = 0; a < 2; a++)
                        for (int b = 0; b < 2; b++)
                            got[t_index(&args.x, m, c, 2 * p + a, 2 * q + b)] =
                                y2[t_index(&inner_args.y, m, (a * 2 + b) * ci + c, p + a, q + b)];
    CHECK_ALLCLOSE(name, got, ref, x_count, 1e-5, 1e-5);
    free(w);
    free(dy);
    free(w2);
    free(y2);
    free(ref);
    free(got);
    free(acc);
}

static void test_subpixel(void)
{
    /* DCGAN's k4s2p1 layers, D's convolutions and G's transposed ones alike (64 -> 32 -> 16 -> 8
     * -> 4), at several channel counts: the form applies. */
    static const int channels[][2] = {{3, 64}, {64, 128}, {128, 256}, {256, 512}, {512, 1024}, {1, 8}};
    for (int h = 64, l = 0; h >= 8; h /= 2, l++)
        for (int k = 0; k < 6; k++) {
            gan_conv_geom g = geom(128, channels[k][0], h, h, channels[k][1], 4, 4, 2, 2, 1, 1);
            CHECK_MSG(g.h_out == h / 2 && gan_conv_subpixel_applies(&g),
                      "k4s2p1 %d -> %d, %d -> %d channels: sub-pixel form does not apply", h, h / 2,
                      channels[k][0], channels[k][1]);
            gan_conv_geom inner;
            gan_cuda_conv_args args;
            CHECK_OK(gan_conv_subpixel_inner(&g, &inner));
            CHECK_OK(gan_cuda_conv_args_make(&inner, &args));
            CHECK(gan_conv_subpixel_scratch_floats(&g) > 0);
        }
    /* Not these: stride 1 (D's last layer, G's first), kernel 3, odd sizes, whole-input
     * kernels, pad 0, stride 2 along one axis only, empty batches, inner tensors past int. */
    const gan_conv_geom refused[] = {
        geom(64, 512, 4, 4, 1, 4, 4, 1, 1, 0, 0),   /* k4s1p0, whole input */
        geom(64, 64, 8, 8, 64, 4, 4, 1, 1, 0, 0),   /* k4s1p0 */
        geom(64, 64, 16, 16, 64, 3, 3, 2, 2, 1, 1), /* k3s2p1 */
        geom(64, 64, 9, 9, 64, 4, 4, 2, 2, 1, 1),   /* odd size: 9 -> 4 */
        geom(64, 64, 8, 9, 64, 4, 4, 2, 2, 1, 1),   /* odd width */
        geom(64, 64, 4, 4, 64, 4, 4, 2, 2, 0, 0),   /* whole input, stride 2 */
        geom(64, 64, 8, 8, 64, 4, 4, 2, 2, 0, 0),   /* pad 0 */
        geom(64, 64, 8, 8, 64, 4, 4, 2, 1, 1, 1),   /* stride 2x1 */
        geom(0, 64, 8, 8, 64, 4, 4, 2, 2, 1, 1),    /* no images */
        geom(1 << 16, 64, 64, 64, 3, 4, 4, 2, 2, 1, 1), /* y2 of 2^16 * 256 * 33 * 33 floats */
        geom(1, 1 << 14, 8, 8, 1 << 14, 4, 4, 2, 2, 1, 1), /* w2 of 2^32 floats */
    };
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        const gan_conv_geom *g = &refused[i];
        CHECK_MSG(!gan_conv_subpixel_applies(g),
                  "x [%d, %d, %d, %d] k%dx%d s%dx%d p%dx%d: the sub-pixel form applied", g->n,
                  g->c_in, g->h_in, g->w_in, g->k_h, g->k_w, g->stride_h, g->stride_w, g->pad_h,
                  g->pad_w);
        gan_conv_geom inner;
        CHECK_FAILS_WITH(gan_conv_subpixel_inner(g, &inner), GAN_ERR_ARG, "no sub-pixel");
        CHECK(gan_conv_subpixel_scratch_floats(g) == 0 && gan_conv_subpixel_y2_offset_floats(g) == 0);
    }
    /* With kernel 4 and stride 2, only pad 1 halves a size, so a plan's sizes imply the pad; a
     * geometry whose pad disagrees with its sizes is refused all the same. */
    for (int axis = 0; axis < 2; axis++) {
        gan_conv_geom g = geom(64, 64, 8, 8, 64, 4, 4, 2, 2, 1, 1);
        *(axis == 0 ? &g.pad_h : &g.pad_w) = 0;
        CHECK_MSG(!gan_conv_subpixel_applies(&g), "pad %dx%d: the sub-pixel form applied", g.pad_h,
                  g.pad_w);
    }
    gan_conv_geom named = geom(2, 3, 9, 9, 5, 4, 4, 2, 2, 1, 1), inner;
    CHECK_FAILS_WITH(gan_conv_subpixel_inner(&named, &inner), GAN_ERR_ARG, "x [2, 3, 9, 9]");

    test_subpixel_case(geom(2, 3, 8, 8, 5, 4, 4, 2, 2, 1, 1));  /* 8x8 -> 4x4 */
    test_subpixel_case(geom(1, 4, 4, 4, 2, 4, 4, 2, 2, 1, 1));  /* 4x4 -> 2x2 */
    test_subpixel_case(geom(3, 2, 6, 10, 3, 4, 4, 2, 2, 1, 1)); /* non-square 6x10 -> 3x5 */
    test_subpixel_case(geom(1, 1, 2, 2, 1, 4, 4, 2, 2, 1, 1));  /* 2x2 -> 1x1 */
}

int main(void)
{
    if (gan_cpu_backend_create(NULL, &cpu) != GAN_OK) {
        fprintf(stderr, "cannot create the CPU backend: %s\n", gan_error_message());
        return 1;
    }
    test_gemm();
    test_conv();
    test_subpixel();
    cpu->destroy(cpu);
    return test_finish();
}
