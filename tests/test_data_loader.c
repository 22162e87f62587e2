/* The loader: epochs are permutations of (seed, epoch) with drop_last batches; positions are saved
 * and restored exactly; stopping mid-epoch joins; bad images are skipped once each, counted, and
 * the run fails past the allowed fraction; results do not depend on the number of threads; caches
 * are memory-mapped and checked against the config's shape. Images carry their index in their pixel
 * values, so every batch says which images it holds. */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "gan/clock.h"
#include "gan/data.h"
#include "gan/image.h"
#include "test_util.h"

static const char *dir;

static void check_permutation(void)
{
    enum { N = 1000 };
    int64_t *a = malloc(N * sizeof *a), *b = malloc(N * sizeof *b), *c = malloc(N * sizeof *c);
    char *seen = calloc(N, 1);
    CHECK_OK(gan_data_permutation(7, 3, N, a));
    bool is_permutation = true;
    for (int i = 0; i < N; i++) {
        is_permutation &= a[i] >= 0 && a[i] < N && !seen[a[i]];
        if (a[i] >= 0 && a[i] < N)
            seen[a[i]] = 1;
    }
    CHECK(is_permutation);
    CHECK_OK(gan_data_permutation(7, 3, N, b));
    CHECK(!memcmp(a, b, N * sizeof *a)); /* repeats with the seed */
    CHECK_OK(gan_data_permutation(7, 4, N, b));
    CHECK_OK(gan_data_permutation(8, 3, N, c));
    int same_epoch = 0, same_seed = 0, fixed = 0;
    for (int i = 0; i < N; i++) {
        same_epoch += a[i] == b[i];
        same_seed += a[i] == c[i];
        fixed += a[i] == i;
    }
    CHECK(same_epoch < 20 && same_seed < 20 && fixed < 20); /* about 1 expected for each */
    CHECK_OK(gan_data_permutation(7, 0, 1, a));
    CHECK(a[0] == 0);
    CHECK_FAILS_WITH(gan_data_permutation(7, -1, 5, a), GAN_ERR_ARG, "epoch -1");
    free(a);
    free(b);
    free(c);
    free(seen);
}

/* n images of 2x2x1 whose pixels are all their index. */
static gan_data_source *memory_loader(int n, int batch, uint64_t seed)
{
    gan_image_set set = {malloc((size_t)n * 4), n, 2, 2, 1};
    for (int i = 0; i < n; i++)
        memset(set.pixels + i * 4, i, 4);
    gan_dataset *ds = NULL;
    gan_data_source *src = NULL;
    CHECK_OK(gan_dataset_open_images(&set, 2, 1, "indices", &ds));
    gan_loader_options o;
    gan_loader_options_default(&o);
    o.batch_size = batch;
    o.seed = seed;
    if (ds)
        CHECK_OK(gan_loader_open(ds, &o, &src));
    return src;
}

static void check_epochs_and_positions(void)
{
    enum { N = 10, B = 3 };
    const uint64_t seed = 42;
    gan_data_source *src = memory_loader(N, B, seed);
    if (!src)
        return;
    CHECK(src->batches_per_epoch == 3 && src->samples == N && src->height == 2 && src->channels == 1 &&
          !src->is_float);
    int64_t order0[N], order1[N];
    gan_data_permutation(seed, 0, N, order0);
    gan_data_permutation(seed, 1, N, order1);
    uint8_t batch[B * 4];
    gan_data_position pos;
    int64_t expected_after[5][2] = {{0, 3}, {0, 6}, {0, 9}, {1, 3}, {1, 6}};
    uint8_t history[5][B];
    for (int k = 0; k < 5; k++) {
        CHECK_OK(src->next_batch(src, batch));
        CHECK_OK(src->get_position(src, &pos));
        CHECK_MSG(pos.seed == seed && pos.epoch == expected_after[k][0] && pos.index == expected_after[k][1],
                  "after batch %d: epoch %lld index %lld", k, (long long)pos.epoch, (long long)pos.index);
        bool ok = true;
        for (int j = 0; j < B; j++) {
            /* batches 0..2 are epoch 0's order; order0[9] is dropped (drop_last); then epoch 1 */
            int64_t want = k < 3 ? order0[k * B + j] : order1[(k - 3) * B + j];
            ok &= batch[j * 4] == want && batch[j * 4 + 3] == want;
            history[k][j] = batch[j * 4];
        }
        CHECK_MSG(ok, "batch %d holds the wrong images", k);
    }
    /* restore the position after batch 1 into a fresh loader: batches 2.. repeat exactly */
    gan_data_source *again = memory_loader(N, B, 999); /* another seed: the position carries it */
    gan_data_position saved = {seed, 0, 6};
    if (again) {
        CHECK_OK(gan_loader_restore(again, &saved));
        for (int k = 2; k < 5; k++) {
            CHECK_OK(again->next_batch(again, batch));
            bool same = true;
            for (int j = 0; j < B; j++)
                same &= batch[j * 4] == history[k][j];
            CHECK_MSG(same, "restored loader differs at batch %d", k);
        }
        /* restoring on a running loader (the producer is mid-way) also works */
        CHECK_OK(again->set_position(again, &saved));
        CHECK_OK(again->next_batch(again, batch));
        CHECK(batch[0] == history[2][0] && batch[4] == history[2][1]);
        gan_data_position bad = {seed, 0, N + 1};
        CHECK_FAILS_WITH(again->set_position(again, &bad), GAN_ERR_FORMAT, "does not fit");
        bad.index = 0;
        bad.epoch = -2;
        CHECK_FAILS_WITH(again->set_position(again, &bad), GAN_ERR_FORMAT, "epoch -2");
        gan_loader_stats stats;
        CHECK_OK(gan_loader_get_stats(again, &stats));
        CHECK(stats.batches == 4 && stats.bad == 0);
        again->close(again);
    }
    src->close(src);

    /* fewer images than one batch */
    gan_image_set small = {malloc(4 * 4), 4, 2, 2, 1};
    memset(small.pixels, 0, 16);
    gan_data_source *none = NULL;
    CHECK_FAILS_WITH(gan_memory_source_open(&small, 5, 1, &none), GAN_ERR_CONFIG, "fewer than one batch of 5");
}

/* Stopping: close right after open, mid-epoch with batches prefetched, after a restore. */
static void check_stop_mid_epoch(void)
{
    for (int variant = 0; variant < 3; variant++) {
        gan_data_source *src = memory_loader(200, 8, 5);
        if (!src)
            return;
        uint8_t batch[8 * 4];
        if (variant >= 1)
            CHECK_OK(src->next_batch(src, batch));
        if (variant == 2) {
            gan_data_position p = {5, 3, 40};
            CHECK_OK(src->set_position(src, &p));
            CHECK_OK(src->next_batch(src, batch));
        }
        double t0 = gan_now_s();
        src->close(src);
        CHECK_MSG(gan_now_s() - t0 < 1.0, "closing took %.2f s", gan_now_s() - t0);
    }
}

/* A folder of n flat gray PNGs (value 10 + 5 i, named img_NN.png) and some broken files. */
static void make_folder(const char *path, int n, const char *const *broken, int broken_count)
{
    mkdir(path, 0755);
    char file[4400];
    for (int i = 0; i < n; i++) {
        uint8_t px[6 * 5];
        memset(px, 10 + 5 * i, sizeof px);
        uint8_t *png;
        size_t size;
        CHECK_OK(gan_png_encode(px, 6, 5, 1, &png, &size));
        snprintf(file, sizeof file, "%s/img_%02d.png", path, i);
        FILE *f = fopen(file, "wb");
        if (f) {
            fwrite(png, 1, size, f);
            fclose(f);
        }
        free(png);
    }
    for (int i = 0; i < broken_count; i++) {
        snprintf(file, sizeof file, "%s/%s", path, broken[i]);
        FILE *f = fopen(file, "wb");
        if (f) {
            fputs("\x89PNG\r\n\x1a\n but then nothing", f);
            fclose(f);
        }
    }
}

typedef struct warnings {
    int count;
    char all[8192];
} warnings;

static void collect(void *ctx, const char *message)
{
    warnings *w = ctx;
    w->count++;
    size_t len = strlen(w->all);
    snprintf(w->all + len, sizeof w->all - len, "%s\n", message);
}

static gan_data_source *folder_loader(const char *path, int batch, int threads, double max_bad, warnings *w)
{
    gan_dataset_options d = {.path = path, .size = 4, .channels = 1, .warn = collect, .warn_ctx = w};
    gan_dataset *ds = NULL;
    gan_data_source *src = NULL;
    CHECK_OK(gan_dataset_open(&d, &ds));
    gan_loader_options o;
    gan_loader_options_default(&o);
    o.batch_size = batch;
    o.seed = 3;
    o.threads = threads;
    o.max_bad_fraction = max_bad;
    o.warn = collect;
    o.warn_ctx = w;
    if (ds)
        CHECK_OK(gan_loader_open(ds, &o, &src));
    return src;
}

static void check_bad_images(void)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/with_bad", dir);
    const char *broken[] = {"broken_a.png", "broken_b.jpg"};
    make_folder(path, 20, broken, 2);
    enum { B = 4, EPOCHS = 3, BATCHES = EPOCHS * 5 };
    uint8_t runs[2][BATCHES][B];
    for (int run = 0; run < 2; run++) {
        warnings w = {0};
        gan_data_source *src = folder_loader(path, B, run == 0 ? 1 : 3, 0.1, &w);
        if (!src)
            return;
        CHECK(src->batches_per_epoch == 22 / B);
        uint8_t batch[B * 16];
        bool ok = true;
        for (int e = 0; e < EPOCHS; e++) {
            bool seen[20] = {false};
            for (int k = 0; k < 5; k++) { /* 20 good images: 5 full batches an epoch */
                CHECK_OK(src->next_batch(src, batch));
                for (int j = 0; j < B; j++) {
                    int value = batch[j * 16], index = (value - 10) / 5;
                    ok &= value >= 10 && (value - 10) % 5 == 0 && index < 20 && !seen[index];
                    if (index >= 0 && index < 20)
                        seen[index] = true;
                    runs[run][e * 5 + k][j] = (uint8_t)value;
                }
            }
            gan_data_position pos;
            src->get_position(src, &pos);
            CHECK_MSG(pos.epoch == e && pos.index <= 22, "epoch %d ended at (%lld, %lld)", e, (long long)pos.epoch,
                      (long long)pos.index);
        }
        CHECK_MSG(ok, "a batch held a broken image or a repeat within an epoch");
        gan_loader_stats stats;
        CHECK_OK(gan_loader_get_stats(src, &stats));
        CHECK(stats.bad == 2 && stats.batches == BATCHES);
        CHECK_MSG(w.count == 2 && strstr(w.all, "broken_a.png") && strstr(w.all, "broken_b.jpg"),
                  "warnings (%d): %s", w.count, w.all);
        src->close(src);
    }
    CHECK_MSG(!memcmp(runs[0], runs[1], sizeof runs[0]), "1 and 3 threads gave different batches");

    /* too many: 3 of 10 bad with 10% allowed */
    snprintf(path, sizeof path, "%s/mostly_bad", dir);
    const char *many[] = {"x1.png", "x2.png", "x3.png"};
    make_folder(path, 7, many, 3);
    warnings w = {0};
    gan_data_source *src = folder_loader(path, 2, 2, 0.1, &w);
    if (src) {
        uint8_t batch[2 * 16];
        gan_status status = GAN_OK;
        for (int k = 0; k < 10 && status == GAN_OK; k++)
            status = src->next_batch(src, batch);
        CHECK_MSG(status == GAN_ERR_FORMAT && strstr(gan_error_message(), "2 of 10 images could not be decoded"),
                  "got %s: %s", gan_status_name(status), gan_error_message());
        CHECK_FAILS_WITH(src->next_batch(src, batch), GAN_ERR_FORMAT, "could not be decoded"); /* sticky */
        src->close(src);
    }
    /* so many that no batch can be made, with any fraction allowed */
    snprintf(path, sizeof path, "%s/no_batch", dir);
    make_folder(path, 2, many, 3);
    src = folder_loader(path, 3, 1, 1.0, &w);
    if (src) {
        uint8_t batch[3 * 16];
        CHECK_FAILS_WITH(src->next_batch(src, batch), GAN_ERR_SHAPE, "only 2 of 5 images decode");
        src->close(src);
    }
}

static void check_cache(void)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/cache.npy", dir);
    enum { N = 12, S = 4, C = 3, ITEM = S * S * C };
    uint8_t *pixels = malloc(N * ITEM);
    for (int i = 0; i < N * ITEM; i++)
        pixels[i] = (uint8_t)(i / ITEM * 20 + i % 7);
    int64_t shape[4] = {N, S, S, C};
    CHECK_OK(gan_npy_write_u8(path, pixels, 4, shape));

    gan_config cfg;
    gan_config_defaults(&cfg);
    snprintf(cfg.data_path, sizeof cfg.data_path, "%s", path);
    snprintf(cfg.data_format, sizeof cfg.data_format, "auto");
    cfg.image_size = S;
    cfg.channels = C;
    cfg.batch_size = 4;
    cfg.seed = 11;
    gan_data_source *src = NULL;
    CHECK_OK(gan_data_source_open_for_config(&cfg, &src));
    if (src) {
        CHECK(src->batches_per_epoch == 3 && src->height == S && src->channels == C);
        int64_t order[N];
        gan_data_permutation(11, 0, N, order);
        uint8_t batch[4 * ITEM];
        bool same = true;
        for (int k = 0; k < 3; k++) {
            CHECK_OK(src->next_batch(src, batch));
            for (int j = 0; j < 4; j++)
                same &= !memcmp(batch + j * ITEM, pixels + order[k * 4 + j] * ITEM, ITEM);
        }
        CHECK(same);
        src->close(src);
    }
    /* shape and dtype that do not match the config */
    cfg.image_size = 8;
    CHECK_FAILS_WITH(gan_data_source_open_for_config(&cfg, &src), GAN_ERR_SHAPE,
                     "holds uint8 [12, 4, 4, 3] but the config wants uint8 [N, 8, 8, 3]");
    cfg.image_size = S;
    cfg.channels = 1;
    CHECK_FAILS_WITH(gan_data_source_open_for_config(&cfg, &src), GAN_ERR_SHAPE, "--size 4 --channels 1");
    cfg.channels = C;
    float *floats = calloc(N * ITEM, sizeof(float));
    CHECK_OK(gan_npy_write_f32(path, floats, 4, shape));
    CHECK_FAILS_WITH(gan_data_source_open_for_config(&cfg, &src), GAN_ERR_SHAPE, "holds float32 [12, 4, 4, 3]");
    int64_t flat[3] = {N, S, S * C};
    CHECK_OK(gan_npy_write_u8(path, pixels, 3, flat));
    CHECK_FAILS_WITH(gan_data_source_open_for_config(&cfg, &src), GAN_ERR_SHAPE, "[12, 4, 12]");
    cfg.batch_size = 64;
    CHECK_OK(gan_npy_write_u8(path, pixels, 4, shape));
    CHECK_FAILS_WITH(gan_data_source_open_for_config(&cfg, &src), GAN_ERR_CONFIG, "fewer than one batch");
    snprintf(cfg.data_path, sizeof cfg.data_path, "%s/none.npy", dir);
    CHECK_FAILS_WITH(gan_data_source_open_for_config(&cfg, &src), GAN_ERR_IO, "none.npy");
    free(floats);
    free(pixels);
}

int main(void)
{
    dir = test_temp_dir("test_data_loader");
    check_permutation();
    check_epochs_and_positions();
    check_stop_mid_epoch();
    check_bad_images();
    check_cache();
    return test_finish();
}
