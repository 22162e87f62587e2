/* A model (the generator) as an ONNX file, in eval mode, for ONNX Runtime and the tools built on
 * ONNX (onnx/onnx.proto; the operators of docs/Operators.md at opset 17).
 *
 * The file: a ModelProto with ir_version 8, opset_import {domain "", version 17}, producer_name
 * "gan"; its graph has one input "z" and one output "images", both float with a symbolic batch
 * dimension (dim_param "batch"), so one file runs any batch size:
 *   z       [batch, nz]         when the first module is `linear` (as nn.Linear takes it: the MLP
 *                               generators), otherwise [batch, C, H, W] of the model's input
 *                               shape ([batch, nz, 1, 1] for DCGAN)
 *   images  [batch, C, H, W]    the model's output shape
 * Every weight is an initializer named as in the safetensors export (`<prefix>.<i>.weight`,
 * `.bias`, `.running_mean`, `.running_var`), float32 raw_data (little endian).
 *
 * Layer mapping (module i becomes node `<prefix>.<i>`):
 *   convt(out,k,s,p)  ConvTranspose  kernel_shape [k,k], strides [s,s], pads [p,p,p,p]; weight
 *                                    [C_in, C_out, k, k] is ONNX's layout as it is PyTorch's
 *   conv(out,k,s,p)   Conv           the same attributes, weight [C_out, C_in, k, k]
 *   linear(out)       Gemm           transB = 1 (weight [out, in]), bias as C when present; a
 *                                    4-d input is flattened first (Flatten, axis 1)
 *   bn                BatchNormalization in inference form: epsilon 1e-5, scale = weight,
 *                                    B = bias, input_mean/input_var = the running statistics (not
 *                                    folded into the convolution: the file keeps PyTorch's modules)
 *   relu, lrelu(a), tanh, sigmoid    Relu, LeakyRelu (alpha a), Tanh, Sigmoid
 *   dropout(p)        nothing: identity in eval mode
 *   flatten, reshape  views: a Flatten (before a Gemm) or a Reshape whose shape initializer keeps
 *                                    the batch with 0, e.g. [0, 1, 28, 28]
 * A layer kind without a mapping is refused with GAN_ERR_UNSUPPORTED naming the layer. */
#ifndef GAN_ONNX_EXPORT_H
#define GAN_ONNX_EXPORT_H

#include "gan/error.h"
#include "gan/nn.h"
#include "gan/protobuf.h"

#ifdef __cplusplus
extern "C" {
#endif

enum { GAN_ONNX_IR_VERSION = 8, GAN_ONNX_OPSET = 17 };

/* The encoded ModelProto of `model` (weights read through its backend) into `out` (initialized
 * here; the caller frees it with gan_pb_free, also on failure). `prefix` is model.export_prefix. */
gan_status gan_onnx_encode(gan_model *model, const char *prefix, gan_pb *out);

/* gan_onnx_encode, written to `path` through a temporary file (gan/file_atomic.h). */
gan_status gan_onnx_export(gan_model *model, const char *prefix, const char *path);

#ifdef __cplusplus
}
#endif
#endif
