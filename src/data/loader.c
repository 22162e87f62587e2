/* The loader: the trainer's data source over a data set.
 *
 * A producer thread fills a ring of `prefetch` batch buffers in order while the trainer runs its
 * step; next_batch waits for the oldest filled buffer, copies it out and frees it. For folders the
 * producer splits each batch's images among itself and helper threads (a small team, one job per
 * batch). Which images a batch holds depends only on the position and on which images are bad, never
 * on thread timing: batch = the next B entries of the epoch's permutation that decode, in
 * permutation order.
 *
 * Threads and what they touch:
 *   consumer (the trainer): next_batch, get/set_position, close; consumer_* fields.
 *   producer: produce_pos, order, bad, candidates; the slot it fills (outside the ready range).
 *   helpers: one candidate at a time, claimed under team.mu, written to its own row and status.
 *   ring (head, ready) under mu; `stop` atomic, read everywhere. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "gan/data.h"
#include "gan/elementwise_math.h"

enum { MESSAGE_BYTES = 1024, MAX_AUTO_THREADS = 8 };

/* Philox stream of epoch e's permutation: "SHUFF" + e. */
static const uint64_t SHUFFLE_STREAM = 0x5348554646ull;

gan_status gan_data_permutation(uint64_t seed, int64_t epoch, int64_t n, int64_t *order)
{
    if (n < 0 || epoch < 0)
        return gan_error(GAN_ERR_ARG, "permutation of %lld items for epoch %lld", (long long)n, (long long)epoch);
    for (int64_t i = 0; i < n; i++)
        order[i] = i;
    for (int64_t i = n - 1; i > 0; i--) {
        gan_philox4 r = gan_philox_block(seed, SHUFFLE_STREAM + (uint64_t)epoch, (uint64_t)i);
        uint64_t draw = ((uint64_t)r.v[0] << 32) | r.v[1];
        int64_t j = (int64_t)(draw % (uint64_t)(i + 1));
        int64_t tmp = order[i];
        order[i] = order[j];
        order[j] = tmp;
    }
    return GAN_OK;
}

void gan_loader_options_default(gan_loader_options *o)
{
    memset(o, 0, sizeof *o);
    o->batch_size = 128;
    o->prefetch = 2;
    o->threads = 0;
    o->max_bad_fraction = 0.01;
    o->part = 0;
    o->parts = 1;
}

/* Warnings of a part other than 0 of a data-parallel run: part 0 gives the same ones. */
static void quiet_warning(void *ctx, const char *message)
{
    (void)ctx;
    (void)message;
}

typedef struct slot {
    uint8_t *pixels;            /* [B, S, S, C] */
    gan_data_position after;    /* the position once this batch is handed out */
    gan_status status;          /* not GAN_OK: the producer failed here (message below) and stopped */
    char message[MESSAGE_BYTES];
} slot;

typedef struct loader loader;

/* The decoding team: the producer and `helpers` threads work through one job (a batch's candidates). */
typedef struct team {
    pthread_mutex_t mu;
    pthread_cond_t work_cv, done_cv;
    int helpers;
    pthread_t *threads;             /* [helpers] */
    int worker_count;
    gan_dataset_worker **workers;   /* [worker_count]: 0 is the producer's, i + 1 helper i's */
    bool quit;
    int job_items, next_item, done_items;
    loader *owner;
} team;

typedef struct helper_arg {
    team *team;
    int worker;
} helper_arg;

struct loader {
    gan_dataset *ds;
    gan_loader_options options;
    int64_t n;
    size_t item_bytes;              /* S * S * C */
    int part_first, part_rows;      /* the rows of each batch handed out (a data-parallel rank's) */
    bool decode_part_only;          /* the data set's images always decode: skip the other rows */
    gan_data_source *source;

    pthread_mutex_t mu;
    pthread_cond_t filled_cv, free_cv;
    slot *slots;                    /* [depth] */
    int depth, head, ready;
    atomic_bool stop;
    bool producer_running;
    pthread_t producer;

    /* the consumer's */
    gan_data_position consumer_pos;
    gan_status failed;              /* sticky: the producer's failure once handed out */
    char failed_message[MESSAGE_BYTES];
    int64_t batches;
    double wait_ms;

    /* the producer's */
    gan_data_position produce_pos;
    int64_t *order;                 /* [n] the permutation of order_epoch */
    int64_t order_epoch;
    uint64_t order_seed;
    uint8_t *bad;                   /* [n] 1: known not to decode */
    atomic_llong bad_count;
    slot *target;                   /* the batch being filled */
    int target_row;                 /* row of the first candidate in it */
    int64_t *candidates;            /* [B] data set indices */
    gan_status *candidate_status;   /* [B] */
    char (*candidate_message)[MESSAGE_BYTES];

    team team;
    helper_arg *helper_args;
};

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
}

static void warn(const loader *L, const char *message)
{
    if (L->options.warn)
        L->options.warn(L->options.warn_ctx, message);
    else
        fprintf(stderr, "gan: warning: %s\n", message);
}

/* ---- the team ---------------------------------------------------------------------------------- */

/* Candidate c of the current job: decode into its row of the batch. */
static void run_candidate(loader *L, int worker, int c)
{
    if (atomic_load(&L->stop)) {
        L->candidate_status[c] = GAN_ERR_ARG; /* abandoned: the producer discards the batch */
        return;
    }
    int row_index = L->target_row + c; /* every candidate decodes: row filled + c */
    if (L->decode_part_only && (row_index < L->part_first || row_index >= L->part_first + L->part_rows)) {
        L->candidate_status[c] = GAN_OK; /* another rank's row */
        return;
    }
    uint8_t *row = L->target->pixels + (size_t)row_index * L->item_bytes;
    gan_status status = gan_dataset_get(L->ds, L->team.workers[worker], L->candidates[c], row);
    L->candidate_status[c] = status;
    if (status != GAN_OK)
        snprintf(L->candidate_message[c], MESSAGE_BYTES, "%s", gan_error_message());
}

/* Claims and runs candidates until the job has none left. Called with team.mu held; returns with it held. */
static void work_on_job(team *t, int worker)
{
    while (t->next_item < t->job_items) {
        int c = t->next_item++;
        pthread_mutex_unlock(&t->mu);
        run_candidate(t->owner, worker, c);
        pthread_mutex_lock(&t->mu);
        if (++t->done_items == t->job_items)
            pthread_cond_broadcast(&t->done_cv);
    }
}

static void *helper_main(void *arg)
{
    helper_arg *h = arg;
    team *t = h->team;
    pthread_mutex_lock(&t->mu);
    for (;;) {
        while (!t->quit && t->next_item >= t->job_items)
            pthread_cond_wait(&t->work_cv, &t->mu);
        if (t->quit)
            break;
        work_on_job(t, h->worker);
    }
    pthread_mutex_unlock(&t->mu);
    return NULL;
}

/* The producer runs `count` candidates with the helpers and waits for all of them. */
static void team_run(team *t, int count)
{
    pthread_mutex_lock(&t->mu);
    t->job_items = count;
    t->next_item = 0;
    t->done_items = 0;
    if (t->helpers > 0)
        pthread_cond_broadcast(&t->work_cv);
    work_on_job(t, 0);
    while (t->done_items < t->job_items)
        pthread_cond_wait(&t->done_cv, &t->mu);
    t->job_items = t->next_item = t->done_items = 0;
    pthread_mutex_unlock(&t->mu);
}

/* ---- the producer ------------------------------------------------------------------------------ */

typedef enum fill_result { FILL_OK, FILL_FAILED, FILL_STOPPED } fill_result;

static fill_result fail(slot *s, gan_status status, const char *message)
{
    s->status = status;
    snprintf(s->message, sizeof s->message, "%s", message);
    return FILL_FAILED;
}

/* Fills s with the next batch from produce_pos. */
static fill_result fill_batch(loader *L, slot *s)
{
    const int B = L->options.batch_size;
    gan_data_position *pos = &L->produce_pos;
    char message[2 * MESSAGE_BYTES];
    for (;;) {
        if (L->order_epoch != pos->epoch || L->order_seed != pos->seed) {
            gan_data_permutation(pos->seed, pos->epoch, L->n, L->order);
            L->order_epoch = pos->epoch;
            L->order_seed = pos->seed;
        }
        bool from_start = pos->index == 0, exhausted = false;
        int filled = 0;
        int64_t cursor = pos->index;
        while (filled < B) {
            if (atomic_load(&L->stop))
                return FILL_STOPPED;
            int k = 0;
            while (k < B - filled && cursor < L->n) {
                int64_t i = L->order[cursor++];
                if (!L->bad[i])
                    L->candidates[k++] = i;
            }
            if (k < B - filled) {
                exhausted = true;
                break;
            }
            L->target = s;
            L->target_row = filled;
            team_run(&L->team, k);
            if (atomic_load(&L->stop))
                return FILL_STOPPED;
            int row = filled;
            for (int c = 0; c < k; c++) {
                gan_status status = L->candidate_status[c];
                if (status == GAN_OK) {
                    if (row != filled + c)
                        memcpy(s->pixels + (size_t)row * L->item_bytes,
                               s->pixels + (size_t)(filled + c) * L->item_bytes, L->item_bytes);
                    row++;
                } else if (status == GAN_ERR_FORMAT || status == GAN_ERR_IO) {
                    /* an image that cannot be read or decoded: skipped, counted, said once */
                    L->bad[L->candidates[c]] = 1;
                    long long bad = atomic_fetch_add(&L->bad_count, 1) + 1;
                    snprintf(message, sizeof message, "skipping %s", L->candidate_message[c]);
                    warn(L, message);
                    if ((double)bad > L->options.max_bad_fraction * (double)L->n) {
                        snprintf(message, sizeof message,
                                 "%lld of %lld images could not be decoded, more than the allowed "
                                 "fraction %g (data.max_bad_fraction); the last: %s",
                                 bad, (long long)L->n, L->options.max_bad_fraction, L->candidate_message[c]);
                        return fail(s, GAN_ERR_FORMAT, message);
                    }
                } else {
                    return fail(s, status, L->candidate_message[c]);
                }
            }
            filled = row;
        }
        if (!exhausted) {
            pos->index = cursor;
            s->after = *pos;
            s->status = GAN_OK;
            return FILL_OK;
        }
        if (from_start) {
            /* a whole epoch could not fill one batch: no later one can (bad images stay bad) */
            snprintf(message, sizeof message, "only %lld of %lld images decode: fewer than one batch of %d",
                     (long long)filled, (long long)L->n, B);
            return fail(s, GAN_ERR_SHAPE, message);
        }
        pos->epoch++; /* drop_last: the rest of this epoch is shorter than a batch */
        pos->index = 0;
    }
}

static void *producer_main(void *arg)
{
    loader *L = arg;
    for (;;) {
        pthread_mutex_lock(&L->mu);
        while (!atomic_load(&L->stop) && L->ready == L->depth)
            pthread_cond_wait(&L->free_cv, &L->mu);
        int index = (L->head + L->ready) % L->depth;
        pthread_mutex_unlock(&L->mu);
        if (atomic_load(&L->stop))
            break;
        slot *s = &L->slots[index];
        fill_result result = fill_batch(L, s);
        if (result == FILL_STOPPED)
            break;
        pthread_mutex_lock(&L->mu);
        L->ready++;
        pthread_cond_signal(&L->filled_cv);
        pthread_mutex_unlock(&L->mu);
        if (result == FILL_FAILED)
            break;
    }
    return NULL;
}

/* ---- the consumer's side ----------------------------------------------------------------------- */

static gan_status start_producer(loader *L)
{
    L->produce_pos = L->consumer_pos;
    L->head = L->ready = 0;
    atomic_store(&L->stop, false);
    int err = pthread_create(&L->producer, NULL, producer_main, L);
    if (err != 0)
        return gan_error(GAN_ERR_NOMEM, "%s: cannot start the loader thread: %s", gan_dataset_name(L->ds),
                         strerror(err));
    L->producer_running = true;
    return GAN_OK;
}

/* Stops the producer wherever it is (mid-batch, mid-epoch) and joins it; prefetched batches are dropped. */
static void stop_producer(loader *L)
{
    if (!L->producer_running)
        return;
    pthread_mutex_lock(&L->mu);
    atomic_store(&L->stop, true);
    pthread_cond_broadcast(&L->free_cv);
    pthread_mutex_unlock(&L->mu);
    pthread_join(L->producer, NULL);
    L->producer_running = false;
    L->head = L->ready = 0;
    atomic_store(&L->stop, false);
}

static gan_status loader_next_batch(gan_data_source *src, void *host_batch)
{
    loader *L = src->impl;
    if (L->failed != GAN_OK)
        return gan_error(L->failed, "%s", L->failed_message);
    if (!L->producer_running)
        GAN_TRY(start_producer(L));
    double t0 = now_ms();
    pthread_mutex_lock(&L->mu);
    while (L->ready == 0)
        pthread_cond_wait(&L->filled_cv, &L->mu);
    slot *s = &L->slots[L->head];
    pthread_mutex_unlock(&L->mu);
    L->wait_ms += now_ms() - t0;
    if (s->status != GAN_OK) {
        L->failed = s->status;
        snprintf(L->failed_message, sizeof L->failed_message, "%s", s->message);
        stop_producer(L);
        return gan_error(L->failed, "%s", L->failed_message);
    }
    memcpy(host_batch, s->pixels + (size_t)L->part_first * L->item_bytes, (size_t)L->part_rows * L->item_bytes);
    L->consumer_pos = s->after;
    L->batches++;
    pthread_mutex_lock(&L->mu);
    L->head = (L->head + 1) % L->depth;
    L->ready--;
    pthread_cond_signal(&L->free_cv);
    pthread_mutex_unlock(&L->mu);
    return GAN_OK;
}

static gan_status loader_get_position(gan_data_source *src, gan_data_position *pos)
{
    *pos = ((loader *)src->impl)->consumer_pos;
    return GAN_OK;
}

static gan_status loader_set_position(gan_data_source *src, const gan_data_position *pos)
{
    loader *L = src->impl;
    if (pos->epoch < 0 || pos->index < 0 || pos->index > L->n)
        return gan_error(GAN_ERR_FORMAT, "data position (epoch %lld, index %lld) does not fit a data set of "
                                         "%lld images",
                         (long long)pos->epoch, (long long)pos->index, (long long)L->n);
    stop_producer(L);
    L->consumer_pos = *pos;
    L->failed = GAN_OK;
    return GAN_OK;
}

gan_status gan_loader_restore(gan_data_source *src, const gan_data_position *position)
{
    return src->set_position(src, position);
}

static void loader_close(gan_data_source *src)
{
    if (!src)
        return;
    loader *L = src->impl;
    stop_producer(L);
    team *t = &L->team;
    pthread_mutex_lock(&t->mu);
    t->quit = true;
    pthread_cond_broadcast(&t->work_cv);
    pthread_mutex_unlock(&t->mu);
    for (int i = 0; i < t->helpers; i++)
        pthread_join(t->threads[i], NULL);
    if (t->workers)
        for (int i = 0; i < t->worker_count; i++)
            gan_dataset_worker_destroy(t->workers[i]);
    free(t->workers);
    free(t->threads);
    pthread_mutex_destroy(&t->mu);
    pthread_cond_destroy(&t->work_cv);
    pthread_cond_destroy(&t->done_cv);
    for (int i = 0; i < L->depth; i++)
        free(L->slots[i].pixels);
    free(L->slots);
    free(L->order);
    free(L->bad);
    free(L->candidates);
    free(L->candidate_status);
    free(L->candidate_message);
    free(L->helper_args);
    pthread_mutex_destroy(&L->mu);
    pthread_cond_destroy(&L->filled_cv);
    pthread_cond_destroy(&L->free_cv);
    gan_dataset_close(L->ds);
    free(L);
    free(src);
}

gan_status gan_loader_get_stats(gan_data_source *src, gan_loader_stats *stats)
{
    memset(stats, 0, sizeof *stats);
    if (!src || src->next_batch != loader_next_batch)
        return gan_error(GAN_ERR_ARG, "not a loader");
    loader *L = src->impl;
    stats->bad = atomic_load(&L->bad_count);
    stats->batches = L->batches;
    stats->wait_ms = L->wait_ms;
    return GAN_OK;
}

/* The batch slots, the epoch's order, the candidates of a batch, and the team: its arrays and one
 * dataset worker per thread. loader_close releases what was allocated. */
static gan_status allocate_loader(loader *L, const char *ds_name, int64_t n, int B, int threads)
{
    team *t = &L->team;
    L->slots = calloc((size_t)L->depth, sizeof *L->slots);
    L->order = malloc((size_t)n * sizeof *L->order);
    L->bad = calloc((size_t)n, 1);
    L->candidates = malloc((size_t)B * sizeof *L->candidates);
    L->candidate_status = malloc((size_t)B * sizeof *L->candidate_status);
    L->candidate_message = malloc((size_t)B * sizeof *L->candidate_message);
    t->workers = calloc((size_t)threads, sizeof *t->workers);
    t->worker_count = t->workers ? threads : 0;
    t->threads = calloc((size_t)threads, sizeof *t->threads);
    L->helper_args = calloc((size_t)threads, sizeof *L->helper_args);
    if (!L->slots || !L->order || !L->bad || !L->candidates || !L->candidate_status ||
        !L->candidate_message || !t->workers || !t->threads || !L->helper_args)
        return gan_error(GAN_ERR_NOMEM, "%s: out of memory for the loader", ds_name);
    for (int i = 0; i < L->depth; i++) {
        L->slots[i].pixels = malloc((size_t)B * L->item_bytes);
        if (!L->slots[i].pixels)
            return gan_error(GAN_ERR_NOMEM, "%s: out of memory for %d batches of %d", ds_name, L->depth, B);
    }
    for (int i = 0; i < threads; i++)
        GAN_TRY(gan_dataset_worker_create(L->ds, &t->workers[i]));
    return GAN_OK;
}

gan_status gan_loader_open(gan_dataset *ds, const gan_loader_options *options, gan_data_source **out)
{
    *out = NULL;
    int64_t n = gan_dataset_count(ds);
    const char *ds_name = gan_dataset_name(ds);
    int B = options->batch_size;
    int parts = options->parts > 0 ? options->parts : 1;
    if (B < 1 || options->part < 0 || options->part >= parts || B % parts) {
        gan_dataset_close(ds);
        return gan_error(GAN_ERR_ARG, "%s: part %d of %d of a batch of %d", ds_name, options->part, parts, B);
    }
    if (n < B) {
        gan_status status = gan_error(GAN_ERR_CONFIG, "%s: %lld images, fewer than one batch of %d "
                                      "(train.batch_size)",
                                      ds_name, (long long)n, B);
        gan_dataset_close(ds);
        return status;
    }
    gan_data_source *src = calloc(1, sizeof *src);
    loader *L = calloc(1, sizeof *L);
    if (!src || !L) {
        free(src);
        free(L);
        gan_dataset_close(ds);
        return gan_error(GAN_ERR_NOMEM, "out of memory");
    }
    L->ds = ds;
    L->options = *options;
    L->n = n;
    L->part_rows = B / parts;
    L->part_first = options->part * L->part_rows;
    L->decode_part_only = parts > 1 && gan_dataset_get_kind(ds) != GAN_DATASET_FOLDER;
    if (options->part != 0 && !options->warn)
        L->options.warn = quiet_warning;
    L->source = src;
    int size = gan_dataset_size(ds), channels = gan_dataset_channels(ds);
    L->item_bytes = (size_t)size * size * channels;
    L->depth = options->prefetch > 0 ? options->prefetch : 2;
    int threads = options->threads;
    if (threads <= 0) {
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        threads = gan_dataset_get_kind(ds) == GAN_DATASET_FOLDER
                      ? (int)(cores < 1 ? 1 : cores > MAX_AUTO_THREADS ? MAX_AUTO_THREADS : cores)
                      : 1;
    }
    L->order_epoch = -1;
    L->consumer_pos = (gan_data_position){options->seed, 0, 0};
    atomic_init(&L->stop, false);
    atomic_init(&L->bad_count, 0);
    pthread_mutex_init(&L->mu, NULL);
    pthread_cond_init(&L->filled_cv, NULL);
    pthread_cond_init(&L->free_cv, NULL);
    team *t = &L->team;
    pthread_mutex_init(&t->mu, NULL);
    pthread_cond_init(&t->work_cv, NULL);
    pthread_cond_init(&t->done_cv, NULL);
    t->owner = L;
    src->impl = L;
    src->height = src->width = size;
    src->channels = channels;
    src->is_float = false;
    src->samples = n;
    src->batches_per_epoch = n / B;
    src->next_batch = loader_next_batch;
    src->get_position = loader_get_position;
    src->set_position = loader_set_position;
    src->close = loader_close;

    gan_status status = allocate_loader(L, ds_name, n, B, threads);
    if (status != GAN_OK) {
        t->helpers = 0;
        loader_close(src);
        return status;
    }
    for (int i = 0; i < threads - 1; i++) {
        L->helper_args[i] = (helper_arg){t, i + 1};
        if (pthread_create(&t->threads[i], NULL, helper_main, &L->helper_args[i]) != 0)
            break; /* fewer helpers: slower, not wrong */
        t->helpers++;
    }
    *out = src;
    return GAN_OK;
}

gan_status gan_memory_source_open(gan_image_set *images, int batch, uint64_t seed, gan_data_source **out)
{
    *out = NULL;
    if (images->height != images->width) {
        gan_image_set_free(images);
        return gan_error(GAN_ERR_ARG, "in-memory images of %dx%d: a source needs square images",
                         images->width, images->height);
    }
    gan_dataset *ds;
    GAN_TRY(gan_dataset_open_images(images, images->height, images->channels, "images in memory", &ds));
    gan_loader_options options;
    gan_loader_options_default(&options);
    options.batch_size = batch;
    options.seed = seed;
    return gan_loader_open(ds, &options, out);
}
