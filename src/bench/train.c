/* gan bench train: end-to-end training iterations on synthetic data.
 *
 * The trainer's normal path (gan_trainer_step: next batch, upload, uint8 -> float, noise, D on
 * real, D on fake, D's Adam step, G through D, G's Adam step) fed by an in-memory data source of
 * random images (a few batches, cycled: no decoding, no disk, which the real loader hides behind
 * a prefetch thread anyway; `gan bench data` measures that side).
 *
 * Timing: W warm-up iterations, then R rounds of iterations, the backend synchronised before each
 * clock read; the peak (sgemm on cpu, the backend's gemm on cuda) is measured before the first
 * round and after every round, so the iterations and the peak see the same machine. Reported:
 * the median round's ms/it (best and worst beside it), img/s (batch x D steps per iteration), the
 * useful convolution GFLOP/s of the median round, and that as a share of the best peak
 * measurement. Without --iterations, the iteration count is chosen from the warm-up so that the
 * rounds take about --seconds (at least one iteration per round).
 *
 * Useful FLOPs of one iteration (bench_iteration_flops in bench_util.c): every conv, convt and
 * linear pass the iteration really runs, each pass counted as 2 N C_out H_out W_out C_in kH kW of
 * its convolution (2 N in out for linear), with F_x one pass over network x and F_x0 its first
 * layer: k (6 F_D - 2 F_D0 + F_G) + 2 F_D + 2 F_G - F_G0. Batch norm, activations, the loss, Adam
 * and im2col are not counted: they are the overhead the percentage exposes.
 *
 * usage: gan bench train [CONFIG] [section.key=value ...] [--device auto|cpu|cuda]
 *                        [--iterations N] [--warmup W] [--rounds R] [--seconds S]
 * train.precision and train.deterministic (in the config or as overrides) set the backend's
 * options; every config of one run must ask for the same.
 * Without CONFIG: dcgan_celeba64 at batch 64 and 128, dcgan_fmnist32 at 128, mlp_mnist at 64.
 * Each config's report ends with one line:
 *   train <config> batch <B>: <ms> ms/it, <img/s> img/s, <GFLOP/s> GFLOP/s (<pct>% of sgemm peak)
 * Under mpirun -np N it is the data-parallel benchmark of src/bench/train_dist.c. */
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "bench/bench.h"
#include "cli/args.h"
#include "gan/conv_choices.h"
#include "gan/train.h"

enum { MAX_OVERRIDES = 64, MAX_ROUNDS = 64, SOURCE_BATCHES = 4 };

typedef struct train_options {
    const char *device;
    int iterations; /* 0: chosen from the warm-up */
    int warmup, rounds;
    double seconds;
} train_options;

/* ---- an in-memory data source: SOURCE_BATCHES random batches, handed out in turn --------- */
typedef struct synthetic_source {
    gan_data_source src;
    unsigned char *data;
    size_t batch_bytes;
    int next;
} synthetic_source;

static gan_status synthetic_next_batch(gan_data_source *src, void *host_batch)
{
    synthetic_source *s = src->impl;
    memcpy(host_batch, s->data + (size_t)s->next * s->batch_bytes, s->batch_bytes);
    s->next = (s->next + 1) % SOURCE_BATCHES;
    return GAN_OK;
}

static gan_status synthetic_get_position(gan_data_source *src, gan_data_position *pos)
{
    synthetic_source *s = src->impl;
    *pos = (gan_data_position){0, 0, s->next};
    return GAN_OK;
}

static gan_status synthetic_set_position(gan_data_source *src, const gan_data_position *pos)
{
    synthetic_source *s = src->impl;
    s->next = (int)(pos->index % SOURCE_BATCHES);
    return GAN_OK;
}

static void synthetic_close(gan_data_source *src)
{
    synthetic_source *s = src->impl;
    free(s->data);
}

/* uint8 images of the config's shape (NHWC), or float points for the toy set, from xorshift, in
 * batches of `batch` (the config's, or a rank's part of it). */
static gan_status synthetic_open(const gan_config *cfg, int batch, synthetic_source *s)
{
    memset(s, 0, sizeof *s);
    bool is_float = !strcmp(cfg->data_format, "toy");
    size_t sample = (size_t)cfg->channels * cfg->image_size * cfg->image_size;
    s->batch_bytes = (size_t)batch * sample * (is_float ? sizeof(float) : 1);
    s->data = malloc(s->batch_bytes * SOURCE_BATCHES);
    if (!s->data)
        return gan_error(GAN_ERR_NOMEM, "out of memory for %d synthetic batches", SOURCE_BATCHES);
    uint32_t state = 2463534242u;
    size_t values = s->batch_bytes * SOURCE_BATCHES / (is_float ? sizeof(float) : 1);
    for (size_t i = 0; i < values; i++) {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        if (is_float)
            ((float *)s->data)[i] = (float)(state >> 8) / 8388608.0f - 1.0f; /* [-1, 1) */
        else
            s->data[i] = (unsigned char)(state >> 24);
    }
    s->src = (gan_data_source){
        .impl = s,
        .height = cfg->image_size,
        .width = cfg->image_size,
        .channels = cfg->channels,
        .is_float = is_float,
        .samples = (int64_t)batch * SOURCE_BATCHES,
        .batches_per_epoch = SOURCE_BATCHES,
        .next_batch = synthetic_next_batch,
        .get_position = synthetic_get_position,
        .set_position = synthetic_set_position,
        .close = synthetic_close,
    };
    return GAN_OK;
}

static void synthetic_free(gan_data_source *src)
{
    synthetic_close(src);
    free(src->impl);
}

gan_status bench_synthetic_source_open(const gan_config *cfg, int batch, gan_data_source **out)
{
    *out = NULL;
    synthetic_source *s = malloc(sizeof *s);
    if (!s)
        return gan_error(GAN_ERR_NOMEM, "out of memory");
    gan_status status = synthetic_open(cfg, batch, s);
    if (status != GAN_OK) {
        free(s);
        return status;
    }
    s->src.close = synthetic_free;
    *out = &s->src;
    return GAN_OK;
}

/* ---- one config ---------------------------------------------------------------------------- */
gan_status bench_timed_steps(gan_trainer *t, int count, double *seconds)
{
    gan_backend *be = t->backend;
    GAN_TRY(be->synchronize(be));
    double t0 = gan_now_s();
    for (int i = 0; i < count; i++)
        GAN_TRY(gan_trainer_step(t));
    GAN_TRY(be->synchronize(be));
    *seconds = gan_now_s() - t0;
    return GAN_OK;
}

static void print_reproduce(const char *prog, const char *config, const char *const *overrides, int override_count,
                            const char *device, const train_options *o, int iterations, int rounds)
{
    printf("reproduce   : %s %s", prog, config);
    for (int i = 0; i < override_count; i++)
        printf(" %s", overrides[i]);
    printf(" --device %s --iterations %d --warmup %d --rounds %d\n", device, iterations, o->warmup, rounds);
}

static gan_status bench_one(const char *prog, gan_backend *be, const char *config, const char *const *overrides,
                            int override_count, const train_options *o)
{
    gan_config cfg;
    char path[4200];
    GAN_TRY(bench_load_config(config, overrides, override_count, &cfg, path, sizeof path));
    GAN_TRY(bench_check_options(be, &cfg));
    synthetic_source source;
    GAN_TRY(synthetic_open(&cfg, cfg.batch_size, &source));
    gan_trainer *t = NULL;
    gan_status status = GAN_OK;
    GAN_CHECK(gan_trainer_create(&cfg, be, &source.src, NULL, &t));
    gan_conv_choices_update_cache(be, stderr);
    int batch = cfg.batch_size;
    double flops = bench_iteration_flops(t->g, t->d, cfg.d_steps);
    printf("config      : %s (%s), batch %d, %d D step%s per G step, device %s\n", cfg.name, path, batch,
           cfg.d_steps, cfg.d_steps == 1 ? "" : "s", be->name);
    printf("model       : G %zu parameters, D %zu parameters\n", t->g->trainable_count, t->d->trainable_count);
    printf("memory      : %.1f MiB planned peak (one %s pool: weights, gradients, Adam state, "
           "activations, workspaces, batches)\n",
           (double)t->pool.bytes / (1024.0 * 1024.0), be->name);
    printf("flops       : %.3f GFLOP (%.0f) of conv/convt/linear passes per iteration (D on real, D on "
           "fake, G through D)\n",
           flops * 1e-9, flops);

    /* warm-up: first touch of memory, cuDNN's algorithm state, the BLAS threads */
    double warm_s = 0;
    if (o->warmup > 0)
        GAN_CHECK(bench_timed_steps(t, o->warmup, &warm_s));
    int iterations = o->iterations;
    if (iterations <= 0) {
        double per_it = o->warmup > 0 ? warm_s / o->warmup : 0.0;
        if (per_it <= 0) /* no warm-up to go by: time one */
            GAN_CHECK(bench_timed_steps(t, 1, &per_it));
        double want = per_it > 0 ? o->seconds / per_it : 1e4;
        iterations = want > 1e4 ? 10000 : (int)(want + 0.5);
        if (iterations < o->rounds) /* at least one iteration per round, so the median has them all */
            iterations = o->rounds;
    }
    int rounds = o->rounds < iterations ? o->rounds : iterations;
    if (rounds < 1)
        rounds = 1;
    if (iterations < rounds)
        iterations = rounds;

    double peaks[MAX_ROUNDS + 1], round_ms[MAX_ROUNDS];
    char peak_what[256] = "";
    int peak_count = 0;
    GAN_CHECK(bench_measure_gemm_peak(be, &peaks[peak_count++], peak_what, sizeof peak_what));
    for (int r = 0; r < rounds; r++) {
        int count = iterations / rounds + (r < iterations % rounds ? 1 : 0);
        double s = 0;
        GAN_CHECK(bench_timed_steps(t, count, &s));
        round_ms[r] = s * 1e3 / count;
        GAN_CHECK(bench_measure_gemm_peak(be, &peaks[peak_count++], peak_what, sizeof peak_what));
    }
    gan_step_stats stats;
    bool finite = true;
    GAN_CHECK(gan_trainer_read_stats(t, &stats, &finite));
    double peak = bench_max(peaks, peak_count), peak_low = bench_min(peaks, peak_count);
    printf("peak        : %.1f GFLOP/s, the best of %d measurements of %s interleaved with the "
           "rounds (lowest %.1f)\n",
           peak, peak_count, peak_what, peak_low);
    printf("rounds      : %d round%s, %d iterations after %d warm-up:", rounds, rounds == 1 ? "" : "s",
           iterations, o->warmup);
    for (int r = 0; r < rounds; r++)
        printf(" %.1f", round_ms[r]);
    printf(" ms/it\n");
    double best = bench_min(round_ms, rounds), worst = bench_max(round_ms, rounds);
    double ms = bench_median(round_ms, rounds);
    double img_per_s = batch * cfg.d_steps * 1e3 / ms;
    double gflops = flops * 1e-9 / (ms * 1e-3);
    double pct = 100.0 * gflops / peak;
    printf("result      : median %.1f ms/it (best %.1f, worst %.1f), %.1f img/s, %.1f GFLOP/s useful = "
           "%.1f%% of the best peak measurement%s\n",
           ms, best, worst, img_per_s, gflops, pct, finite ? "" : " (losses went non-finite: random data)");
    char graph[160];
    gan_trainer_describe_graph(t, graph, sizeof graph);
    if (graph[0])
        printf("graph       : the iteration captured once and replayed, %s\n", graph);
    struct rusage usage;
    if (be->kind == GAN_BACKEND_CPU && getrusage(RUSAGE_SELF, &usage) == 0)
        printf("process     : max resident set %.1f MiB (so far in this process)\n", usage.ru_maxrss / 1024.0);
    print_reproduce(prog, config, overrides, override_count,
                    !strcmp(o->device, "auto") ? be->name : o->device, o, iterations, rounds);
    printf("train %s batch %d: %.1f ms/it, %.1f img/s, %.1f GFLOP/s (%.1f%% of sgemm peak)\n", cfg.name, batch,
           ms, img_per_s, gflops, pct);
    fflush(stdout);
cleanup:
    gan_trainer_destroy(t);
    synthetic_close(&source.src);
    return status;
}

/* CONFIG, or without one the set, each timed by bench_one on one backend. */
static gan_status bench_configs(const char *prog, const char *config, const char *const *overrides,
                                int override_count, const train_options *o)
{
    /* the set when no config is named: each with its own overrides plus the user's */
    struct {
        const char *config, *batch;
    } set[] = {{"dcgan_celeba64", "train.batch_size=64"},
               {"dcgan_celeba64", "train.batch_size=128"},
               {"dcgan_fmnist32", "train.batch_size=128"},
               {"mlp_mnist", "train.batch_size=64"}};
    int runs = config ? 1 : (int)(sizeof set / sizeof set[0]);
    const char *with_batch[MAX_OVERRIDES + 1];
    memcpy(with_batch + 1, overrides, (size_t)override_count * sizeof *overrides);

    /* The backend computes as the first config asks (bench_one holds the others to it). */
    gan_config first;
    char path[4200];
    with_batch[0] = set[0].batch;
    GAN_TRY(config ? bench_load_config(config, overrides, override_count, &first, path, sizeof path)
                   : bench_load_config(set[0].config, with_batch, override_count + 1, &first, path,
                                       sizeof path));
    gan_backend *be = NULL;
    GAN_TRY(bench_open_backend(o->device, &first, &be));
    bench_print_machine(be, stdout, "");
    gan_status status = GAN_OK;
    for (int r = 0; r < runs; r++) {
        if (config) {
            GAN_CHECK(bench_one(prog, be, config, overrides, override_count, o));
            break;
        }
        with_batch[0] = set[r].batch;
        printf("\n");
        GAN_CHECK(bench_one(prog, be, set[r].config, with_batch, override_count + 1, o));
    }
cleanup:
    be->destroy(be);
    return status;
}

static int usage(FILE *out)
{
    fprintf(out,
            "usage: gan bench train [CONFIG] [section.key=value ...] [--device auto|cpu|cuda|cuda:N]\n"
            "                       [--iterations N] [--warmup W] [--rounds R] [--seconds S]\n"
            "\n"
            "Times training iterations of CONFIG (a path, or a name in configs/) on synthetic data and\n"
            "ends with: train <config> batch <B>: <ms> ms/it, <img/s> img/s, <GFLOP/s> GFLOP/s (<pct>%% of\n"
            "sgemm peak). Without CONFIG: dcgan_celeba64 at batch 64 and 128, dcgan_fmnist32 at 128,\n"
            "mlp_mnist at 64. Defaults: --warmup 2 --rounds 3, iterations to fill about --seconds 8.\n"
            "train.precision=fp32|tf32|bf16 and train.deterministic=true|false set how the backend computes.\n"
            "Under mpirun -np N (one CONFIG): every rank trains train.batch_size / N samples of each batch;\n"
            "per-rank and total img/s, the all-reduces' time per iteration and the scaling efficiency\n"
            "against one rank alone (src/bench/train_dist.c).\n");
    return out == stdout ? 0 : 2;
}

/* The command on this process: one process, or one rank of a data-parallel run. */
static int bench_train_command(int argc, char **argv, const gan_dist *dist)
{
    train_options o = {.device = "auto", .warmup = 2, .rounds = 3, .seconds = 8.0};
    const char *config = NULL;
    const char *overrides[MAX_OVERRIDES];
    int override_count = 0;
    FILE *err = dist->rank == 0 ? stderr : fopen("/dev/null", "w"); /* usage errors: said once */
    if (!err)
        err = stderr;
    int code = -1;
    for (int i = 1; i < argc && code < 0; i++) {
        const char *a = argv[i];
        bool has_value = i + 1 < argc;
        if (!strcmp(a, "--help") || !strcmp(a, "-h"))
            code = dist->rank == 0 ? usage(stdout) : 0;
        else if (!strcmp(a, "--device") && has_value) {
            o.device = argv[++i];
        } else if ((!strcmp(a, "--iterations") || !strcmp(a, "--warmup") || !strcmp(a, "--rounds")) &&
                   has_value) {
            /* strict numbers (cli/args.h): atoi took "12x" as 12 and "x" as 0; the ranges below */
            int64_t v = 0;
            if (!gan_parse_int64(argv[++i], 0, INT_MAX, &v)) {
                fprintf(err, "gan bench train: %s '%s': expected a whole number from 0 to %d\n", a, argv[i],
                        INT_MAX);
                code = 2;
            }
            *(!strcmp(a, "--iterations") ? &o.iterations : !strcmp(a, "--warmup") ? &o.warmup : &o.rounds) = (int)v;
        } else if (!strcmp(a, "--seconds") && has_value) {
            if (!gan_parse_double(argv[++i], 0, 1e9, &o.seconds)) {
                fprintf(err, "gan bench train: --seconds '%s': expected a number from 0 to 1e9\n", argv[i]);
                code = 2;
            }
        } else if (a[0] == '-') {
            fprintf(err, "gan bench train: unknown or incomplete option '%s'\n", a);
            code = usage(err);
        } else if (strchr(a, '=')) {
            if (override_count == MAX_OVERRIDES) {
                fprintf(err, "gan bench train: more than %d overrides\n", MAX_OVERRIDES);
                code = 2;
            } else
                overrides[override_count++] = a;
        } else if (!config) {
            config = a;
        } else {
            fprintf(err, "gan bench train: unexpected argument '%s' (one CONFIG at most)\n", a);
            code = usage(err);
        }
    }
    if (code < 0 && (o.iterations < 0 || o.warmup < 0 || o.rounds < 1 || o.rounds > MAX_ROUNDS || o.seconds <= 0)) {
        fprintf(err, "gan bench train: needs --iterations >= 0 (0: from --seconds), --warmup >= 0, "
                     "1 <= --rounds <= %d, --seconds > 0\n",
                MAX_ROUNDS);
        code = 2;
    }
    if (err != stderr)
        fclose(err);
    if (code >= 0) {
        if (code)
            gan_dist_note_shared_failure(dist);
        return code;
    }
    if (dist->active) /* under mpirun (or GAN_DIST_FORCE=1): train_dist.c */
        return bench_train_dist(argv[0], dist, config, overrides, override_count, o.device, o.iterations, o.warmup,
                                o.rounds, o.seconds);
    if (bench_configs(argv[0], config, overrides, override_count, &o) != GAN_OK) {
        fprintf(stderr, "gan bench train: %s\n", gan_error_message());
        return 1;
    }
    return 0;
}

int gan_bench_train(int argc, char **argv)
{
    gan_dist dist;
    if (gan_dist_init(&argc, &argv, &dist) != GAN_OK) {
        fprintf(stderr, "gan bench train: %s\n", gan_error_message());
        return 1;
    }
    int code = bench_train_command(argc, argv, &dist);
    if (dist.mpi && code != 0) /* no rank may wait for another in a collective: end the job */
        gan_dist_abort(&dist, code, !gan_dist_should_report(&dist));
    gan_dist_finalize(&dist);
    return code;
}
