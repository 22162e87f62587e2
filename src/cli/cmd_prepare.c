/* gan prepare DATA -o FILE.npy --size S [--channels C] [--format auto|folder|idx|cifar]
 *             [--split all|train|valid|test] [--split-file FILE] [--max-bad-fraction F] [--threads N]
 *
 * Decodes and transforms a data set once into a uint8 .npy [N, S, S, C] that training
 * memory-maps (data.path = FILE.npy) and numpy.load(FILE, mmap_mode='r') opens. A progress bar on
 * stderr when it is a terminal; Ctrl-C stops it without leaving a partial file. */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "gan/clock.h"
#include "gan/data.h"

typedef struct progress_state {
    pthread_mutex_t mu;
    bool bar;            /* stderr is a terminal */
    bool bar_shown;      /* a bar is on the current line */
    double start_s;
    int64_t bad;
} progress_state;

static volatile int interrupted;

static void on_interrupt(int sig)
{
    (void)sig;
    interrupted = 1;
}

static void on_progress(void *ctx, int64_t done, int64_t total)
{
    progress_state *p = ctx;
    if (!p->bar)
        return;
    pthread_mutex_lock(&p->mu);
    enum { WIDTH = 30 };
    double elapsed = gan_now_s() - p->start_s, rate = elapsed > 0 ? done / elapsed : 0;
    double eta = rate > 0 ? (total - done) / rate : 0;
    int filled = total > 0 ? (int)(WIDTH * done / total) : WIDTH;
    char bar[WIDTH + 1];
    for (int i = 0; i < WIDTH; i++)
        bar[i] = i < filled ? '#' : '.';
    bar[WIDTH] = '\0';
    fprintf(stderr, "\r\033[Kprepare [%s] %lld/%lld images, %.0f img/s, %lld skipped, %.0f s left", bar,
            (long long)done, (long long)total, rate, (long long)p->bad, eta);
    fflush(stderr);
    p->bar_shown = true;
    pthread_mutex_unlock(&p->mu);
}

static void on_warning(void *ctx, const char *message)
{
    progress_state *p = ctx;
    pthread_mutex_lock(&p->mu);
    if (p->bar_shown)
        fputs("\r\033[K", stderr);
    p->bar_shown = false;
    if (!strncmp(message, "skipping ", 9))
        p->bad++;
    fprintf(stderr, "gan: warning: %s\n", message);
    pthread_mutex_unlock(&p->mu);
}

static void usage(FILE *out)
{
    fprintf(out, "usage: gan prepare DATA -o FILE.npy --size S [--channels 1|3] [--format auto|folder|idx|cifar]\n"
                 "                   [--split all|train|valid|test] [--split-file list_eval_partition.txt]\n"
                 "                   [--max-bad-fraction F (default 0.01)] [--threads N (1..1024, default: every core)]\n"
                 "  DATA: an image folder (CelebA's img_align_celeba), an MNIST/Fashion-MNIST IDX file (.gz or\n"
                 "  raw) or CIFAR-10's cifar-10-batches-bin; writes uint8 [N, S, S, C], Resize(S) + CenterCrop(S)\n"
                 "  as torchvision computes them; train on it with data.path = FILE.npy. S is 1..4096. FILE may be\n"
                 "  a character device or a FIFO (written in place); stale FILE.tmp.PID.N files of prepare runs\n"
                 "  that no longer run are removed first\n");
}

/* The cap of --size: what data.image_size allows (--threads: GAN_PREPARE_MAX_THREADS). */
enum { PREPARE_MAX_SIZE = 4096 };

int gan_cmd_prepare(int argc, char **argv)
{
    gan_prepare_options o;
    memset(&o, 0, sizeof o);
    o.data.channels = 3;
    o.max_bad_fraction = 0.01;
    const char *data = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *value = i + 1 < argc ? argv[i + 1] : NULL;
        bool takes_value = !strcmp(a, "-o") || !strcmp(a, "--size") || !strcmp(a, "--channels") ||
                           !strcmp(a, "--format") || !strcmp(a, "--split") || !strcmp(a, "--split-file") ||
                           !strcmp(a, "--max-bad-fraction") || !strcmp(a, "--threads");
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        }
        if (takes_value && !value) {
            fprintf(stderr, "gan prepare: %s needs a value\n", a);
            return 2;
        }
        if (!strcmp(a, "-o")) {
            if (!gan_arg_path("prepare", a, value))
                return 2;
            o.output = value;
        } else if (!strcmp(a, "--size")) {
            if (!gan_arg_int("prepare", a, value, 1, PREPARE_MAX_SIZE, &o.data.size))
                return 2;
        } else if (!strcmp(a, "--channels")) {
            if (!gan_arg_int("prepare", a, value, 1, 3, &o.data.channels))
                return 2;
            if (o.data.channels == 2) {
                fprintf(stderr, "gan prepare: --channels '%s': use 1 (gray) or 3 (RGB)\n", value);
                return 2;
            }
        } else if (!strcmp(a, "--format")) {
            o.data.format = value;
        } else if (!strcmp(a, "--split")) {
            o.data.split = value;
        } else if (!strcmp(a, "--split-file")) {
            o.data.split_file = value;
        } else if (!strcmp(a, "--max-bad-fraction")) {
            if (!gan_arg_double("prepare", a, value, 0.0, 1.0, &o.max_bad_fraction))
                return 2;
        } else if (!strcmp(a, "--threads")) {
            if (!gan_arg_int("prepare", a, value, 1, GAN_PREPARE_MAX_THREADS, &o.threads))
                return 2;
        } else if (a[0] == '-') {
            fprintf(stderr, "gan prepare: unknown option %s\n", a);
            usage(stderr);
            return 2;
        } else if (!data) {
            if (!gan_arg_path("prepare", "DATA", a))
                return 2;
            data = a;
            continue;
        } else {
            fprintf(stderr, "gan prepare: more than one DATA (%s, %s)\n", data, a);
            return 2;
        }
        i++; /* the value */
    }
    if (!data || !o.output || !o.data.size) {
        fprintf(stderr, "gan prepare: DATA, -o FILE.npy and --size S are required\n");
        usage(stderr);
        return 2;
    }
    o.data.path = data;
    if (!o.data.format && !strcmp(data + (strlen(data) > 4 ? strlen(data) - 4 : 0), ".npy")) {
        fprintf(stderr, "gan prepare: %s is a cache already\n", data);
        return 2;
    }

    progress_state p = {.bar = isatty(STDERR_FILENO) != 0, .start_s = gan_now_s()};
    pthread_mutex_init(&p.mu, NULL);
    o.data.warn = on_warning;
    o.data.warn_ctx = &p;
    o.progress = on_progress;
    o.progress_ctx = &p;
    interrupted = 0;
    o.cancel = &interrupted;
    struct sigaction action, old_int, old_term;
    memset(&action, 0, sizeof action);
    action.sa_handler = on_interrupt;
    sigemptyset(&action.sa_mask);
    sigaction(SIGINT, &action, &old_int);
    sigaction(SIGTERM, &action, &old_term);

    gan_prepare_result result;
    gan_status status = gan_prepare_cache(&o, &result);

    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    if (p.bar_shown)
        fputc('\n', stderr);
    pthread_mutex_destroy(&p.mu);
    if (status != GAN_OK) {
        fprintf(stderr, "gan prepare: %s\n", gan_error_message());
        return interrupted ? 130 : 1;
    }
    int size = o.data.size, channels = o.data.channels;
    FILE *report = gan_args_report_stream(&o.output, 1);
    fprintf(report, "wrote %s: uint8 [%lld, %d, %d, %d], %lld images", o.output, (long long)result.written,
            size, size, channels, (long long)result.written);
    if (result.bad)
        fprintf(report, " (%lld more could not be decoded and were skipped)", (long long)result.bad);
    fprintf(report, " in %.1f s, %.0f images/s\n", result.seconds,
            result.seconds > 0 ? (result.written + result.bad) / result.seconds : 0.0);
    return 0;
}
