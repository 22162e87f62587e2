/* torchvision's Resize(S) + CenterCrop(S) on 8-bit images, exactly as Pillow computes it
 * (src/libImaging/Resample.c, bilinear filter, 8 bits per channel):
 *   - per output pixel, the coefficients of a triangle filter whose support is scaled by the
 *     downscale factor (antialiasing; support 1 when enlarging), normalised to sum 1 in double,
 *     then converted to fixed point with 22 fractional bits (PRECISION_BITS = 32 - 8 - 2), rounding
 *     half away from zero;
 *   - a horizontal pass (when the width changes) then a vertical pass (when the height changes), each
 *     summing from 1 << 21 (the rounding bias), shifting right by 22 and clamping to [0, 255];
 *   - CenterCrop: top = int(round((h - S) / 2.0)) with Python's round (half to even), left likewise.
 * An output pixel depends only on its own coefficients, so we compute only the pixels the crop
 * keeps, and the horizontal pass only on the input rows those need: the same numbers as resizing
 * everything and cropping, with less work. Coefficients are kept for the last input size (a folder
 * of CelebA images all share one). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gan/data.h"

enum { PRECISION_BITS = 32 - 8 - 2 };

static double bilinear_filter(double x)
{
    if (x < 0.0)
        x = -x;
    return x < 1.0 ? 1.0 - x : 0.0;
}

/* Coefficients for outputs [first, first + count) of an in_size -> out_size resize on one axis. */
typedef struct axis_plan {
    int first, count;
    int ksize;
    int *bounds;   /* [count, 2]: first input index, number of inputs */
    int32_t *k;    /* [count, ksize] fixed point */
    int lo, hi;    /* inputs [lo, hi) are read by these outputs */
} axis_plan;

static void axis_free(axis_plan *a)
{
    free(a->bounds);
    free(a->k);
    memset(a, 0, sizeof *a);
}

static gan_status axis_make(axis_plan *a, int in_size, int out_size, int first, int count)
{
    memset(a, 0, sizeof *a);
    /* Pillow's precompute_coeffs with box (0, in_size) */
    double scale = (double)in_size / out_size, filterscale = scale < 1.0 ? 1.0 : scale;
    double support = 1.0 * filterscale; /* the bilinear filter's support is 1 */
    int ksize = (int)ceil(support) * 2 + 1;
    a->first = first;
    a->count = count;
    a->ksize = ksize;
    a->bounds = malloc((size_t)count * 2 * sizeof(int));
    a->k = calloc((size_t)count * ksize, sizeof(int32_t));
    double *kd = malloc((size_t)ksize * sizeof(double));
    if (!a->bounds || !a->k || !kd) {
        free(kd);
        axis_free(a);
        return gan_error(GAN_ERR_NOMEM, "resize: out of memory for %d coefficients", count * ksize);
    }
    a->lo = in_size;
    a->hi = 0;
    for (int i = 0; i < count; i++) {
        int xx = first + i;
        double center = (xx + 0.5) * scale, ww = 0.0, ss = 1.0 / filterscale;
        int xmin = (int)(center - support + 0.5);
        if (xmin < 0)
            xmin = 0;
        int xmax = (int)(center + support + 0.5);
        if (xmax > in_size)
            xmax = in_size;
        xmax -= xmin;
        for (int x = 0; x < xmax; x++) {
            double w = bilinear_filter((x + xmin - center + 0.5) * ss);
            kd[x] = w;
            ww += w;
        }
        for (int x = 0; x < xmax; x++) {
            double w = ww != 0.0 ? kd[x] / ww : kd[x];
            /* normalize_coeffs_8bpc */
            a->k[(size_t)i * ksize + x] =
                (int32_t)(w < 0 ? -0.5 + w * (1 << PRECISION_BITS) : 0.5 + w * (1 << PRECISION_BITS));
        }
        a->bounds[i * 2] = xmin;
        a->bounds[i * 2 + 1] = xmax;
        if (xmax > 0 && xmin < a->lo)
            a->lo = xmin;
        if (xmin + xmax > a->hi)
            a->hi = xmin + xmax;
    }
    if (a->lo > a->hi)
        a->lo = a->hi;
    free(kd);
    return GAN_OK;
}

static inline uint8_t clip8(int32_t sum)
{
    int32_t v = sum >> PRECISION_BITS;
    return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
}

/* Horizontal pass: rows [r0, r1) of in [.., in_w, C] -> tmp [r1 - r0, h->count, C]. */
static void horizontal_pass(const axis_plan *h, const uint8_t *in, int in_w, int channels, int r0, int r1,
                            uint8_t *tmp)
{
    const int32_t half = 1 << (PRECISION_BITS - 1);
    size_t in_stride = (size_t)in_w * channels, out_stride = (size_t)h->count * channels;
    for (int r = r0; r < r1; r++) {
        const uint8_t *src = in + (size_t)r * in_stride;
        uint8_t *dst = tmp + (size_t)(r - r0) * out_stride;
        for (int i = 0; i < h->count; i++) {
            const int xmin = h->bounds[i * 2], n = h->bounds[i * 2 + 1];
            const int32_t *k = h->k + (size_t)i * h->ksize;
            if (channels == 3) {
                const uint8_t *p = src + (size_t)xmin * 3;
                int32_t s0 = half, s1 = half, s2 = half;
                for (int x = 0; x < n; x++) {
                    s0 += p[x * 3 + 0] * k[x];
                    s1 += p[x * 3 + 1] * k[x];
                    s2 += p[x * 3 + 2] * k[x];
                }
                dst[i * 3 + 0] = clip8(s0);
                dst[i * 3 + 1] = clip8(s1);
                dst[i * 3 + 2] = clip8(s2);
            } else if (channels == 1) {
                const uint8_t *p = src + xmin;
                int32_t s = half;
                for (int x = 0; x < n; x++)
                    s += p[x] * k[x];
                dst[i] = clip8(s);
            } else {
                for (int c = 0; c < channels; c++) {
                    const uint8_t *p = src + (size_t)xmin * channels + c;
                    int32_t s = half;
                    for (int x = 0; x < n; x++)
                        s += p[(size_t)x * channels] * k[x];
                    dst[(size_t)i * channels + c] = clip8(s);
                }
            }
        }
    }
}

/* Vertical pass: src rows (row r of the image at src + (r - r0) * stride) -> out [v->count, width]
 * with width = pixels * channels; acc [width] scratch. */
static void vertical_pass(const axis_plan *v, const uint8_t *src, size_t stride, int r0, size_t width,
                          int32_t *restrict acc, uint8_t *out)
{
    const int32_t half = 1 << (PRECISION_BITS - 1);
    for (int i = 0; i < v->count; i++) {
        const int ymin = v->bounds[i * 2], n = v->bounds[i * 2 + 1];
        const int32_t *k = v->k + (size_t)i * v->ksize;
        for (size_t j = 0; j < width; j++)
            acc[j] = half;
        for (int y = 0; y < n; y++) {
            const uint8_t *restrict row = src + (size_t)(ymin + y - r0) * stride;
            const int32_t ky = k[y];
            for (size_t j = 0; j < width; j++)
                acc[j] += row[j] * ky;
        }
        uint8_t *dst = out + (size_t)i * width;
        for (size_t j = 0; j < width; j++)
            dst[j] = clip8(acc[j]);
    }
}

struct gan_transform {
    int size;
    /* the plan, for inputs of in_w x in_h x channels */
    int in_w, in_h, channels;
    int new_w, new_h, left, top;  /* Resize's size and the crop's offsets */
    int out_w, out_h;             /* the part computed: size x size, or new_w x new_h without crop */
    bool need_h, need_v;
    axis_plan h, v;
    uint8_t *tmp;                 /* [rows, out_w, channels] after the horizontal pass */
    size_t tmp_capacity;
    int32_t *acc;                 /* [out_w * channels] */
    size_t acc_capacity;
};

void gan_resize_output_size(int in_w, int in_h, int size, int *out_w, int *out_h)
{
    /* torchvision's _compute_resized_output_size: int(size * long / short) in floating point */
    if (in_w <= in_h) {
        *out_w = size;
        *out_h = (int)((double)size * in_h / in_w);
    } else {
        *out_h = size;
        *out_w = (int)((double)size * in_w / in_h);
    }
}

/* Python's round() of x = n / 2.0 (n an integer): half to even. */
static int round_half_even(double x)
{
    double r = floor(x + 0.5);
    if (r - x == 0.5 && fmod(r, 2.0) != 0.0)
        r -= 1.0;
    return (int)r;
}

gan_status gan_transform_create(int size, gan_transform **out)
{
    *out = NULL;
    if (size < 1)
        return gan_error(GAN_ERR_ARG, "transform: size %d", size);
    gan_transform *t = calloc(1, sizeof *t);
    if (!t)
        return gan_error(GAN_ERR_NOMEM, "out of memory for a transform");
    t->size = size;
    *out = t;
    return GAN_OK;
}

void gan_transform_destroy(gan_transform *t)
{
    if (!t)
        return;
    axis_free(&t->h);
    axis_free(&t->v);
    free(t->tmp);
    free(t->acc);
    free(t);
}

/* Plans a resize of in_w x in_h to new_w x new_h, computing the out_w x out_h window at (left, top). */
static gan_status plan(gan_transform *t, int in_w, int in_h, int channels, int new_w, int new_h, int left,
                       int top, int out_w, int out_h)
{
    axis_free(&t->h);
    axis_free(&t->v);
    t->in_w = 0; /* no valid plan until the end */
    t->need_h = new_w != in_w;
    t->need_v = new_h != in_h;
    if (t->need_h)
        GAN_TRY(axis_make(&t->h, in_w, new_w, left, out_w));
    if (t->need_v)
        GAN_TRY(axis_make(&t->v, in_h, new_h, top, out_h));
    int r0 = t->need_v ? t->v.lo : top, r1 = t->need_v ? t->v.hi : top + out_h;
    size_t tmp_bytes = t->need_h ? (size_t)(r1 > r0 ? r1 - r0 : 1) * out_w * channels : 1;
    size_t acc_count = (size_t)out_w * channels;
    if (tmp_bytes > t->tmp_capacity) {
        free(t->tmp);
        t->tmp = malloc(tmp_bytes);
        t->tmp_capacity = t->tmp ? tmp_bytes : 0;
    }
    if (acc_count > t->acc_capacity) {
        free(t->acc);
        t->acc = malloc(acc_count * sizeof(int32_t));
        t->acc_capacity = t->acc ? acc_count : 0;
    }
    if (!t->tmp || !t->acc)
        return gan_error(GAN_ERR_NOMEM, "resize: out of memory");
    t->in_w = in_w;
    t->in_h = in_h;
    t->channels = channels;
    t->new_w = new_w;
    t->new_h = new_h;
    t->left = left;
    t->top = top;
    t->out_w = out_w;
    t->out_h = out_h;
    return GAN_OK;
}

static void run(const gan_transform *t, const uint8_t *in, uint8_t *out)
{
    int channels = t->channels;
    int r0 = t->need_v ? t->v.lo : t->top, r1 = t->need_v ? t->v.hi : t->top + t->out_h;
    const uint8_t *rows; /* row r of the horizontally resampled image at rows + (r - r0) * stride */
    size_t stride;
    if (t->need_h) {
        horizontal_pass(&t->h, in, t->in_w, channels, r0, r1, t->tmp);
        rows = t->tmp;
        stride = (size_t)t->out_w * channels;
    } else {
        rows = in + (size_t)r0 * t->in_w * channels + (size_t)t->left * channels;
        stride = (size_t)t->in_w * channels;
    }
    size_t width = (size_t)t->out_w * channels;
    if (t->need_v) {
        vertical_pass(&t->v, rows, stride, r0, width, t->acc, out);
    } else {
        for (int y = 0; y < t->out_h; y++)
            memcpy(out + (size_t)y * width, rows + (size_t)y * stride, width);
    }
}

gan_status gan_transform_apply(gan_transform *t, const uint8_t *in, int in_w, int in_h, int channels,
                               uint8_t *out)
{
    if (in_w < 1 || in_h < 1 || channels < 1 || channels > 4)
        return gan_error(GAN_ERR_ARG, "transform: cannot resize a %dx%dx%d image", in_w, in_h, channels);
    if (t->in_w != in_w || t->in_h != in_h || t->channels != channels || t->out_w != t->size) {
        int new_w, new_h, s = t->size;
        gan_resize_output_size(in_w, in_h, s, &new_w, &new_h);
        /* CenterCrop(S) of the resized image: both sides are >= S, so it never pads */
        int top = round_half_even((new_h - s) / 2.0), left = round_half_even((new_w - s) / 2.0);
        GAN_TRY(plan(t, in_w, in_h, channels, new_w, new_h, left, top, s, s));
    }
    run(t, in, out);
    return GAN_OK;
}

gan_status gan_resize_bilinear(const uint8_t *in, int in_w, int in_h, int channels, uint8_t *out,
                               int out_w, int out_h)
{
    if (in_w < 1 || in_h < 1 || out_w < 1 || out_h < 1 || channels < 1 || channels > 4)
        return gan_error(GAN_ERR_ARG, "resize: %dx%dx%d -> %dx%d is not possible", in_w, in_h, channels,
                         out_w, out_h);
    gan_transform *t;
    GAN_TRY(gan_transform_create(out_w > out_h ? out_w : out_h, &t));
    gan_status status = GAN_OK;
    GAN_CHECK(plan(t, in_w, in_h, channels, out_w, out_h, 0, 0, out_w, out_h));
    run(t, in, out);
cleanup:
    gan_transform_destroy(t);
    return status;
}

gan_status gan_resize_center_crop(const uint8_t *in, int in_w, int in_h, int channels, int size,
                                  uint8_t *out)
{
    gan_transform *t;
    GAN_TRY(gan_transform_create(size, &t));
    gan_status status = gan_transform_apply(t, in, in_w, in_h, channels, out);
    gan_transform_destroy(t);
    return status;
}
