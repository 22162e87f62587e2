/* `gan prepare`: the data set decoded and transformed once into a uint8 .npy [N, S, S, C].
 *
 * Every thread (OpenMP, one per core) takes chunks of CHUNK images, decodes and transforms them into
 * its own buffer and writes the chunk with one pwrite at its place in the output; images that cannot
 * be decoded leave a hole that is squeezed out at the end (rows moved down, header rewritten). The
 * output is written under a temporary name (OUT.tmp.<pid>.<n>) and renamed when complete; the
 * temporary files that killed runs to the same output left behind are removed first. */
#include <dirent.h>
#include <errno.h>
#include <omp.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gan/clock.h"
#include "gan/data.h"
#include "gan/file_atomic.h"

enum { CHUNK = 32, MESSAGE_BYTES = 2048 };

static void warn(const gan_prepare_options *o, const char *message)
{
    if (o->data.warn)
        o->data.warn(o->data.warn_ctx, message);
    else
        fprintf(stderr, "gan: warning: %s\n", message);
}

/* The process id in `name` when it is `base`.tmp.<pid>.<n> (the npy writer's temporary names), else
 * 0. */
static long temporary_owner(const char *name, const char *base)
{
    size_t base_len = strlen(base);
    if (strncmp(name, base, base_len) || strncmp(name + base_len, ".tmp.", 5))
        return 0;
    const char *p = name + base_len + 5;
    long pid = 0;
    for (; *p >= '0' && *p <= '9'; p++) {
        if (pid > 99999999) /* far past any pid_max (4194304) */
            return 0;
        pid = pid * 10 + (*p - '0');
    }
    if (*p++ != '.' || *p < '0' || *p > '9')
        return 0;
    while (*p >= '0' && *p <= '9')
        p++;
    return *p ? 0 : pid;
}

/* Removes OUT.tmp.<pid>.<n> files whose process no longer runs (kill(pid, 0) says ESRCH): what a
 * gan prepare killed with SIGKILL, or crashed, left behind. A live process's file (EPERM: another
 * user's, alive too) and anything not a regular file are left alone. */
static void remove_stale_temporaries(const gan_prepare_options *o)
{
    gan_output_kind kind;
    char target[4096];
    if (gan_output_check(o->output, &kind, target, sizeof target) != GAN_OK || kind != GAN_OUTPUT_FILE) {
        gan_error_clear(); /* the writer reports it */
        return;
    }
    const char *slash = strrchr(target, '/');
    const char *base = slash ? slash + 1 : target;
    char dir[4096];
    if (!slash)
        snprintf(dir, sizeof dir, ".");
    else if (slash == target)
        snprintf(dir, sizeof dir, "/");
    else
        snprintf(dir, sizeof dir, "%.*s", (int)(slash - target), target);
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d))) {
        long pid = temporary_owner(e->d_name, base);
        if (pid <= 0 || pid == (long)getpid() || kill((pid_t)pid, 0) == 0 || errno != ESRCH)
            continue;
        char path[8300];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        struct stat st;
        if (lstat(path, &st) != 0 || !S_ISREG(st.st_mode))
            continue;
        char message[8500];
        if (unlink(path) == 0)
            snprintf(message, sizeof message, "removed %s, left by gan prepare process %ld, which no longer "
                                              "runs",
                     path, pid);
        else
            snprintf(message, sizeof message, "cannot remove %s, left by process %ld: %s", path, pid,
                     strerror(errno));
        warn(o, message);
    }
    closedir(d);
}

/* One gan prepare run: the data set, the output, and what the decoding threads share. */
typedef struct prepare_job {
    const gan_prepare_options *o;
    gan_dataset *ds;
    gan_npy_writer writer; /* uint8 [n, S, S, C] */
    bool *keep;            /* [n]: image i decoded, its row stays */
    int64_t n;             /* images in the data set */
    size_t item_bytes;     /* one image: S * S * C */
    atomic_llong done;     /* images written */
    atomic_llong bad;      /* images that could not be decoded */
    atomic_bool stop;      /* set with a fatal error: the threads take no more work */
    gan_status fatal;      /* the first fatal error, and its message */
    char fatal_message[MESSAGE_BYTES];
    double last_progress;  /* when thread 0 last called o->progress */
} prepare_job;

static gan_status check_options(const gan_prepare_options *o)
{
    if (!o->output || !o->output[0])
        return gan_error(GAN_ERR_ARG, "no output file (-o FILE.npy)");
    if (o->threads < 0 || o->threads > GAN_PREPARE_MAX_THREADS)
        return gan_error(GAN_ERR_ARG, "%d threads; 1 to %d (0: one per core)", o->threads,
                         GAN_PREPARE_MAX_THREADS);
    return GAN_OK;
}

/* The data set opened, the output started (its temporary file, or the stream, for uint8 [N, S, S, C])
 * and a keep flag per image allocated. What was opened stays in `job` for the caller to release,
 * also on failure. */
static gan_status open_data_and_output(prepare_job *job)
{
    const gan_prepare_options *o = job->o;
    gan_dataset_options data = o->data;
    if (!data.cancel) /* Ctrl-C also stops the listing of a large (or looping) folder */
        data.cancel = o->cancel;
    GAN_TRY(gan_dataset_open(&data, &job->ds));
    job->n = gan_dataset_count(job->ds);
    int size = gan_dataset_size(job->ds), channels = gan_dataset_channels(job->ds);
    job->item_bytes = (size_t)size * size * channels;
    int64_t shape[4] = {job->n, size, size, channels};
    GAN_TRY(gan_npy_writer_open(&job->writer, o->output, GAN_NPY_U8, 4, shape));
    job->keep = malloc((size_t)job->n * sizeof *job->keep);
    if (!job->keep)
        return gan_error(GAN_ERR_NOMEM, "out of memory for %lld images", (long long)job->n);
    return GAN_OK;
}

/* Keeps the team's first fatal error with its message, and stops every thread. Not
 * gan_status_keep_first, which keeps a status alone: the message goes with it (gan_error_message is
 * the failing thread's own, or one made here), so both are kept in the same critical section. */
static void keep_fatal(prepare_job *job, gan_status status, const char *message)
{
#pragma omp critical(prepare_fatal)
    if (job->fatal == GAN_OK) {
        job->fatal = status;
        snprintf(job->fatal_message, sizeof job->fatal_message, "%s", message);
    }
    atomic_store(&job->stop, true);
}

/* Images [first, first + count) decoded and transformed into `buffer` ([CHUNK, S, S, C]) and written
 * with one pwrite at their place in the output. An image that cannot be decoded is warned about and
 * left as a hole (keep[i] false) until more than max_bad_fraction of them is fatal. */
static void decode_chunk(prepare_job *job, gan_dataset_worker *worker, uint8_t *buffer, int64_t first,
                         int64_t count)
{
    const gan_prepare_options *o = job->o;
    int64_t n = job->n;
    for (int64_t j = 0; j < count && !atomic_load(&job->stop); j++) {
        int64_t i = first + j;
        gan_status s = gan_dataset_get(job->ds, worker, i, buffer + (size_t)j * job->item_bytes);
        job->keep[i] = s == GAN_OK;
        if (s == GAN_OK)
            continue;
        char message[MESSAGE_BYTES + 64];
        if (s == GAN_ERR_FORMAT || s == GAN_ERR_IO) {
            long long bad_now = atomic_fetch_add(&job->bad, 1) + 1;
            snprintf(message, sizeof message, "skipping %s", gan_error_message());
            warn(o, message);
            if ((double)bad_now <= o->max_bad_fraction * (double)n)
                continue;
            snprintf(message, sizeof message,
                     "more than the allowed fraction %g of the %lld images could not be decoded "
                     "(%lld so far; --max-bad-fraction); the last: %s",
                     o->max_bad_fraction, (long long)n, bad_now, gan_error_message());
        } else {
            snprintf(message, sizeof message, "%s", gan_error_message());
        }
        keep_fatal(job, s == GAN_ERR_IO ? GAN_ERR_FORMAT : s, message);
    }
    if (atomic_load(&job->stop))
        return;
    gan_status w = gan_npy_writer_write_rows(&job->writer, first, count, buffer);
    if (w != GAN_OK)
        keep_fatal(job, w, gan_error_message());
    long long done_now = atomic_fetch_add(&job->done, count) + count;
    if (o->progress && omp_get_thread_num() == 0) {
        double now = gan_now_s();
        if (now - job->last_progress >= 0.1) {
            job->last_progress = now;
            o->progress(o->progress_ctx, done_now, n);
        }
    }
}

/* Every image decoded into the output by a team of o->threads threads (0: one per core), each with
 * its own dataset worker and chunk buffer, taking chunks of CHUNK images in turn. Returns the first
 * fatal error, or the interruption (o->cancel). */
static gan_status decode_all(prepare_job *job)
{
    const gan_prepare_options *o = job->o;
    int threads = o->threads > 0 ? o->threads : omp_get_max_threads();
    int64_t chunks = (job->n + CHUNK - 1) / CHUNK;
#pragma omp parallel num_threads(threads)
    {
        gan_dataset_worker *worker = NULL;
        uint8_t *buffer = malloc(CHUNK * job->item_bytes); /* [CHUNK, S, S, C] */
        gan_status local = buffer ? gan_dataset_worker_create(job->ds, &worker)
                                  : gan_error(GAN_ERR_NOMEM, "out of memory for a chunk of images");
        if (local != GAN_OK)
            keep_fatal(job, local, gan_error_message());
#pragma omp for schedule(dynamic, 1)
        for (int64_t chunk = 0; chunk < chunks; chunk++) {
            if (atomic_load(&job->stop) || (o->cancel && *o->cancel))
                continue;
            int64_t first = chunk * CHUNK;
            decode_chunk(job, worker, buffer, first, job->n - first < CHUNK ? job->n - first : CHUNK);
        }
        gan_dataset_worker_destroy(worker);
        free(buffer);
    }
    if (job->fatal != GAN_OK)
        return gan_error(job->fatal, "%s", job->fatal_message);
    if (o->cancel && *o->cancel)
        return gan_error(GAN_ERR_IO, "interrupted; %s was not written", o->output);
    return GAN_OK;
}

/* After a decode without a fatal error: the progress at its end, the holes squeezed out (rows moved
 * down, header rewritten), and the output committed (renamed into place, or streamed). */
static gan_status finish_output(prepare_job *job)
{
    const gan_prepare_options *o = job->o;
    if (o->progress)
        o->progress(o->progress_ctx, job->n, job->n);
    if (atomic_load(&job->bad) > 0)
        GAN_TRY(gan_npy_writer_drop_rows(&job->writer, job->keep));
    if (job->writer.shape[0] == 0)
        return gan_error(GAN_ERR_FORMAT, "%s: none of the %lld images could be decoded",
                         gan_dataset_name(job->ds), (long long)job->n);
    return gan_npy_writer_commit(&job->writer);
}

gan_status gan_prepare_cache(const gan_prepare_options *o, gan_prepare_result *result)
{
    memset(result, 0, sizeof *result);
    double start = gan_now_s();
    GAN_TRY(check_options(o));
    remove_stale_temporaries(o);
    prepare_job job = {.o = o, .writer = {.fd = -1, .stream_fd = -1}, .fatal = GAN_OK,
                       .last_progress = start};
    atomic_init(&job.done, 0);
    atomic_init(&job.bad, 0);
    atomic_init(&job.stop, false);
    gan_status status = GAN_OK;
    GAN_CHECK(open_data_and_output(&job));
    GAN_CHECK(decode_all(&job));
    GAN_CHECK(finish_output(&job));
    result->written = job.writer.shape[0];
    result->bad = atomic_load(&job.bad);
    result->seconds = gan_now_s() - start;
cleanup:
    gan_npy_writer_abort(&job.writer); /* the temporary file of a failed run; after a commit, nothing */
    free(job.keep);
    gan_dataset_close(job.ds);
    return status;
}
