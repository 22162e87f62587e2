/* Pure functions computing the arguments of every cuBLAS and cuDNN call (see gan/cuda_args.h).
 * Named so that the top-level GLOB filter (which compiles src/backend/cuda_*.c only in CUDA
 * builds) keeps it in every build.
 * No CUDA headers: compiled in every build and tested against CPU references in
 * tests/test_cuda_args.c. */
#include <limits.h>
#include <math.h>

#include "gan/cuda_args.h"

gan_cudnn_tensor4d gan_cudnn_tensor4d_packed(int n, int c, int h, int w)
{
    gan_cudnn_tensor4d t = {
        .n = n, .c = c, .h = h, .w = w,
        .stride_n = c * h * w, .stride_c = h * w, .stride_h = w, .stride_w = 1,
    };
    return t;
}

gan_status gan_cuda_gemm_args_make(bool trans_a, bool trans_b, int m, int n, int k, int lda,
                                   int ldb, int ldc, gan_cuda_gemm_args *out)
{
    if (m < 0 || n < 0 || k < 0)
        return gan_error(GAN_ERR_ARG, "gemm: negative shape m %d, n %d, k %d", m, n, k);
    /* Row-major storage: A is [m, k] (or [k, m] when transposed) with rows of lda floats, etc. */
    int a_cols = trans_a ? m : k;
    int b_cols = trans_b ? k : n;
    if (lda < (a_cols > 1 ? a_cols : 1))
        return gan_error(GAN_ERR_ARG, "gemm: lda %d < %d, the row length of %s A", lda, a_cols,
                         trans_a ? "transposed" : "untransposed");
    if (ldb < (b_cols > 1 ? b_cols : 1))
        return gan_error(GAN_ERR_ARG, "gemm: ldb %d < %d, the row length of %s B", ldb, b_cols,
                         trans_b ? "transposed" : "untransposed");
    if (ldc < (n > 1 ? n : 1))
        return gan_error(GAN_ERR_ARG, "gemm: ldc %d < n %d", ldc, n);
    /* Row-major C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T: swap the operands,
     * exchange m and n, keep each operand's transpose flag and leading dimension. */
    *out = (gan_cuda_gemm_args){
        .transa = trans_b ? GAN_CUBLAS_OP_T : GAN_CUBLAS_OP_N,
        .transb = trans_a ? GAN_CUBLAS_OP_T : GAN_CUBLAS_OP_N,
        .m = n, .n = m, .k = k,
        .lda = ldb, .ldb = lda, .ldc = ldc,
        .swap_operands = true,
    };
    return GAN_OK;
}

bool gan_conv_is_whole_input(const gan_conv_geom *g)
{
    return g->pad_h == 0 && g->pad_w == 0 && g->k_h == g->h_in && g->k_w == g->w_in &&
           g->h_out == 1 && g->w_out == 1;
}

gan_status gan_conv_whole_input_gemm(const gan_conv_geom *g, gan_conv_pass pass, gan_conv_gemm *out)
{
    if (!gan_conv_is_whole_input(g) || g->n < 1 || g->c_in < 1 || g->c_out < 1)
        return gan_error(GAN_ERR_ARG,
                         "convolution x [%d, %d, %d, %d] by kernel %dx%d, pad %dx%d is not one "
                         "whose kernel covers its whole input",
                         g->n, g->c_in, g->h_in, g->w_in, g->k_h, g->k_w, g->pad_h, g->pad_w);
    long long k_long = (long long)g->c_in * g->k_h * g->k_w;
    if (k_long > INT_MAX)
        return gan_error(GAN_ERR_ARG, "convolution of %lld inputs per output does not fit a GEMM",
                         k_long);
    const int n = g->n, co = g->c_out, k = (int)k_long;
    switch (pass) {
    case GAN_CONV_FORWARD: /* y [n, co] = x [n, k] w^T */
        *out = (gan_conv_gemm){false, true, n, co, k, k, k, co};
        return GAN_OK;
    case GAN_CONV_BACKWARD_DATA: /* dx [n, k] = dy [n, co] w [co, k] */
        *out = (gan_conv_gemm){false, false, n, k, co, co, k, k};
        return GAN_OK;
    case GAN_CONV_BACKWARD_FILTER: /* dw [co, k] = beta dw + dy^T [co, n] x [n, k] */
        *out = (gan_conv_gemm){true, false, co, k, n, co, k, k};
        return GAN_OK;
    }
    return gan_error(GAN_ERR_ARG, "unknown convolution pass %d", (int)pass);
}

/* Whether a b c d, each >= 0, is at most INT_MAX; never overflows on the way. */
static bool count_fits_int(long long a, long long b, long long c, long long d)
{
    long long factors[4] = {a, b, c, d}, product = 1;
    for (int i = 0; i < 4; i++) {
        if (factors[i] < 0)
            return false;
        if (factors[i] > 0 && product > INT_MAX / factors[i])
            return false;
        product *= factors[i];
    }
    return true;
}

/* GAN_ERR_ARG: g has no `form` of ours, which needs `needs`. */
static gan_status no_form(const gan_conv_geom *g, const char *form, const char *needs)
{
    return gan_error(GAN_ERR_ARG,
                     "convolution x [%d, %d, %d, %d], y [%d, %d, %d, %d], kernel %dx%d, stride %dx%d, "
                     "pad %dx%d has no %s (it needs %s)",
                     g->n, g->c_in, g->h_in, g->w_in, g->n, g->c_out, g->h_out, g->w_out, g->k_h, g->k_w,
                     g->stride_h, g->stride_w, g->pad_h, g->pad_w, form, needs);
}

bool gan_conv_subpixel_applies(const gan_conv_geom *g)
{
    if (g->k_h != 4 || g->k_w != 4 || g->stride_h != 2 || g->stride_w != 2 || g->pad_h != 1 ||
        g->pad_w != 1)
        return false;
    if (g->n < 1 || g->c_in < 1 || g->c_out < 1 || g->h_out < 1 || g->w_out < 1)
        return false;
    if ((long long)g->h_in != 2LL * g->h_out || (long long)g->w_in != 2LL * g->w_out)
        return false;
    /* The inner convolution's x (dy of g), w2 [4 ci, co, 2, 2] and y2 [n, 4 ci, Ho + 1, Wo + 1]. */
    return count_fits_int(g->n, g->c_out, g->h_out, g->w_out) &&
           count_fits_int(4LL * g->c_in, g->c_out, 2, 2) &&
           count_fits_int(g->n, 4LL * g->c_in, g->h_out + 1LL, g->w_out + 1LL);
}

gan_status gan_conv_subpixel_inner(const gan_conv_geom *g, gan_conv_geom *inner)
{
    if (!gan_conv_subpixel_applies(g))
        return no_form(g, "sub-pixel backward-data",
                       "kernel 4x4, stride 2x2, pad 1x1, x twice y's size and tensors of int element counts");
    /* dy [n, co, Ho, Wo] by w2 [4 ci, co, 2, 2], pad 1: y2 [n, 4 ci, Ho + 1, Wo + 1]. */
    *inner = (gan_conv_geom){
        .n = g->n,
        .c_in = g->c_out, .h_in = g->h_out, .w_in = g->w_out,
        .c_out = 4 * g->c_in, .h_out = g->h_out + 1, .w_out = g->w_out + 1,
        .k_h = 2, .k_w = 2, .stride_h = 1, .stride_w = 1, .pad_h = 1, .pad_w = 1,
    };
    return GAN_OK;
}

/* y2's start in the scratch is a multiple of this many floats (256 bytes); so is dyt's in the
 * im2col form's. */
enum { SCRATCH_ALIGN_FLOATS = 64 };

size_t gan_conv_subpixel_y2_offset_floats(const gan_conv_geom *g)
{
    if (!gan_conv_subpixel_applies(g))
        return 0;
    size_t w2_floats = (size_t)16 * (size_t)g->c_in * (size_t)g->c_out;
    return (w2_floats + SCRATCH_ALIGN_FLOATS - 1) / SCRATCH_ALIGN_FLOATS *
           SCRATCH_ALIGN_FLOATS;
}

size_t gan_conv_subpixel_scratch_floats(const gan_conv_geom *g)
{
    if (!gan_conv_subpixel_applies(g))
        return 0;
    size_t y2_floats = (size_t)g->n * (size_t)(4 * g->c_in) * (size_t)(g->h_out + 1) *
                       (size_t)(g->w_out + 1);
    return gan_conv_subpixel_y2_offset_floats(g) + y2_floats;
}

/* ---- the im2col form of a backward-filter ---------------------------------------------------- */

bool gan_conv_im2col_filter_applies(const gan_conv_geom *g)
{
    if (g->n < 1 || g->c_in < 1 || g->h_in < 1 || g->w_in < 1 || g->c_out < 1 || g->h_out < 1 ||
        g->w_out < 1 || g->k_h < 1 || g->k_w < 1 || g->stride_h < 1 || g->stride_w < 1 ||
        g->pad_h < 0 || g->pad_w < 0 || gan_conv_is_whole_input(g))
        return false;
    return count_fits_int(g->c_in, g->k_h, g->k_w, 1) && count_fits_int(g->n, g->h_out, g->w_out, 1);
}

gan_status gan_conv_im2col_filter_gemm(const gan_conv_geom *g, gan_conv_gemm *out)
{
    if (!gan_conv_im2col_filter_applies(g))
        return no_form(g, "im2col backward-filter",
                       "positive sizes, a kernel smaller than its input and int-sized GEMM dimensions");
    const int k = g->c_in * g->k_h * g->k_w, p = g->n * g->h_out * g->w_out;
    /* dw [co, K] = beta dw + dyt [co, P] col^T, col [K, P] */
    *out = (gan_conv_gemm){false, true, g->c_out, k, p, p, p, k};
    return GAN_OK;
}

size_t gan_conv_im2col_filter_dyt_offset_floats(const gan_conv_geom *g)
{
    if (!gan_conv_im2col_filter_applies(g))
        return 0;
    size_t col = (size_t)g->c_in * (size_t)g->k_h * (size_t)g->k_w * (size_t)g->n * (size_t)g->h_out *
                 (size_t)g->w_out;
    return (col + SCRATCH_ALIGN_FLOATS - 1) / SCRATCH_ALIGN_FLOATS * SCRATCH_ALIGN_FLOATS;
}

size_t gan_conv_im2col_filter_scratch_floats(const gan_conv_geom *g)
{
    if (!gan_conv_im2col_filter_applies(g))
        return 0;
    return gan_conv_im2col_filter_dyt_offset_floats(g) +
           (size_t)g->c_out * (size_t)g->n * (size_t)g->h_out * (size_t)g->w_out;
}

static bool product_fits_int(int a, int b, int c, int d)
{
    long long p = (long long)a * b * c * d;
    return p <= INT_MAX;
}

gan_status gan_cuda_conv_args_make(const gan_conv_geom *g, gan_cuda_conv_args *out)
{
    if (g->n < 1 || g->c_in < 1 || g->h_in < 1 || g->w_in < 1 || g->c_out < 1 || g->h_out < 1 ||
        g->w_out < 1 || g->k_h < 1 || g->k_w < 1 || g->stride_h < 1 || g->stride_w < 1 ||
        g->pad_h < 0 || g->pad_w < 0)
        return gan_error(GAN_ERR_ARG,
                         "convolution geometry x [%d, %d, %d, %d], y [%d, %d, %d, %d], kernel "
                         "%dx%d, stride %dx%d, pad %dx%d has a non-positive size",
                         g->n, g->c_in, g->h_in, g->w_in, g->n, g->c_out, g->h_out, g->w_out,
                         g->k_h, g->k_w, g->stride_h, g->stride_w, g->pad_h, g->pad_w);
    if (!product_fits_int(g->n, g->c_in, g->h_in, g->w_in) ||
        !product_fits_int(g->n, g->c_out, g->h_out, g->w_out))
        return gan_error(GAN_ERR_ARG, "convolution tensor of more than 2^31 elements");
    out->x = gan_cudnn_tensor4d_packed(g->n, g->c_in, g->h_in, g->w_in);
    out->y = gan_cudnn_tensor4d_packed(g->n, g->c_out, g->h_out, g->w_out);
    out->w = (gan_cudnn_filter4d){.k = g->c_out, .c = g->c_in, .h = g->k_h, .w = g->k_w};
    out->conv = (gan_cudnn_conv2d){
        .pad_h = g->pad_h, .pad_w = g->pad_w,
        .stride_h = g->stride_h, .stride_w = g->stride_w,
        .dilation_h = 1, .dilation_w = 1,
        .mode = GAN_CUDNN_CROSS_CORRELATION,
    };
    int dims[4];
    gan_cuda_conv_forward_output_dims(out, dims);
    if (dims[2] != g->h_out || dims[3] != g->w_out)
        return gan_error(GAN_ERR_SHAPE,
                         "convolution of x [%d, %d, %d, %d] by kernel %dx%d, stride %dx%d, pad "
                         "%dx%d gives [%d, %d, %d, %d] in cuDNN, but the plan says [%d, %d, %d, %d]",
                         g->n, g->c_in, g->h_in, g->w_in, g->k_h, g->k_w, g->stride_h, g->stride_w,
                         g->pad_h, g->pad_w, dims[0], dims[1], dims[2], dims[3], g->n, g->c_out,
                         g->h_out, g->w_out);
    return GAN_OK;
}

void gan_cuda_conv_forward_output_dims(const gan_cuda_conv_args *args, int dims[4])
{
    const gan_cudnn_conv2d *c = &args->conv;
    int dilated_h = (args->w.h - 1) * c->dilation_h + 1;
    int dilated_w = (args->w.w - 1) * c->dilation_w + 1;
    dims[0] = args->x.n;
    dims[1] = args->w.k;
    dims[2] = 1 + (args->x.h + 2 * c->pad_h - dilated_h) / c->stride_h;
    dims[3] = 1 + (args->x.w + 2 * c->pad_w - dilated_w) / c->stride_w;
}
