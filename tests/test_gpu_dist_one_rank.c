/* On a machine with a CUDA device: the data-parallel path on one rank through NCCL (a one-rank
 * process group, what GAN_DIST_FORCE=1 gives without a launcher: NCCL's communicator of one rank
 * needs no MPI) trains bit for bit like the CUDA backend without a group, in fp32 + deterministic,
 * with the iteration captured as a CUDA graph (the all-reduces inside it). DCGAN-shaped (the
 * batch norm split around the all-reduces, with and without train.sync_bn) and the MLP (dropout,
 * two D steps). Without a usable device, or with a CUDA backend built without NCCL, it reports
 * skipped (exit 77) and says why.
 *
 * Several GPUs (several ranks through NCCL) cannot be tested on the machines this project has: see
 * README, "Several processes". */
#include <stdlib.h>
#include <string.h>

#include "gan/backend_select.h"
#include "gan/cuda_backend.h"
#include "gan/data.h"
#include "gan/train.h"
#include "test_util.h"

static const gan_dist ONE_RANK = {.world_size = 1, .rank = 0, .local_size = 1, .local_rank = 0, .active = true,
                                  .mpi = false};

static const char *const DCGAN =
    "[model]\nnz = 16\n"
    "generator = convt(32,4,1,0) bn relu convt(16,4,2,1) bn relu convt(1,4,2,1) tanh\n"
    "discriminator = conv(16,4,2,1) lrelu(0.2) conv(32,4,2,1) bn lrelu(0.2) conv(1,4,1,0) sigmoid\n"
    "[data]\nimage_size = 16\nchannels = 1\n"
    "[train]\nbatch_size = 8\nseed = 3\n";

static const char *const MLP =
    "[model]\nnz = 8\nnoise = uniform\n"
    "generator = linear(32) bn relu linear(64,bias) tanh reshape(1,8,8)\n"
    "discriminator = flatten linear(32,bias) lrelu(0.2) dropout(0.3) linear(16,bias) lrelu(0.2) dropout(0.3) "
    "linear(1,bias) sigmoid\n"
    "[data]\nimage_size = 8\nchannels = 1\n"
    "[train]\nbatch_size = 8\nseed = 4\nd_steps = 2\n";

static gan_trainer *make_trainer(gan_backend *be, const char *text, bool sync_bn, gan_data_source **data)
{
    gan_config cfg;
    gan_config_defaults(&cfg);
    CHECK_OK(gan_config_load_string(&cfg, text, "gpu_dist.ini"));
    cfg.sync_bn = sync_bn;
    CHECK_OK(test_hashed_image_source(&cfg, 64, data));
    gan_trainer *t = NULL;
    CHECK_OK(gan_trainer_create(&cfg, be, *data, NULL, &t));
    return t;
}

/* n floats of each backend's memory, the same bits */
static bool same(gan_backend *a_be, const float *a, gan_backend *b_be, const float *b, size_t n)
{
    if (!n)
        return true;
    float *x = malloc(n * sizeof *x), *y = malloc(n * sizeof *y);
    CHECK_OK(a_be->download(a_be, x, a, n * sizeof *x));
    CHECK_OK(b_be->download(b_be, y, b, n * sizeof *y));
    bool equal = !memcmp(x, y, n * sizeof *x);
    free(x);
    free(y);
    return equal;
}

static void check_model(const char *what, gan_model *a, gan_model *b)
{
    CHECK_MSG(same(a->backend, a->weights, b->backend, b->weights, a->trainable_count), "%s: weights differ", what);
    CHECK_MSG(same(a->backend, a->adam_m, b->backend, b->adam_m, a->trainable_count) &&
                  same(a->backend, a->adam_v, b->backend, b->adam_v, a->trainable_count),
              "%s: Adam moments differ", what);
    CHECK_MSG(same(a->backend, a->buffers, b->backend, b->buffers, a->buffer_count), "%s: running statistics differ",
              what);
}

static void compare(const char *name, const char *text, bool sync_bn, gan_backend *plain, gan_backend *nccl)
{
    enum { STEPS = 6 };
    gan_data_source *data_plain = NULL, *data_nccl = NULL;
    gan_trainer *p = make_trainer(plain, text, true, &data_plain);
    gan_trainer *d = make_trainer(nccl, text, sync_bn, &data_nccl);
    for (int i = 0; i < STEPS && p && d; i++) {
        CHECK_OK(gan_trainer_step(p));
        CHECK_OK(gan_trainer_step(d));
    }
    if (p && d) {
        char what[128];
        CHECK_MSG(d->data_parallel && d->graph != NULL, "%s: the one-rank run did not take its graph path", name);
        snprintf(what, sizeof what, "%s%s G", name, sync_bn ? "" : " (sync_bn = false)");
        check_model(what, p->g, d->g);
        snprintf(what, sizeof what, "%s%s D", name, sync_bn ? "" : " (sync_bn = false)");
        check_model(what, p->d, d->d);
        gan_step_stats sp, sd;
        bool fp = false, fd = false;
        CHECK_OK(gan_trainer_read_stats(p, &sp, &fp));
        CHECK_OK(gan_trainer_read_stats(d, &sd, &fd));
        CHECK_MSG(!memcmp(&sp, &sd, sizeof sp), "%s: the logged losses differ", name);
    }
    gan_trainer_destroy(p);
    gan_trainer_destroy(d);
    if (data_plain)
        data_plain->close(data_plain);
    if (data_nccl)
        data_nccl->close(data_nccl);
}

int main(void)
{
    gan_backend *plain = NULL, *nccl = NULL;
    gan_status status = gan_cuda_backend_create(NULL, &plain);
    if (status == GAN_ERR_UNSUPPORTED) {
        printf("skipped: %s\n", gan_error_message());
        return TEST_SKIP_EXIT_CODE;
    }
    CHECK_OK(status);
    if (status != GAN_OK)
        return test_finish();
    gan_backend_options options = gan_backend_options_default();
    options.dist = &ONE_RANK;
    status = gan_cuda_backend_create(&options, &nccl);
    if (status == GAN_ERR_UNSUPPORTED) {
        printf("skipped: %s\n", gan_error_message());
        plain->destroy(plain);
        return TEST_SKIP_EXIT_CODE;
    }
    CHECK_OK(status);
    if (status == GAN_OK) {
        CHECK(nccl->allreduce_sum && nccl->allreduce_sum_f64 && !plain->allreduce_sum);
        compare("dcgan", DCGAN, true, plain, nccl);
        compare("dcgan", DCGAN, false, plain, nccl);
        compare("mlp", MLP, true, plain, nccl);
        nccl->destroy(nccl);
    }
    plain->destroy(plain);
    return test_finish();
}
