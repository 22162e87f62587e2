/* The arguments of every cuBLAS and cuDNN call the CUDA backend makes, computed by pure functions
 * from the op table's arguments. They use plain ints and enums of our own (no CUDA headers), so
 * they compile in every build and CI can feed them to CPU references written to the libraries'
 * documented conventions (tests/test_cuda_args.c): a column-major GEMM and cuDNN's NCHW
 * convolution (batch norm runs on kernels of ours, kernels/norm.cuh).
 * src/backend/cublas_cudnn_args.c computes them; cuda_backend.c and cuda_conv.c turn them into
 * the real calls one to one; nothing else decides an argument. */
#ifndef GAN_CUDA_ARGS_H
#define GAN_CUDA_ARGS_H

#include <stdbool.h>
#include <stddef.h>

#include "gan/backend.h"
#include "gan/error.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- cublasSgemm -------------------------------------------------------------------------- *
 * The op table's GEMM is row-major: C[m, n] = alpha op(A)[m, k] op(B)[k, n] + beta C, where a
 * row-major matrix with leading dimension ld is stored as rows of ld floats. cuBLAS is
 * column-major. The same bytes read column-major are the transpose, so the row-major C is the
 * column-major C^T [n, m], and C^T = op(B)^T op(A)^T. So cuBLAS is called with the operands
 * swapped and the row-major shapes mirrored:
 *   cublasSgemm(transa = op of B, transb = op of A, m = n, n = m, k = k,
 *               A = B, lda = ldb, B = A, ldb = lda, C = C, ldc = ldc)
 * The transpose flags carry over unchanged: B stored row-major untransposed ([k, n], ld ldb) is
 * column-major B^T [n, k], exactly the column-major operand op(B)^T needs with CUBLAS_OP_N. */
typedef enum gan_cublas_op {
    GAN_CUBLAS_OP_N = 0, /* CUBLAS_OP_N */
    GAN_CUBLAS_OP_T = 1  /* CUBLAS_OP_T */
} gan_cublas_op;

typedef struct gan_cuda_gemm_args {
    gan_cublas_op transa, transb;
    int m, n, k;
    int lda, ldb, ldc;
    /* Always true: cuBLAS's A is the caller's B and cuBLAS's B the caller's A (see above). */
    bool swap_operands;
} gan_cuda_gemm_args;

/* Checks the row-major call (leading dimensions large enough for the shapes) and maps it. */
gan_status gan_cuda_gemm_args_make(bool trans_a, bool trans_b, int m, int n, int k, int lda,
                                   int ldb, int ldc, gan_cuda_gemm_args *out);

/* ---- convolutions whose kernel covers the whole input: one GEMM per pass ------------------ *
 * A kernel as large as its unpadded input (DCGAN's first G layer, a convT from [nz, 1, 1] to
 * 4x4, and D's last, 4x4 to [1, 1, 1]) has one output pixel per image and channel: x [n, c_in,
 * k_h, k_w] read as [n, K] (K = c_in k_h k_w) is its own im2col and w is [c_out, K], so each pass
 * is one row-major GEMM of the op table:
 *   forward          y  [n, c_out] = x [n, K] w^T                 (a = x,  b = w)
 *   backward-data    dx [n, K]     = dy [n, c_out] w              (a = dy, b = w)
 *   backward-filter  dw [c_out, K] = beta dw + dy^T [c_out, n] x  (a = dy, b = x)
 * Both backends run these passes so (the CPU through sgemm, CUDA through cuBLAS, whose
 * arguments gan_cuda_gemm_args_make maps), not as convolutions. (gan_conv_pass: gan/backend.h.) */
typedef struct gan_conv_gemm {
    bool trans_a, trans_b;
    int m, n, k;
    int lda, ldb, ldc;
} gan_conv_gemm;

/* Whether g's kernel covers its whole unpadded input (stride is then irrelevant). */
bool gan_conv_is_whole_input(const gan_conv_geom *g);

/* The row-major GEMM of `pass` of such a convolution; GAN_ERR_ARG when g is not one, or when K
 * does not fit an int. */
gan_status gan_conv_whole_input_gemm(const gan_conv_geom *g, gan_conv_pass pass, gan_conv_gemm *out);

/* ---- the sub-pixel form of a stride-2 backward-data --------------------------------------- *
 * DCGAN's kernel 4, stride 2, pad 1 convolutions (x [n, ci, H, W], w [co, ci, 4, 4],
 * y [n, co, Ho, Wo], H = 2 Ho, W = 2 Wo) have a backward-data dx = conv^T(dy, w) (also the
 * forward of every stride-2 transposed convolution of G) that cuDNN's deterministic algorithms
 * run several times slower than the forward of the same geometry. It is one stride-1 forward
 * convolution between two cheap kernels of ours (kernels/subpixel.cuh):
 *   1. weights (gan_cuda_subpixel_weights): w2 [4 ci, co, 2, 2],
 *        w2[(a*2 + b)*ci + c, o, i, j] = w[o, c, 3 - a - 2i, 3 - b - 2j],  a, b, i, j in {0, 1};
 *   2. the inner convolution (gan_conv_subpixel_inner): x2 = dy [n, co, Ho, Wo] by w2, kernel
 *      2x2, stride 1, pad 1, into y2 [n, 4 ci, Ho + 1, Wo + 1];
 *   3. gather (gan_cuda_subpixel_gather): dx[n, c, 2p + a, 2q + b] = y2[n, (a*2 + b)*ci + c,
 *      p + a, q + b] for p < Ho, q < Wo; every element of dx is written once.
 * Why: dx[ih] (rows; columns alike) sums dy[oh] w[kh] over ih = 2 oh - 1 + kh. Output row
 * ih = 2p + a of parity a is reached by the two kh of parity 1 - a: kh = 3 - a - 2i, i in {0, 1},
 * from dy row oh = (ih + 1 - kh) / 2 = p + a - 1 + i. y2 at row r reads dy rows r - 1 + i (pad 1),
 * so at r = p + a it reads exactly those two rows with w2's tap i holding w[kh = 3 - a - 2i];
 * the pad supplies zeros for the rows -1 and Ho, where a tap would read outside dy. Each of the
 * four parities (a, b) is one block of ci output channels of the inner convolution.
 * Scratch (device memory the caller plans, gan_conv_subpixel_scratch_floats): w2 first, at float
 * 0, then y2 at gan_conv_subpixel_y2_offset_floats, a multiple of 64 floats (256 bytes, the
 * alignment of a cudaMalloc block), so in a scratch buffer that starts so aligned both tensors
 * are. */

/* Whether g is a kernel 4x4, stride 2x2, pad 1x1 convolution with h_in == 2 h_out and
 * w_in == 2 w_out, every size positive, whose inner tensors (dy, w2, y2) each have an int
 * element count. */
bool gan_conv_subpixel_applies(const gan_conv_geom *g);

/* The inner stride-1 convolution of g's backward-data: x [n, c_out, h_out, w_out] of g into
 * [n, 4 c_in, h_out + 1, w_out + 1], kernel 2x2, pad 1x1. GAN_ERR_ARG, naming g, when the
 * sub-pixel form does not apply. */
gan_status gan_conv_subpixel_inner(const gan_conv_geom *g, gan_conv_geom *inner);

/* Where y2 starts in the scratch: the floats of w2 (16 c_in c_out) rounded up to a multiple of
 * 64; 0 when the sub-pixel form does not apply. */
size_t gan_conv_subpixel_y2_offset_floats(const gan_conv_geom *g);

/* The scratch floats the sub-pixel backward-data needs: w2, padding to a multiple of 64 floats,
 * y2 (n 4 c_in (h_out + 1) (w_out + 1)); 0 when the sub-pixel form does not apply. */
size_t gan_conv_subpixel_scratch_floats(const gan_conv_geom *g);

/* ---- the im2col form of a backward-filter ------------------------------------------------- *
 * dw [co, K] = beta dw + sum over images m and output pixels p of dy[m, o, p] col_m[r, p], with
 * K = ci kh kw and col_m the im2col of image m (row r = (c, ki, kj)), is one GEMM once the sum
 * over (m, p) runs along one axis of both operands (P = n Ho Wo, column (m, oh, ow)):
 *   1. im2col (gan_cuda_im2col): col [K, P], col[(c*kh + ki)*kw + kj, (m*Ho + oh)*Wo + ow] =
 *      x[m, c, oh*sh - ph + ki, ow*sw - pw + kj], 0 outside x (the CPU backend's col layout);
 *   2. channels first (gan_cuda_channels_first): dyt [co, P], dyt[o, m*Ho*Wo + p] = dy[m, o, p];
 *   3. the op table's GEMM (gan_conv_im2col_filter_gemm): dw [co, K] = beta dw + dyt [co, P] col^T.
 * cuDNN's backward-filter algorithms are slow where ci is small (the 3-channel layers: an image's
 * first convolution and, as its weight gradient, the last transposed one): K is then tiny and the
 * work is one long reduction, which cuBLAS splits over the GPU in a fixed order (its results
 * repeat bit for bit on one GPU and toolkit: deterministic). The form is timed beside cuDNN's
 * algorithms and taken only where it is faster.
 * Scratch (gan_conv_im2col_filter_scratch_floats): col at float 0, dyt at
 * gan_conv_im2col_filter_dyt_offset_floats, a multiple of 64 floats (256 bytes). */

/* Whether g (every size positive, not a whole-input convolution, which is one GEMM already) has
 * K and P within an int, as the GEMM's dimensions must be. */
bool gan_conv_im2col_filter_applies(const gan_conv_geom *g);

/* The row-major GEMM of step 3: m = co, n = K, k = P, a = dyt (lda P), b = col transposed
 * (ldb P), c = dw (ldc K). GAN_ERR_ARG, naming g, when the form does not apply. */
gan_status gan_conv_im2col_filter_gemm(const gan_conv_geom *g, gan_conv_gemm *out);

/* Where dyt starts in the scratch: K P rounded up to a multiple of 64; 0 when the form does not
 * apply. */
size_t gan_conv_im2col_filter_dyt_offset_floats(const gan_conv_geom *g);

/* The scratch floats the form needs: col, padding, dyt (co P); 0 when it does not apply. */
size_t gan_conv_im2col_filter_scratch_floats(const gan_conv_geom *g);

/* ---- cuDNN tensors, filters, convolutions ------------------------------------------------- */

/* A 4-d tensor descriptor: dims and strides in elements (cudnnSetTensor4dDescriptorEx). */
typedef struct gan_cudnn_tensor4d {
    int n, c, h, w;
    int stride_n, stride_c, stride_h, stride_w;
} gan_cudnn_tensor4d;

/* A filter descriptor, format NCHW (cuDNN's KCRS): [k = output channels, c, h, w]. */
typedef struct gan_cudnn_filter4d {
    int k, c, h, w;
} gan_cudnn_filter4d;

typedef enum gan_cudnn_conv_mode {
    GAN_CUDNN_CROSS_CORRELATION = 0, /* CUDNN_CROSS_CORRELATION: what PyTorch and we compute */
    GAN_CUDNN_CONVOLUTION = 1        /* CUDNN_CONVOLUTION: the filter flipped; never used */
} gan_cudnn_conv_mode;

/* cudnnSetConvolution2dDescriptor's arguments; the compute type is always CUDNN_DATA_FLOAT. */
typedef struct gan_cudnn_conv2d {
    int pad_h, pad_w;
    int stride_h, stride_w;
    int dilation_h, dilation_w;
    gan_cudnn_conv_mode mode;
} gan_cudnn_conv2d;

/* The descriptors of one convolution geometry, shared by its three calls:
 *   cudnnConvolutionForward(xDesc = x, wDesc = w, convDesc = conv, yDesc = y)
 *   cudnnConvolutionBackwardData(wDesc = w, dyDesc = y, convDesc = conv, dxDesc = x)
 *   cudnnConvolutionBackwardFilter(xDesc = x, dyDesc = y, convDesc = conv, dwDesc = w)
 * A transposed convolution's geometry is the convolution whose backward-data it is, so the same
 * descriptors serve it with the roles of the calls exchanged (see src/nn/convt.c). */
typedef struct gan_cuda_conv_args {
    gan_cudnn_tensor4d x; /* [n, c_in, h_in, w_in], packed NCHW */
    gan_cudnn_tensor4d y; /* [n, c_out, h_out, w_out], packed NCHW */
    gan_cudnn_filter4d w; /* [c_out, c_in, k_h, k_w] */
    gan_cudnn_conv2d conv;
} gan_cuda_conv_args;

/* Fails with GAN_ERR_SHAPE when the geometry's output shape is not what cuDNN will compute. */
gan_status gan_cuda_conv_args_make(const gan_conv_geom *g, gan_cuda_conv_args *out);

/* The output dims [n, c, h, w] cudnnGetConvolution2dForwardOutputDim documents for x, w, conv:
 * out = 1 + (in + 2 pad - ((filter - 1) dilation + 1)) / stride. */
void gan_cuda_conv_forward_output_dims(const gan_cuda_conv_args *args, int dims[4]);

/* Packed NCHW strides for [n, c, h, w]. */
gan_cudnn_tensor4d gan_cudnn_tensor4d_packed(int n, int c, int h, int w);

#ifdef __cplusplus
}
#endif
#endif
