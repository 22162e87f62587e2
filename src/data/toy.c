/* The built-in 2-d toy data set: a mixture of 8 Gaussians with centres on a ring, the classic
 * test of mode coverage. Sample i of epoch e is drawn from Philox (seed, stream = e, i), so the
 * set is reproducible and a position (epoch, index) resumes it exactly. Samples are float
 * [B, 2, 1, 1]. */
#include <math.h>
#include <stdlib.h>

#include "gan/data_source.h"
#include "gan/elementwise_math.h"

typedef struct toy_ring {
    int batch;                  /* the global batch */
    int part_first, part_rows;  /* the rows handed out (a data-parallel rank's part) */
    double radius, std;
    gan_data_position pos;
    int64_t samples;
} toy_ring;

void gan_toy_ring_mode(int m, double radius, double *x, double *y)
{
    double angle = 2.0 * 3.14159265358979323846 * m / 8.0;
    *x = radius * cos(angle);
    *y = radius * sin(angle);
}

static gan_status toy_next_batch(gan_data_source *src, void *host_batch)
{
    toy_ring *toy = src->impl;
    float *out = host_batch;
    for (int row = 0; row < toy->batch; row++) {
        if (toy->pos.index + 1 > toy->samples) {
            toy->pos.epoch++;
            toy->pos.index = 0;
        }
        uint64_t i = (uint64_t)toy->pos.index++;
        int b = row - toy->part_first;
        if (b < 0 || b >= toy->part_rows)
            continue; /* another rank's sample */
        gan_philox4 r = gan_philox_block(toy->pos.seed, (uint64_t)toy->pos.epoch, i);
        float z0, z1;
        gan_box_muller(r.v[1], r.v[2], &z0, &z1);
        double cx, cy;
        gan_toy_ring_mode((int)(r.v[0] % 8u), toy->radius, &cx, &cy);
        out[2 * b + 0] = (float)(cx + toy->std * z0);
        out[2 * b + 1] = (float)(cy + toy->std * z1);
    }
    return GAN_OK;
}

static gan_status toy_get_position(gan_data_source *src, gan_data_position *pos)
{
    *pos = ((toy_ring *)src->impl)->pos;
    return GAN_OK;
}

static gan_status toy_set_position(gan_data_source *src, const gan_data_position *pos)
{
    toy_ring *toy = src->impl;
    if (pos->index < 0 || pos->index > toy->samples || pos->epoch < 0)
        return gan_error(GAN_ERR_FORMAT, "toy data: position (epoch %lld, index %lld) is out of range",
                         (long long)pos->epoch, (long long)pos->index);
    toy->pos = *pos;
    return GAN_OK;
}

static void toy_close(gan_data_source *src)
{
    if (!src)
        return;
    free(src->impl);
    free(src);
}

gan_status gan_toy_ring_source_open(int batch, uint64_t seed, double radius, double std,
                                    int64_t samples_per_epoch, gan_data_source **out)
{
    return gan_toy_ring_source_open_part(batch, 0, 1, seed, radius, std, samples_per_epoch, out);
}

gan_status gan_toy_ring_source_open_part(int batch, int part, int parts, uint64_t seed, double radius,
                                         double std, int64_t samples_per_epoch, gan_data_source **out)
{
    *out = NULL;
    if (parts < 1 || part < 0 || part >= parts || batch % parts)
        return gan_error(GAN_ERR_ARG, "toy data: part %d of %d of a batch of %d", part, parts, batch);
    if (batch < 1 || samples_per_epoch < batch || !(std > 0.0) || !(radius > 0.0))
        return gan_error(GAN_ERR_ARG, "toy data: bad parameters (batch %d, %lld samples)", batch,
                         (long long)samples_per_epoch);
    gan_data_source *src = calloc(1, sizeof *src);
    toy_ring *toy = calloc(1, sizeof *toy);
    if (!src || !toy) {
        free(src);
        free(toy);
        return gan_error(GAN_ERR_NOMEM, "out of memory");
    }
    toy->batch = batch;
    toy->part_rows = batch / parts;
    toy->part_first = part * toy->part_rows;
    toy->radius = radius;
    toy->std = std;
    toy->samples = samples_per_epoch;
    toy->pos = (gan_data_position){seed, 0, 0};
    src->impl = toy;
    src->height = 1;
    src->width = 1;
    src->channels = 2;
    src->is_float = true;
    src->samples = samples_per_epoch;
    src->batches_per_epoch = samples_per_epoch / batch;
    src->next_batch = toy_next_batch;
    src->get_position = toy_get_position;
    src->set_position = toy_set_position;
    src->close = toy_close;
    *out = src;
    return GAN_OK;
}
