/* gan bench train under mpirun -np N (docs/DESIGN.md "Data parallel"): the data-parallel training step
 * on synthetic data, every rank training its part (train.batch_size / N) of the global batch.
 *
 * Measured, the ranks starting each round together (a barrier):
 *   per rank: the median round's ms/it and img/s (its part of the batch x D steps per iteration);
 *   total: the global batch x D steps per iteration at the slowest rank's pace (the ranks move in
 *     lockstep: every Adam step waits for the all-reduce);
 *   all-reduce: the calls one iteration makes are recorded (wrappers around the backend's op-table
 *     entries): their count and bytes; on the CPU the time spent inside them during the rounds
 *     (MPI_Allreduce returns when done, so waiting for a slower rank is included); and the same
 *     calls run back to back alone, the backend synchronised at both ends (the cost of the
 *     communication itself, on CUDA too, where a call only queues NCCL's kernel);
 *   one rank: rank 0 alone (the others asleep in a barrier) runs the same config at the per-rank
 *     batch with the same threads and no process group;
 *   scaling efficiency: total img/s / (N x one rank's img/s): 100% is N ranks each as fast as one
 *     alone (weak scaling at the per-rank batch). */
#include <stdlib.h>
#include <string.h>

#include "bench/bench.h"
#include "gan/backend_select.h"

enum { MAX_CALLS = 1024, ALONE_REPEATS = 20 };

/* The all-reduces of one iteration, recorded, and the host time inside them. */
typedef struct allreduce_call {
    bool f64;
    size_t count;
    float scale;
} allreduce_call;

static struct {
    gan_status (*sum)(gan_backend *be, float *data, size_t count, float scale);
    gan_status (*sum_f64)(gan_backend *be, double *data, size_t count);
    bool recording;
    allreduce_call calls[MAX_CALLS];
    int call_count;
    double inside_s;
} tap;

static void record_call(bool f64, size_t count, float scale)
{
    if (tap.recording && tap.call_count < MAX_CALLS)
        tap.calls[tap.call_count++] = (allreduce_call){f64, count, scale};
}

static gan_status tapped_sum(gan_backend *be, float *data, size_t count, float scale)
{
    record_call(false, count, scale);
    double t0 = gan_now_s();
    gan_status status = tap.sum(be, data, count, scale);
    tap.inside_s += gan_now_s() - t0;
    return status;
}

static gan_status tapped_sum_f64(gan_backend *be, double *data, size_t count)
{
    record_call(true, count, 1.0f);
    double t0 = gan_now_s();
    gan_status status = tap.sum_f64(be, data, count);
    tap.inside_s += gan_now_s() - t0;
    return status;
}

static void install_tap(gan_backend *be)
{
    memset(&tap, 0, sizeof tap);
    tap.sum = be->allreduce_sum;
    tap.sum_f64 = be->allreduce_sum_f64;
    be->allreduce_sum = tapped_sum;
    be->allreduce_sum_f64 = tapped_sum_f64;
}

/* The recorded calls, run `repeats` times back to back on scratch buffers: seconds per repeat. */
static gan_status time_calls_alone(gan_backend *be, const gan_dist *dist, int repeats, double *seconds)
{
    size_t largest = 1;
    for (int i = 0; i < tap.call_count; i++)
        largest = tap.calls[i].count > largest ? tap.calls[i].count : largest;
    void *scratch = NULL;
    GAN_TRY(be->alloc(be, largest * sizeof(double), &scratch));
    gan_status status = GAN_OK;
    GAN_CHECK(be->fill(be, (float *)scratch, 0.0f, largest * 2));
    GAN_CHECK(be->synchronize(be));
    GAN_CHECK(gan_dist_barrier(dist));
    double t0 = gan_now_s();
    for (int r = 0; r < repeats; r++)
        for (int i = 0; i < tap.call_count; i++) {
            const allreduce_call *c = &tap.calls[i];
            if (c->f64)
                GAN_CHECK(tap.sum_f64(be, (double *)scratch, c->count));
            else
                GAN_CHECK(tap.sum(be, (float *)scratch, c->count, c->scale));
        }
    GAN_CHECK(be->synchronize(be));
    *seconds = (gan_now_s() - t0) / repeats;
cleanup:
    be->free(be, scratch);
    return status;
}

/* The median ms/it of `rounds` rounds of `iterations` steps in all, each round started by every
 * rank together (with_barrier) or alone. */
static gan_status timed_rounds(gan_trainer *t, const gan_dist *dist, bool with_barrier, int iterations, int rounds,
                               double *round_ms, double *median_ms)
{
    for (int r = 0; r < rounds; r++) {
        int count = iterations / rounds + (r < iterations % rounds ? 1 : 0);
        if (with_barrier)
            GAN_TRY(gan_dist_barrier(dist));
        double s = 0;
        GAN_TRY(bench_timed_steps(t, count, &s));
        round_ms[r] = s * 1e3 / count;
    }
    double sorted[64];
    memcpy(sorted, round_ms, (size_t)rounds * sizeof *sorted);
    *median_ms = bench_median(sorted, rounds);
    return GAN_OK;
}

/* The backend of this rank: the config's options, the process group, the GPU of its local rank. */
static gan_status open_rank_backend(const char *device, const gan_config *cfg, const gan_dist *dist,
                                    gan_backend **out)
{
    gan_backend_options options = gan_backend_options_for_config(cfg);
    options.dist = dist;
    if (dist->local_size > 1) {
        if (!strncmp(device, "cuda:", 5))
            return gan_error(GAN_ERR_ARG, "--device %s with %d ranks on this machine: each rank takes the GPU of "
                                          "its local rank (choose the GPUs with CUDA_VISIBLE_DEVICES)",
                             device, dist->local_size);
        options.device_index = dist->local_rank;
    }
    char why[512] = "";
    return gan_backend_open(device, &options, out, why, sizeof why);
}

/* Every rank on the same kind of backend. */
static gan_status check_same_kind(const gan_backend *be, const gan_dist *dist)
{
    double kinds[4096];
    if (dist->world_size > 4096)
        return GAN_OK;
    GAN_TRY(gan_dist_allgather_double(dist, (double)be->kind, kinds));
    for (int r = 1; r < dist->world_size; r++)
        if (kinds[r] != kinds[0]) {
            gan_dist_note_shared_failure(dist);
            return gan_error(GAN_ERR_UNSUPPORTED, "rank %d and rank 0 opened different backends: give --device", r);
        }
    return GAN_OK;
}

/* Rank 0 alone, at the per-rank batch, on a backend without the process group: ms/it. */
static gan_status one_rank_reference(const char *device, const gan_config *cfg, int batch, int warmup,
                                     int iterations, int rounds, double *ms)
{
    gan_config alone = *cfg;
    alone.batch_size = batch;
    gan_backend *be = NULL;
    gan_data_source *source = NULL;
    gan_trainer *t = NULL;
    gan_status status = GAN_OK;
    gan_backend_options options = gan_backend_options_for_config(&alone);
    char why[512];
    GAN_CHECK(gan_backend_open(device, &options, &be, why, sizeof why));
    GAN_CHECK(bench_synthetic_source_open(&alone, batch, &source));
    GAN_CHECK(gan_trainer_create(&alone, be, source, NULL, &t));
    double s = 0, round_ms[64];
    if (warmup > 0)
        GAN_CHECK(bench_timed_steps(t, warmup, &s));
    GAN_CHECK(timed_rounds(t, NULL, false, iterations, rounds, round_ms, ms));
cleanup:
    gan_trainer_destroy(t);
    if (source)
        source->close(source);
    if (be)
        be->destroy(be);
    return status;
}

static void report(const gan_dist *dist)
{
    if (!gan_dist_should_report(dist))
        return;
    if (gan_dist_failure_shared(dist))
        fprintf(stderr, "gan bench train: %s\n", gan_error_message());
    else
        fprintf(stderr, "gan bench train: rank %d of %d: %s\n", dist->rank, dist->world_size, gan_error_message());
}

int bench_train_dist(const char *prog, const gan_dist *dist, const char *config, const char *const *overrides,
                     int override_count, const char *device, int iterations, int warmup, int rounds, double seconds)
{
    const int world = dist->world_size, rank = dist->rank;
    gan_config cfg;
    char path[4200];
    gan_backend *be = NULL;
    gan_data_source *source = NULL;
    gan_trainer *t = NULL;
    double *all = NULL;
    gan_status status = GAN_OK;
    if (!config) {
        gan_dist_note_shared_failure(dist);
        gan_error(GAN_ERR_ARG, "under mpirun, name one CONFIG (the default set runs one process at a time)");
        report(dist);
        return 2;
    }
    GAN_CHECK(gan_dist_agree(dist, bench_load_config(config, overrides, override_count, &cfg, path, sizeof path)));
    GAN_CHECK(gan_dist_agree(dist, gan_train_check_batch(&cfg, world)));
    const int batch = cfg.batch_size / world;
    char threads[512];
    gan_dist_set_threads(dist, threads, sizeof threads);
    GAN_CHECK(gan_dist_agree(dist, open_rank_backend(device, &cfg, dist, &be)));
    GAN_CHECK(check_same_kind(be, dist));
    GAN_CHECK(gan_dist_agree(dist, bench_synthetic_source_open(&cfg, batch, &source)));
    GAN_CHECK(gan_dist_agree(dist, gan_trainer_create(&cfg, be, source, NULL, &t)));
    install_tap(be);
    if (rank == 0) {
        bench_print_machine(be, stdout, "");
        printf("config      : %s (%s), global batch %d = %d rank%s x %d, %d D step%s per G step, device %s\n",
               cfg.name, path, cfg.batch_size, world, world == 1 ? "" : "s", batch, cfg.d_steps,
               cfg.d_steps == 1 ? "" : "s", be->name);
        printf("ranks       : %d, %d on this machine; %s\n", world, dist->local_size,
               threads[0] ? threads : "threads per rank: as OpenMP gives");
        fflush(stdout);
    }

    /* warm-up, the first step recording the all-reduces */
    double warm_s = 0, first_s = 0;
    tap.recording = true;
    GAN_CHECK(bench_timed_steps(t, 1, &first_s));
    tap.recording = false;
    if (warmup > 1)
        GAN_CHECK(bench_timed_steps(t, warmup - 1, &warm_s));
    int counts[2] = {iterations, rounds};
    if (rank == 0 && iterations <= 0) {
        double per_it = warmup > 1 ? warm_s / (warmup - 1) : first_s;
        double want = per_it > 0 ? seconds / per_it : 1e4;
        counts[0] = want > 1e4 ? 10000 : (int)(want + 0.5);
        if (counts[0] < rounds)
            counts[0] = rounds;
    }
    GAN_CHECK(gan_dist_broadcast(dist, counts, sizeof counts, 0)); /* every rank runs as many */
    iterations = counts[0];
    if (rounds > iterations)
        rounds = iterations;

    double round_ms[64], median_ms = 0;
    tap.inside_s = 0;
    GAN_CHECK(timed_rounds(t, dist, true, iterations, rounds, round_ms, &median_ms));
    double inside_ms = tap.inside_s * 1e3 / iterations;
    double alone_s = 0;
    GAN_CHECK(time_calls_alone(be, dist, ALONE_REPEATS, &alone_s));

    all = calloc((size_t)world * 4, sizeof *all);
    if (!all)
        GAN_CHECK(gan_error(GAN_ERR_NOMEM, "out of memory"));
    double *rank_ms = all, *rank_inside = all + world, *rank_alone = all + 2 * world;
    GAN_CHECK(gan_dist_allgather_double(dist, median_ms, rank_ms));
    GAN_CHECK(gan_dist_allgather_double(dist, inside_ms, rank_inside));
    GAN_CHECK(gan_dist_allgather_double(dist, alone_s * 1e3, rank_alone));

    /* one rank alone: rank 0, the others asleep (they leave it the cores) */
    double reference_ms = 0;
    gan_status alone_status = GAN_OK;
    if (rank == 0)
        alone_status = one_rank_reference(device, &cfg, batch, warmup, iterations, rounds, &reference_ms);
    GAN_CHECK(gan_dist_barrier_sleeping(dist));
    GAN_CHECK(gan_dist_agree(dist, alone_status));
    GAN_CHECK(gan_dist_broadcast(dist, &reference_ms, sizeof reference_ms, 0));

    if (rank == 0) {
        size_t float_calls = 0, double_calls = 0, float_values = 0, double_values = 0;
        for (int i = 0; i < tap.call_count; i++) {
            if (tap.calls[i].f64)
                double_calls++, double_values += tap.calls[i].count;
            else
                float_calls++, float_values += tap.calls[i].count;
        }
        double slowest = bench_max(rank_ms, world), img = (double)batch * cfg.d_steps;
        double total = (double)cfg.batch_size * cfg.d_steps * 1e3 / slowest;
        double reference = img * 1e3 / reference_ms, efficiency = 100.0 * total / (world * reference);
        double alone_ms = bench_max(rank_alone, world), inside = bench_max(rank_inside, world);
        printf("all-reduces : per iteration %zu of floats (%.2f MiB: gradients of D and G%s) and %zu of doubles "
               "(%.3f MiB: batch norm statistics, train.sync_bn)\n",
               float_calls, float_values * 4.0 / (1 << 20), cfg.sync_bn ? "" : ", running statistics",
               double_calls, double_values * 8.0 / (1 << 20));
        printf("rounds      : %d round%s, %d iterations after %d warm-up, rank 0:", rounds, rounds == 1 ? "" : "s",
               iterations, warmup);
        for (int r = 0; r < rounds; r++)
            printf(" %.1f", round_ms[r]);
        printf(" ms/it\n");
        for (int r = 0; r < world; r++)
            printf("rank %-7d: median %.1f ms/it, %.1f img/s\n", r, rank_ms[r], img * 1e3 / rank_ms[r]);
        if (be->kind == GAN_BACKEND_CPU)
            printf("all-reduce  : %.2f ms/it inside the iteration (the most of any rank: %.1f%% of it; waiting for "
                   "slower ranks included); the same calls alone %.2f ms/it\n",
                   inside, 100.0 * inside / slowest, alone_ms);
        else
            printf("all-reduce  : the same calls alone %.2f ms/it (%.1f%% of the iteration; inside it they overlap "
                   "nothing: one stream)\n",
                   alone_ms, 100.0 * alone_ms / slowest);
        printf("one rank    : %.1f ms/it, %.1f img/s (rank 0 alone at batch %d, the same threads, no process "
               "group)\n",
               reference_ms, reference, batch);
        printf("result      : %.1f img/s in total on %d rank%s = %.1f%% of %d x one rank (scaling efficiency)\n", total,
               world, world == 1 ? "" : "s", efficiency, world);
        printf("reproduce   : mpirun -np %d %s %s", world, prog, config);
        for (int i = 0; i < override_count; i++)
            printf(" %s", overrides[i]);
        printf(" --device %s --iterations %d --warmup %d --rounds %d\n", device, iterations, warmup, rounds);
        printf("train %s batch %d on %d rank%s: %.1f ms/it, %.1f img/s total (%.1f per rank), all-reduce %.2f "
               "ms/it alone, scaling efficiency %.1f%%\n",
               cfg.name, cfg.batch_size, world, world == 1 ? "" : "s", slowest, total, total / world, alone_ms,
               efficiency);
        fflush(stdout);
    }
cleanup:
    free(all);
    /* A failed rank leaves the device to the process's end (MPI_Abort follows): see close_run in
     * src/train/run.c. */
    if (status == GAN_OK || world < 2) {
        gan_trainer_destroy(t);
        if (source)
            source->close(source);
        if (be)
            be->destroy(be);
    }
    if (status != GAN_OK) {
        report(dist);
        return 1;
    }
    return 0;
}
