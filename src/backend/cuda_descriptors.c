/* cuDNN descriptors built from the pure arguments of gan/cuda_args.h, and the mapping of our
 * argument enums onto the libraries' enums. Descriptor calls are host-only: they need neither a
 * cuDNN handle nor a device, which is what lets tests/test_cuda_descriptors.c check them in CI. */
#include <string.h>

#include "backend/cuda_internal.h"

cublasOperation_t gan_cuda_cublas_op(gan_cublas_op op)
{
    return op == GAN_CUBLAS_OP_T ? CUBLAS_OP_T : CUBLAS_OP_N;
}

cudnnConvolutionMode_t gan_cuda_cudnn_conv_mode(gan_cudnn_conv_mode mode)
{
    return mode == GAN_CUDNN_CONVOLUTION ? CUDNN_CONVOLUTION : CUDNN_CROSS_CORRELATION;
}

cublasComputeType_t gan_cuda_gemm_compute_type(gan_precision precision)
{
    switch (precision) {
    case GAN_PRECISION_FP32: return CUBLAS_COMPUTE_32F_PEDANTIC;
    case GAN_PRECISION_TF32: return CUBLAS_COMPUTE_32F_FAST_TF32;
    case GAN_PRECISION_BF16: return CUBLAS_COMPUTE_32F_FAST_16BF;
    }
    return CUBLAS_COMPUTE_32F_PEDANTIC;
}

cudnnDataType_t gan_cuda_conv_data_type(gan_precision precision)
{
    return precision == GAN_PRECISION_BF16 ? CUDNN_DATA_BFLOAT16 : CUDNN_DATA_FLOAT;
}

cudnnTensorFormat_t gan_cuda_conv_format(gan_conv_layout layout)
{
    return layout == GAN_CONV_LAYOUT_NHWC ? CUDNN_TENSOR_NHWC : CUDNN_TENSOR_NCHW;
}

unsigned gan_cuda_conv_layouts(gan_precision precision)
{
    switch (precision) {
    case GAN_PRECISION_FP32: return 1u << GAN_CONV_LAYOUT_NCHW;
    case GAN_PRECISION_TF32: return 1u << GAN_CONV_LAYOUT_NCHW | 1u << GAN_CONV_LAYOUT_NHWC;
    case GAN_PRECISION_BF16: return 1u << GAN_CONV_LAYOUT_NHWC;
    }
    return 1u << GAN_CONV_LAYOUT_NCHW;
}

gan_conv_layout gan_cuda_conv_default_layout(gan_precision precision)
{
    return precision == GAN_PRECISION_BF16 ? GAN_CONV_LAYOUT_NHWC : GAN_CONV_LAYOUT_NCHW;
}

int gan_cuda_conv_channel_group(gan_precision precision)
{
    switch (precision) {
    case GAN_PRECISION_FP32: return 1;
    case GAN_PRECISION_TF32: return 4;
    case GAN_PRECISION_BF16: return 8;
    }
    return 1;
}

/* NCHW with the argument's strides (packed, as gan_cuda_conv_args_make gives them), or packed
 * NHWC for the NHWC copies. */
static gan_status tensor4d_create(const gan_cudnn_tensor4d *t, gan_precision precision, gan_conv_layout layout,
                                  cudnnTensorDescriptor_t *out)
{
    CUDNN_TRY(cudnnCreateTensorDescriptor(out));
    cudnnDataType_t type = gan_cuda_conv_data_type(precision);
    if (layout == GAN_CONV_LAYOUT_NHWC)
        CUDNN_TRY(cudnnSetTensor4dDescriptor(*out, CUDNN_TENSOR_NHWC, type, t->n, t->c, t->h, t->w));
    else
        CUDNN_TRY(cudnnSetTensor4dDescriptorEx(*out, type, t->n, t->c, t->h, t->w, t->stride_n, t->stride_c,
                                               t->stride_h, t->stride_w));
    return GAN_OK;
}

static gan_status conv2d_create(const gan_cudnn_conv2d *c, gan_precision precision,
                                cudnnConvolutionDescriptor_t *out)
{
    CUDNN_TRY(cudnnCreateConvolutionDescriptor(out));
    CUDNN_TRY(cudnnSetConvolution2dDescriptor(*out, c->pad_h, c->pad_w, c->stride_h, c->stride_w,
                                              c->dilation_h, c->dilation_w,
                                              gan_cuda_cudnn_conv_mode(c->mode), CUDNN_DATA_FLOAT));
    /* The compute type is FP32 in every precision (bf16: cuDNN's PSEUDO_BFLOAT16 configuration,
     * BF16 tensors and FP32 sums). fp32: FMA kernels only, never TF32. tf32 and bf16: cuDNN's
     * default, tensor cores allowed on Ampere+. */
    CUDNN_TRY(cudnnSetConvolutionMathType(*out, precision == GAN_PRECISION_FP32 ? CUDNN_FMA_MATH
                                                                              : CUDNN_DEFAULT_MATH));
    return GAN_OK;
}

static gan_status conv_descriptors_build(const gan_cuda_conv_args *args, gan_precision precision,
                                         gan_conv_layout layout, gan_cuda_conv_descriptors *out)
{
    GAN_TRY(tensor4d_create(&args->x, precision, layout, &out->x));
    GAN_TRY(tensor4d_create(&args->y, precision, layout, &out->y));
    CUDNN_TRY(cudnnCreateFilterDescriptor(&out->w));
    CUDNN_TRY(cudnnSetFilter4dDescriptor(out->w, gan_cuda_conv_data_type(precision),
                                         gan_cuda_conv_format(layout), args->w.k,
                                         args->w.c, args->w.h, args->w.w));
    GAN_TRY(conv2d_create(&args->conv, precision, &out->forward));
    GAN_TRY(conv2d_create(&args->conv, precision, &out->backward_data));
    GAN_TRY(conv2d_create(&args->conv, precision, &out->backward_filter));
    return GAN_OK;
}

gan_conv_geom gan_cuda_conv_cudnn_geom(const gan_conv_geom *g, gan_precision precision, gan_conv_layout layout)
{
    gan_conv_geom cudnn = *g;
    int group = gan_cuda_conv_channel_group(precision);
    if (layout == GAN_CONV_LAYOUT_NHWC && g->c_in % group != 0)
        cudnn.c_in = (g->c_in / group + 1) * group;
    return cudnn;
}

gan_status gan_cuda_conv_descriptors_create(const gan_conv_geom *g, gan_precision precision,
                                            gan_conv_layout layout, gan_cuda_conv_descriptors *out)
{
    memset(out, 0, sizeof *out);
    gan_conv_geom cudnn = gan_cuda_conv_cudnn_geom(g, precision, layout);
    gan_cuda_conv_args args;
    GAN_TRY(gan_cuda_conv_args_make(&cudnn, &args));
    gan_status status = conv_descriptors_build(&args, precision, layout, out);
    if (status != GAN_OK)
        gan_cuda_conv_descriptors_destroy(out);
    return status;
}

void gan_cuda_conv_descriptors_destroy(gan_cuda_conv_descriptors *d)
{
    if (d->x)
        cudnnDestroyTensorDescriptor(d->x);
    if (d->y)
        cudnnDestroyTensorDescriptor(d->y);
    if (d->w)
        cudnnDestroyFilterDescriptor(d->w);
    if (d->forward)
        cudnnDestroyConvolutionDescriptor(d->forward);
    if (d->backward_data)
        cudnnDestroyConvolutionDescriptor(d->backward_data);
    if (d->backward_filter)
        cudnnDestroyConvolutionDescriptor(d->backward_filter);
    memset(d, 0, sizeof *d);
}
