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

/* Keeps the team's first fatal error with its message, and stops every thread. Not
 * gan_status_keep_first, which keeps a status alone: the message goes with it (gan_error_message is
 * the failing thread's own, or one made here), so both are kept in the same critical section. */
static void keep_fatal(gan_status *fatal, char *fatal_message, gan_status status, const char *message,
                       atomic_bool *stop)
{
#pragma omp critical(prepare_fatal)
    if (*fatal == GAN_OK) {
        *fatal = status;
        snprintf(fatal_message, MESSAGE_BYTES, "%s", message);
    }
    atomic_store(stop, true);
}

gan_status gan_prepare_cache(const gan_prepare_options *o, gan_prepare_result *result)
{
    memset(result, 0, sizeof *result);
    double start = gan_now_s();
    if (!o->output || !o->output[0])
        return gan_error(GAN_ERR_ARG, "gan prepare: no output file (-o FILE.npy)");
    if (o->threads < 0 || o->threads > GAN_PREPARE_MAX_THREADS)
        return gan_error(GAN_ERR_ARG, "gan prepare: %d threads; 1 to %d (0: one per core)", o->threads,
                         GAN_PREPARE_MAX_THREADS);
    remove_stale_temporaries(o);
    gan_dataset *ds;
    GAN_TRY(gan_dataset_open(&o->data, &ds));
    int64_t n = gan_dataset_count(ds);
    int size = gan_dataset_size(ds), channels = gan_dataset_channels(ds);
    size_t item_bytes = (size_t)size * size * channels;
    int64_t shape[4] = {n, size, size, channels};
    gan_npy_writer writer;
    gan_status status = gan_npy_writer_open(&writer, o->output, GAN_NPY_U8, 4, shape);
    if (status != GAN_OK) {
        gan_dataset_close(ds);
        return status;
    }
    bool *keep = malloc((size_t)n * sizeof *keep);
    if (!keep) {
        gan_npy_writer_abort(&writer);
        gan_dataset_close(ds);
        return gan_error(GAN_ERR_NOMEM, "out of memory for %lld images", (long long)n);
    }
    int threads = o->threads > 0 ? o->threads : omp_get_max_threads();
    int64_t chunks = (n + CHUNK - 1) / CHUNK;
    atomic_llong done, bad;
    atomic_bool stop;
    atomic_init(&done, 0);
    atomic_init(&bad, 0);
    atomic_init(&stop, false);
    gan_status fatal = GAN_OK;
    char fatal_message[MESSAGE_BYTES] = "";
    double last_progress = start;

#pragma omp parallel num_threads(threads)
    {
        gan_dataset_worker *worker = NULL;
        uint8_t *buffer = malloc(CHUNK * item_bytes); /* [CHUNK, S, S, C] */
        gan_status local = buffer ? gan_dataset_worker_create(ds, &worker)
                                  : gan_error(GAN_ERR_NOMEM, "out of memory for a chunk of images");
        if (local != GAN_OK)
            keep_fatal(&fatal, fatal_message, local, gan_error_message(), &stop);
#pragma omp for schedule(dynamic, 1)
        for (int64_t chunk = 0; chunk < chunks; chunk++) {
            if (atomic_load(&stop) || (o->cancel && *o->cancel))
                continue;
            int64_t first = chunk * CHUNK, count = n - first < CHUNK ? n - first : CHUNK;
            for (int64_t j = 0; j < count && !atomic_load(&stop); j++) {
                int64_t i = first + j;
                gan_status s = gan_dataset_get(ds, worker, i, buffer + (size_t)j * item_bytes);
                keep[i] = s == GAN_OK;
                if (s == GAN_OK)
                    continue;
                char message[MESSAGE_BYTES + 64];
                if (s == GAN_ERR_FORMAT || s == GAN_ERR_IO) {
                    long long bad_now = atomic_fetch_add(&bad, 1) + 1;
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
                keep_fatal(&fatal, fatal_message, s == GAN_ERR_IO ? GAN_ERR_FORMAT : s, message, &stop);
            }
            if (atomic_load(&stop))
                continue;
            gan_status w = gan_npy_writer_write_rows(&writer, first, count, buffer);
            if (w != GAN_OK)
                keep_fatal(&fatal, fatal_message, w, gan_error_message(), &stop);
            long long done_now = atomic_fetch_add(&done, count) + count;
            if (o->progress && omp_get_thread_num() == 0) {
                double now = gan_now_s();
                if (now - last_progress >= 0.1) {
                    last_progress = now;
                    o->progress(o->progress_ctx, done_now, n);
                }
            }
        }
        gan_dataset_worker_destroy(worker);
        free(buffer);
    }

    status = fatal;
    if (status != GAN_OK)
        gan_error(status, "%s", fatal_message);
    else if (o->cancel && *o->cancel)
        status = gan_error(GAN_ERR_IO, "gan prepare: interrupted; %s was not written", o->output);
    int64_t bad_total = atomic_load(&bad);
    if (status == GAN_OK && o->progress)
        o->progress(o->progress_ctx, n, n);
    if (status == GAN_OK && bad_total > 0)
        status = gan_npy_writer_drop_rows(&writer, keep);
    if (status == GAN_OK && writer.shape[0] == 0)
        status = gan_error(GAN_ERR_FORMAT, "%s: none of the %lld images could be decoded",
                           gan_dataset_name(ds), (long long)n);
    if (status == GAN_OK)
        status = gan_npy_writer_commit(&writer);
    else
        gan_npy_writer_abort(&writer);
    if (status == GAN_OK) {
        result->written = writer.shape[0];
        result->bad = bad_total;
        result->seconds = gan_now_s() - start;
    }
    free(keep);
    gan_dataset_close(ds);
    return status;
}
