/* `gan train`: a run from start to end (gan_run_train: the run directory, the backend, the
 * trainer and its data, the logs, the signals) and the loop around gan_trainer_step (log lines,
 * metrics.jsonl, TensorBoard, sample grids, checkpoints, the non-finite stop). The run directory's
 * files are run_dir.c's.
 *
 * On several ranks (mpirun, gan/dist.h) every rank runs this same code on its part of each batch;
 * rank 0 (`writer`) alone owns the run directory and writes every file and log line. The ranks
 * make the same collective calls in the same order: the start-up steps end in an agreement on
 * failures, the loop's stats reads and stops happen at the same iterations on every rank. */
#include "gan/run.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gan/backend_select.h"
#include "gan/checkpoint.h"
#include "gan/clock.h"
#include "gan/image.h"
#include "gan/npy.h"
#include "gan/tb_events.h"
#include "train/conv_algorithms.h"
#include "train/fid_track.h"
#include "train/run_dir.h"

static volatile sig_atomic_t stop_signal = 0;

static void on_stop_signal(int signo) { stop_signal = signo; }

typedef struct run_state {
    gan_backend *backend;
    gan_trainer *trainer;
    gan_data_source *data;
    const gan_config *cfg;
    const gan_dist *dist;       /* NULL: one process */
    bool writer;                /* writes the files and the log: the only process, or rank 0 */
    int ranks;                  /* world size of a data-parallel run, else 1 */
    const char *out_dir;
    run_paths paths;
    int lock_fd;                /* the run directory's lock (run_dir_lock) */
    char last_checkpoint[4300];
    FILE *metrics;
    gan_tb_writer *tb;          /* TensorBoard events; NULL after a failed write */
    int64_t total_iterations;
    int64_t iterations_per_epoch;
    int64_t epochs;
    int64_t last_checked;       /* iteration of the last finite check */
    double start_s;
    double fid_s;               /* time spent in FID evaluations (left out of img/s) */
    int64_t start_iteration;
    bool progress_bar;
    fid_track fid;              /* FID during training (log.fid_every; rank 0's) */
} run_state;

static int64_t epoch_of(const run_state *run, int64_t iteration)
{
    return iteration / run->iterations_per_epoch;
}

/* Reads the stats (a host synchronisation) and stops on a non-finite value. */
static gan_status check_stats(run_state *run, gan_step_stats *stats)
{
    bool finite = true;
    GAN_TRY(gan_trainer_read_stats(run->trainer, stats, &finite));
    int64_t it = run->trainer->iteration;
    if (!finite) {
        gan_dist_note_shared_failure(run->dist); /* every rank read the same all-reduced stats */
        return gan_error(GAN_ERR_NUMERIC,
                         "a loss or D output became non-finite (NaN or inf) in iterations %lld..%lld; "
                         "stopped without writing a checkpoint from that state. Last good "
                         "checkpoint: %s",
                         (long long)run->last_checked + 1, (long long)it,
                         run->last_checkpoint[0] ? run->last_checkpoint : "(none written yet)");
    }
    run->last_checked = it;
    return GAN_OK;
}

/* On several ranks, before a checkpoint: every rank's weights, running statistics and Adam
 * moments must be the same bits (the all-reduces give every rank the same sums); a CRC-32C of
 * them compared across the ranks says so, or stops the run before a checkpoint that would stand
 * for only one rank's state. */
static gan_status check_ranks_agree(run_state *run)
{
    if (run->ranks < 2)
        return GAN_OK;
    uint32_t crc = 0;
    GAN_TRY(gan_trainer_state_crc32c(run->trainer, &crc));
    double *all = calloc((size_t)run->ranks, sizeof *all);
    if (!all)
        return gan_error(GAN_ERR_NOMEM, "out of memory");
    gan_status status = gan_dist_allgather_double(run->dist, (double)crc, all);
    int differs = -1;
    for (int r = 1; status == GAN_OK && r < run->ranks && differs < 0; r++)
        if (all[r] != all[0])
            differs = r;
    if (differs >= 0) {
        gan_dist_note_shared_failure(run->dist);
        status = gan_error(GAN_ERR_NUMERIC,
                           "after iteration %lld the ranks' weights, running statistics or Adam moments differ "
                           "(CRC-32C %08x on rank 0, %08x on rank %d): the all-reduce did not give every rank "
                           "the same bits; stopped without writing a checkpoint",
                           (long long)run->trainer->iteration, (unsigned)all[0], (unsigned)all[differs], differs);
    }
    free(all);
    return status;
}

/* Writes the checkpoint of this iteration and reads it back: only a file that verifies becomes
 * the "last good checkpoint" the run names; then the older ones beyond log.keep_checkpoints go. */
static gan_status save_checkpoint(run_state *run)
{
    GAN_TRY(check_ranks_agree(run));
    if (!run->writer)
        return GAN_OK;
    char path[4300];
    int64_t it = run->trainer->iteration;
    run_dir_checkpoint_path(&run->paths, it, path, sizeof path);
    GAN_TRY(gan_trainer_save_checkpoint(run->trainer, run->data, epoch_of(run, it), path));
    gan_checkpoint written;
    gan_status verified = gan_checkpoint_open(path, &written);
    if (verified != GAN_OK)
        return gan_error_prefix(verified, "the checkpoint just written does not read back: ");
    gan_checkpoint_close(&written);
    snprintf(run->last_checkpoint, sizeof run->last_checkpoint, "%s", path);
    run_dir_prune_checkpoints(&run->paths, it, run->cfg->keep_checkpoints);
    return GAN_OK;
}

/* The events file is opened at start-up, where a failure stops the run; a later write that fails
 * (disk full) warns once and stops the TensorBoard log, the training and its checkpoints go on. */
static void tb_check(run_state *run, gan_status status)
{
    if (status == GAN_OK || !run->tb)
        return;
    fprintf(stderr, "gan: warning: %s; no more TensorBoard events for this run\n", gan_error_message());
    gan_tb_writer_close(run->tb);
    run->tb = NULL;
}

/* The fixed-noise grid, exactly as the PNG file, as TensorBoard image "samples/fixed_noise". */
static void tb_add_grid(run_state *run, const float *images, gan_shape s)
{
    uint8_t *png = NULL;
    size_t png_size = 0;
    int grid_w = 0, grid_h = 0;
    gan_status status = GAN_OK;
    GAN_CHECK(gan_sample_grid_png(images, run->trainer->sample_batch, s.c, s.h, s.w, 8, 2, &png, &png_size,
                                  &grid_w, &grid_h));
    GAN_CHECK(gan_tb_add_png(run->tb, run->trainer->iteration, "samples/fixed_noise", png, png_size, grid_w,
                             grid_h, 3));
cleanup:
    free(png);
    tb_check(run, status);
}

static gan_status save_samples(run_state *run, const char *name)
{
    if (!run->writer)
        return GAN_OK;
    gan_trainer *t = run->trainer;
    gan_shape s = t->g->output_shape;
    size_t per_image = gan_shape_count(s);
    bool image = s.c == 1 || s.c == 3;
    char path[4400];
    /* Images become a grid; other samples (the toy set's 2-d points) their raw values. */
    snprintf(path, sizeof path, "%s/%s.%s", run->paths.samples, name, image ? "png" : "npy");
    float *images = malloc((size_t)t->sample_batch * per_image * sizeof(float));
    if (!images)
        return gan_error(GAN_ERR_NOMEM, "out of memory for the sample grid");
    gan_status status = GAN_OK;
    GAN_CHECK(gan_trainer_generate(t, t->fixed_z, t->sample_batch,
                                   run->cfg->sample_bn == GAN_SAMPLE_BN_BATCH, images));
    if (image) {
        GAN_CHECK(gan_write_sample_grid(path, images, t->sample_batch, s.c, s.h, s.w, 8, 2));
        if (run->tb)
            tb_add_grid(run, images, s);
    } else {
        int64_t shape[4] = {t->sample_batch, s.c, s.h, s.w};
        GAN_CHECK(gan_npy_write_f32(path, images, 4, shape));
    }
cleanup:
    free(images);
    return status;
}

static void format_duration(char *buf, size_t bytes, double seconds)
{
    long s = (long)(seconds + 0.5);
    if (s >= 3600)
        snprintf(buf, bytes, "%ldh%02ldm", s / 3600, (s / 60) % 60);
    else
        snprintf(buf, bytes, "%ldm%02lds", s / 60, s % 60);
}

static gan_status log_line(run_state *run, const gan_step_stats *stats)
{
    if (!run->writer)
        return GAN_OK;
    gan_trainer *t = run->trainer;
    int64_t it = t->iteration;
    double elapsed = gan_now_s() - run->start_s;
    double training_s = elapsed - run->fid_s;
    int64_t done = it - run->start_iteration;
    double img_per_s = training_s > 0 ? (double)done * run->cfg->batch_size * run->cfg->d_steps / training_s : 0.0;
    double eta = done > 0 ? training_s / (double)done * (double)(run->total_iterations - it) : 0.0;
    char eta_text[32];
    format_duration(eta_text, sizeof eta_text, eta);
    int64_t epoch = epoch_of(run, it - 1);
    int64_t in_epoch = (it - 1) % run->iterations_per_epoch + 1;
    if (run->progress_bar)
        fputs("\r\033[K", stdout);
    printf("[%lld/%lld][%lld/%lld]\tLoss_D: %.4f\tLoss_G: %.4f\tD(x): %.4f\tD(G(z)): %.4f / %.4f"
           "\t%.0f img/s\tETA %s\n",
           (long long)epoch, (long long)run->epochs, (long long)in_epoch,
           (long long)run->iterations_per_epoch, stats->loss_d, stats->loss_g, stats->d_x,
           stats->d_g_z1, stats->d_g_z2, img_per_s, eta_text);
    fflush(stdout);
    errno = 0;
    fprintf(run->metrics,
            "{\"iteration\": %lld, \"epoch\": %lld, \"loss_d\": %.9g, \"loss_g\": %.9g, "
            "\"d_x\": %.9g, \"d_g_z1\": %.9g, \"d_g_z2\": %.9g, \"img_per_s\": %.1f, "
            "\"elapsed_s\": %.3f, \"lr_g\": %.9g, \"lr_d\": %.9g}\n",
            (long long)it, (long long)epoch, stats->loss_d, stats->loss_g, stats->d_x,
            stats->d_g_z1, stats->d_g_z2, img_per_s, elapsed, run->cfg->adam_g.lr,
            run->cfg->adam_d.lr);
    int metrics_errno = 0;
    if (fflush(run->metrics) != 0 || ferror(run->metrics))
        metrics_errno = errno ? errno : EIO;
    if (run->tb) {
        /* The log line's names for the losses, metrics.jsonl's for the rest. */
        static const char *const tags[] = {"Loss_D", "Loss_G", "D(x)", "D(G(z))", "D(G(z))_after_D_step",
                                           "img_per_s", "lr_g", "lr_d"};
        float values[] = {stats->loss_d, stats->loss_g, stats->d_x, stats->d_g_z1, stats->d_g_z2,
                          (float)img_per_s, (float)run->cfg->adam_g.lr, (float)run->cfg->adam_d.lr};
        tb_check(run, gan_tb_add_scalars(run->tb, it, 8, tags, values));
    }
    if (metrics_errno)
        return gan_error(GAN_ERR_IO, "%s/metrics.jsonl: write failed: %s", run->out_dir, strerror(metrics_errno));
    return GAN_OK;
}

static void progress(run_state *run)
{
    int64_t it = run->trainer->iteration;
    int width = 30;
    int64_t in_epoch = (it - 1) % run->iterations_per_epoch + 1;
    int filled = (int)(width * in_epoch / run->iterations_per_epoch);
    printf("\r\033[K[%lld/%lld] |", (long long)epoch_of(run, it - 1), (long long)run->epochs);
    for (int i = 0; i < width; i++)
        putchar(i < filled ? '#' : ' ');
    printf("| %lld/%lld", (long long)in_epoch, (long long)run->iterations_per_epoch);
    fflush(stdout);
}

/* GAN_DIST_DUMP=DIR: every rank writes its final state as DIR/rank<R>.safetensors (a checkpoint,
 * which holds every weight, buffer and Adam moment), to compare the ranks with cmp. */
static gan_status dump_rank_state(run_state *run)
{
    const char *dir = getenv("GAN_DIST_DUMP");
    if (!dir || !dir[0])
        return GAN_OK;
    char path[4300];
    snprintf(path, sizeof path, "%s/rank%d.safetensors", dir, run->dist ? run->dist->rank : 0);
    int64_t it = run->trainer->iteration;
    return gan_trainer_save_checkpoint(run->trainer, run->data, epoch_of(run, it), path);
}

/* The best-FID checkpoint, written and read back as the others are; never pruned (its name is not
 * ckpt_<iteration>). */
static gan_status save_best_fid(run_state *run)
{
    gan_checkpoint_text texts[FID_TRACK_TEXTS];
    int count = fid_track_texts(&run->fid, texts);
    const char *path = run->fid.best_path;
    int64_t it = run->trainer->iteration;
    GAN_TRY(gan_trainer_save_checkpoint_texts(run->trainer, run->data, epoch_of(run, it), path, texts, count));
    gan_checkpoint written;
    gan_status verified = gan_checkpoint_open(path, &written);
    if (verified != GAN_OK)
        return gan_error_prefix(verified, "the best-FID checkpoint just written does not read back: ");
    gan_checkpoint_close(&written);
    return GAN_OK;
}

/* On a terminal, where an evaluation is: FID of 10,000 samples takes minutes on the CPU. */
static void fid_progress(void *ctx, const char *generator, int done, int total)
{
    (void)ctx;
    printf("\r\033[KFID: %s, %d/%d samples", generator, done, total);
    fflush(stdout);
}

/* One FID evaluation on the writer: the log line, metrics.jsonl, TensorBoard, and best_fid when it
 * improved. */
static gan_status record_fid(run_state *run)
{
    fid_track_result r;
    GAN_TRY(fid_track_evaluate(&run->fid, run->trainer, run->progress_bar ? fid_progress : NULL, NULL, &r));
    if (r.improved)
        GAN_TRY(save_best_fid(run));
    run->fid_s += r.seconds;
    int64_t it = r.iteration;
    int64_t epoch = epoch_of(run, it - 1);
    int64_t in_epoch = (it - 1) % run->iterations_per_epoch + 1;
    const fid_track *f = &run->fid;
    char ema_text[64] = "";
    if (r.has_ema)
        snprintf(ema_text, sizeof ema_text, "\tFID_EMA: %.4f", r.fid_ema);
    if (run->progress_bar)
        fputs("\r\033[K", stdout);
    printf("[%lld/%lld][%lld/%lld]\tFID: %.4f%s\tbest %.4f (%s, iteration %lld)%s\t%d samples in %.1f s\n",
           (long long)epoch, (long long)run->epochs, (long long)in_epoch, (long long)run->iterations_per_epoch, r.fid,
           ema_text, f->best, r.has_ema ? "EMA" : "G", (long long)f->best_iteration,
           r.improved ? " -> checkpoints/best_fid.safetensors" : "", run->cfg->fid_samples, r.seconds);
    fflush(stdout);
    if (r.eps_added && !run->fid.eps_reported) {
        run->fid.eps_reported = true;
        fprintf(stderr, "gan: note: FID: the product of the covariances is singular (%d samples): %g added to their "
                        "diagonals, as pytorch-fid does\n", run->cfg->fid_samples, GAN_FID_EPS);
    }
    errno = 0;
    char ema_json[64] = "";
    if (r.has_ema)
        snprintf(ema_json, sizeof ema_json, ", \"fid_ema\": %.9g", r.fid_ema);
    fprintf(run->metrics,
            "{\"iteration\": %lld, \"epoch\": %lld, \"fid\": %.9g%s, \"best_fid\": %.9g, "
            "\"best_fid_iteration\": %lld, \"fid_samples\": %d, \"fid_s\": %.3f}\n",
            (long long)it, (long long)epoch, r.fid, ema_json, f->best, (long long)f->best_iteration,
            run->cfg->fid_samples, r.seconds);
    int metrics_errno = 0;
    if (fflush(run->metrics) != 0 || ferror(run->metrics))
        metrics_errno = errno ? errno : EIO;
    if (run->tb) {
        static const char *const tags[] = {"FID", "FID_EMA"};
        float values[] = {(float)r.fid, (float)r.fid_ema};
        tb_check(run, gan_tb_add_scalars(run->tb, it, r.has_ema ? 2 : 1, tags, values));
    }
    if (metrics_errno)
        return gan_error(GAN_ERR_IO, "%s/metrics.jsonl: write failed: %s", run->out_dir, strerror(metrics_errno));
    return GAN_OK;
}

/* FID at this iteration. On several ranks rank 0 alone evaluates (the others hold no network):
 * every rank first checks that the ranks' states agree (best_fid is a checkpoint that stands for
 * all of them), then the others wait in a barrier that sleeps (leaving the cores to rank 0) and
 * all agree on rank 0's result, so a failed evaluation stops every rank instead of leaving them in
 * the next iteration's all-reduce. */
static gan_status evaluate_fid(run_state *run)
{
    gan_step_stats stats;
    GAN_TRY(check_stats(run, &stats)); /* no FID of a model gone non-finite */
    GAN_TRY(check_ranks_agree(run));
    gan_status status = run->writer ? record_fid(run) : GAN_OK;
    if (run->ranks < 2)
        return status;
    GAN_TRY(gan_dist_barrier_sleeping(run->dist));
    return gan_dist_agree(run->dist, status);
}

static gan_status run_loop(run_state *run, gan_run_result *result)
{
    gan_trainer *t = run->trainer;
    const gan_config *cfg = run->cfg;
    gan_step_stats stats;
    while (t->iteration < run->total_iterations) {
        GAN_TRY(gan_trainer_step(t));
        int64_t it = t->iteration;
        bool last = it == run->total_iterations;
        if (it % cfg->log_every == 0 || last) {
            GAN_TRY(check_stats(run, &stats));
            GAN_TRY(log_line(run, &stats));
        } else if (run->progress_bar) {
            progress(run);
        }
        bool stop = stop_signal != 0;
        if (run->ranks > 1) { /* a signal reaches the ranks at different steps: all stop at one */
            GAN_TRY(gan_dist_any(run->dist, stop, &stop));
            if (stop && !stop_signal)
                stop_signal = SIGTERM;
        }
        if (cfg->fid_every && it % cfg->fid_every == 0 && !last && !stop)
            GAN_TRY(evaluate_fid(run));
        if (cfg->sample_every && it % cfg->sample_every == 0 && !last) {
            char name[64];
            snprintf(name, sizeof name, "iter_%010lld", (long long)it);
            GAN_TRY(save_samples(run, name));
        }
        if (stop) {
            GAN_TRY(check_stats(run, &stats));
            GAN_TRY(save_checkpoint(run));
            if (run->progress_bar)
                putchar('\n');
            if (run->writer)
                fprintf(stderr, "gan: %s after iteration %lld: wrote %s\n",
                        stop_signal == SIGINT   ? "interrupted"
                        : stop_signal == SIGHUP ? "hung up (the terminal closed)"
                        : stop_signal == SIGUSR1 ? "stopped by SIGUSR1"
                                                : "terminated",
                        (long long)it, run->last_checkpoint);
            *result = GAN_RUN_INTERRUPTED;
            return GAN_OK;
        }
        if (cfg->checkpoint_every && it % cfg->checkpoint_every == 0 && !last) {
            GAN_TRY(check_stats(run, &stats));
            GAN_TRY(save_checkpoint(run));
        }
    }
    GAN_TRY(check_stats(run, &stats));
    if (cfg->fid_every)
        GAN_TRY(evaluate_fid(run));
    GAN_TRY(save_samples(run, "final"));
    GAN_TRY(save_checkpoint(run));
    GAN_TRY(dump_rank_state(run));
    *result = GAN_RUN_FINISHED;
    return GAN_OK;
}

/* A new run never overwrites: its directory must hold no checkpoints. */
static gan_status refuse_existing_checkpoints(const run_state *run)
{
    if (run_dir_has_checkpoints(&run->paths))
        return gan_error(GAN_ERR_ARG,
                         "%s already holds checkpoints: continue it with --resume %s, or choose "
                         "another --out (nothing was overwritten)",
                         run->out_dir, run->out_dir);
    return GAN_OK;
}

/* The data source, its first batch decoded (and the source put back where it was): bad data is
 * found before anything is written. */
static gan_status open_data(run_state *run)
{
    int part = run->ranks > 1 ? run->dist->rank : 0;
    GAN_TRY(gan_data_source_open_part(run->cfg, part, run->ranks, &run->data));
    gan_data_source *src = run->data;
    size_t sample = (size_t)src->channels * src->height * src->width * (src->is_float ? sizeof(float) : 1);
    void *batch = malloc((size_t)(run->cfg->batch_size / run->ranks) * sample);
    if (!batch)
        return gan_error(GAN_ERR_NOMEM, "out of host memory for a batch");
    gan_data_position start;
    gan_status status = GAN_OK;
    GAN_CHECK(src->get_position(src, &start));
    GAN_CHECK(src->next_batch(src, batch));
    GAN_CHECK(src->set_position(src, &start));
cleanup:
    free(batch);
    return status;
}

/* The run directory, owned by this process from here on (run_dir.h): a new run checks its data
 * before the directory is made; a resume takes the newest checkpoint that verifies, moving newer
 * damaged ones aside. What a killed run left half-written goes. */
static gan_status take_run_directory(run_state *run, bool resume, char *resume_path, size_t bytes)
{
    GAN_TRY(gan_train_check_batch(run->cfg, run->ranks));
    if (!run->writer) /* rank 0 owns the directory; the others only read their data */
        return open_data(run);
    if (resume) {
        GAN_TRY(run_dir_lock(&run->paths, &run->lock_fd));
        GAN_TRY(run_dir_select_checkpoint(&run->paths, true, resume_path, bytes));
        GAN_TRY(open_data(run));
    } else {
        GAN_TRY(refuse_existing_checkpoints(run));
        GAN_TRY(open_data(run));
        GAN_TRY(run_dir_create_root(&run->paths));
        GAN_TRY(run_dir_lock(&run->paths, &run->lock_fd));
        GAN_TRY(refuse_existing_checkpoints(run)); /* again, now that no one else can write them */
    }
    run_dir_remove_stale_temporaries(&run->paths);
    return GAN_OK;
}

static gan_status open_backend(run_state *run, const gan_run_options *options)
{
    char why[512] = "";
    gan_backend_options backend_options = gan_backend_options_for_config(run->cfg);
    const gan_dist *dist = run->dist;
    if (dist && dist->active) {
        backend_options.dist = dist;
        /* one GPU per rank: the local rank's, as CUDA_VISIBLE_DEVICES presents them */
        if (dist->local_size > 1) {
            if (!strncmp(options->device, "cuda:", 5))
                return gan_error(GAN_ERR_ARG,
                                 "--device %s with %d ranks on this machine: each rank takes the GPU of its "
                                 "local rank (choose the GPUs with CUDA_VISIBLE_DEVICES)",
                                 options->device, dist->local_size);
            backend_options.device_index = dist->local_rank;
        }
    }
    GAN_TRY(gan_backend_open(options->device, &backend_options, &run->backend, why, sizeof why));
    if (why[0] && run->writer)
        fprintf(stderr, "gan: %s\n", why);
    return GAN_OK;
}

/* Every rank on the same kind of backend (--device auto could give one machine's ranks the CPU and
 * another's CUDA: their all-reduces would not meet). */
static gan_status check_same_backend(run_state *run)
{
    if (run->ranks < 2)
        return GAN_OK;
    double *kinds = calloc((size_t)run->ranks, sizeof *kinds);
    if (!kinds)
        return gan_error(GAN_ERR_NOMEM, "out of memory");
    gan_status status = gan_dist_allgather_double(run->dist, (double)run->backend->kind, kinds);
    for (int r = 1; status == GAN_OK && r < run->ranks; r++)
        if (kinds[r] != kinds[0]) {
            gan_dist_note_shared_failure(run->dist);
            status = gan_error(GAN_ERR_UNSUPPORTED,
                               "rank %d runs on %s and rank 0 on %s: every rank of a run needs the same backend "
                               "(give --device cpu or --device cuda)",
                               r, kinds[r] == GAN_BACKEND_CUDA ? "cuda" : "cpu",
                               kinds[0] == GAN_BACKEND_CUDA ? "cuda" : "cpu");
        }
    free(kinds);
    return status;
}

/* The data, the trainer (with the checkpoint it resumes from), and the run's length. */
static gan_status open_trainer(run_state *run, const gan_run_options *options, const char *resume_path)
{
    const gan_config *cfg = run->cfg;
    FILE *report = options->quiet || !run->writer ? NULL : stdout;
    GAN_TRY(gan_trainer_create(cfg, run->backend, run->data, report, &run->trainer));
    if (options->resume) {
        GAN_TRY(gan_trainer_load_checkpoint(run->trainer, run->data, resume_path, NULL));
        if (run->writer)
            printf("resumed from %s at iteration %lld\n", resume_path, (long long)run->trainer->iteration);
        if (run->writer && run->trainer->ema_started_from_g)
            printf("train.ema_decay = %g: %s holds no EMA of G; the average starts from its G\n", cfg->ema_decay,
                   resume_path);
        snprintf(run->last_checkpoint, sizeof run->last_checkpoint, "%s", resume_path);
    }
    run->iterations_per_epoch = run->data->batches_per_epoch / cfg->d_steps;
    if (run->iterations_per_epoch < 1)
        run->iterations_per_epoch = 1;
    run->total_iterations = cfg->iterations ? cfg->iterations
                                            : (int64_t)cfg->epochs * run->iterations_per_epoch;
    run->epochs = (run->total_iterations + run->iterations_per_epoch - 1) / run->iterations_per_epoch;
    run->last_checked = run->trainer->iteration;
    run->start_iteration = run->trainer->iteration;
    /* (mpirun hands a rank's stdout a terminal of its own, shared by every rank) */
    run->progress_bar = run->writer && !(run->dist && run->dist->mpi) && isatty(STDOUT_FILENO);
    return GAN_OK;
}

/* The directories, config.ini, metrics.jsonl (on resume cut back to the checkpoint's iteration,
 * then appended to) and a new TensorBoard events file (on resume too: TensorBoard merges a
 * directory's; it starts with a SessionLog START at the first step the resumed run makes, so
 * TensorBoard drops the earlier files' events of the steps the run makes again). */
static gan_status open_outputs(run_state *run, bool resume)
{
    if (!run->writer)
        return GAN_OK;
    GAN_TRY(run_dir_create(&run->paths));
    GAN_TRY(run_dir_write_config(&run->paths, run->cfg));
    if (resume)
        GAN_TRY(run_dir_truncate_metrics(&run->paths, run->trainer->iteration));
    char path[4200];
    snprintf(path, sizeof path, "%s/metrics.jsonl", run->paths.root);
    run->metrics = fopen(path, resume ? "a" : "w");
    if (!run->metrics)
        return gan_error(GAN_ERR_IO, "%s: %s", path, strerror(errno));
    GAN_TRY(gan_tb_writer_open(run->paths.root, &run->tb));
    if (resume)
        GAN_TRY(gan_tb_add_session_start(run->tb, run->trainer->iteration + 1)); /* its first new step */
    return GAN_OK;
}

/* The ranks of a data-parallel run, in the log: how the batch is shared out and how batch norm
 * sees it. */
static void print_data_parallel(const run_state *run)
{
    const gan_trainer *t = run->trainer;
    if (!t->data_parallel)
        return;
    printf("data parallel: %d rank%s, batch %d = %d x %d per rank; gradients summed over the ranks before "
           "each Adam step\n",
           t->world_size, t->world_size == 1 ? "" : "s", run->cfg->batch_size, t->world_size, t->batch);
    if (run->cfg->sync_bn)
        printf("batch norm: statistics of the whole batch of %d, summed over the ranks (train.sync_bn)\n",
               run->cfg->batch_size);
    else
        printf("batch norm: train.sync_bn = false: each rank normalises its %d samples by their own statistics "
               "(DDP's default); the running statistics are averaged over the ranks after every iteration\n",
               t->batch);
}

/* The loop with SIGINT, SIGTERM and SIGHUP (a closed terminal) turned into a checkpoint and a clean
 * stop (and SIGUSR1 on several ranks). */
static gan_status train(run_state *run, gan_run_result *result)
{
    gan_backend *be = run->backend;
    if (run->writer) {
        printf("training %s on %s (%s, %sdeterministic): %lld iterations (%lld per epoch), batch %d, seed "
               "%llu -> %s\n",
               run->cfg->name, be->name, gan_precision_name(be->options.precision),
               be->options.deterministic ? "" : "not ", (long long)run->total_iterations,
               (long long)run->iterations_per_epoch, run->cfg->batch_size, (unsigned long long)run->cfg->seed,
               run->out_dir);
        print_data_parallel(run);
        int stored_g = gan_model_stored_edges(run->trainer->g), stored_d = gan_model_stored_edges(run->trainer->d);
        if (stored_g || stored_d)
            printf("activations: %d of G's and %d of D's layer outputs stored %s NHWC between layers "
                   "(GAN_CUDA_STORAGE=never keeps them FP32 NCHW)\n", stored_g, stored_d,
                   be->edge_storage == GAN_STORAGE_BF16_NHWC ? "BF16" : "FP32");
        if (run->trainer->data && !run->trainer->data->is_float && gan_model_takes_images(run->trainer->d))
            printf("real batch: converted on the device straight into the NHWC copy of D's first layer's input "
                   "(GAN_CUDA_KEEP_IMAGES=never: through FP32 NCHW)\n");
        if (run->trainer->g->side_stream || run->trainer->d->side_stream)
            printf("side stream: the weight gradients beside the input gradients%s (GAN_CUDA_SIDE_STREAM=never: "
                   "one stream)\n",
                   run->trainer->g->side_stream && !be->allreduce_sum ? ", G's forward beside D on the real batch"
                                                                       : "");
        fflush(stdout);
    }
    struct sigaction action, old_int, old_term, old_hup, old_usr1;
    memset(&action, 0, sizeof action);
    action.sa_handler = on_stop_signal;
    sigemptyset(&action.sa_mask);
    sigaction(SIGINT, &action, &old_int);
    sigaction(SIGTERM, &action, &old_term);
    sigaction(SIGHUP, &action, &old_hup);
    bool usr1 = run->dist && run->dist->mpi; /* mpirun forwards SIGUSR1 to every rank */
    if (usr1)
        sigaction(SIGUSR1, &action, &old_usr1);
    stop_signal = 0;
    run->start_s = gan_now_s();
    gan_status status = run_loop(run, result);
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    sigaction(SIGHUP, &old_hup, NULL);
    if (usr1)
        sigaction(SIGUSR1, &old_usr1, NULL);
    GAN_TRY(status);
    if (run->writer)
        printf("%s: %lld iterations in %.1f s; samples in %s, checkpoint %s\n",
           *result == GAN_RUN_FINISHED ? "done" : "stopped",
           (long long)(run->trainer->iteration - run->start_iteration), gan_now_s() - run->start_s,
           run->paths.samples, run->last_checkpoint);
    return GAN_OK;
}

/* Releases everything the run opened; a failure to finish the events file only warns (the run's
 * own result stands). A rank of several that failed leaves the trainer and the backend to the
 * process's end: MPI_Abort comes next (cmd_train.c), and freeing device memory or destroying the
 * NCCL communicator would first wait for all-reduces the other ranks still have queued (cudaFree
 * waits for the device; NCCL's destroy synchronises with its peers), so the job would hang
 * instead of ending. */
static void close_run(run_state *run, gan_status status)
{
    fid_track_close(&run->fid);
    if (run->metrics)
        fclose(run->metrics);
    if (gan_tb_writer_close(run->tb) != GAN_OK && status == GAN_OK)
        fprintf(stderr, "gan: warning: %s\n", gan_error_message());
    if (status != GAN_OK && run->ranks > 1) {
        run_dir_unlock(run->lock_fd);
        return;
    }
    gan_trainer_destroy(run->trainer);
    if (run->data)
        run->data->close(run->data);
    if (run->backend)
        run->backend->destroy(run->backend);
    run_dir_unlock(run->lock_fd); /* last: the directory is released when nothing writes to it */
}

gan_status gan_run_train(const gan_config *cfg_in, const gan_run_options *options,
                         gan_run_result *result)
{
    *result = GAN_RUN_FINISHED;
    gan_config cfg = *cfg_in;
    char resume_path[4300] = "";
    GAN_TRY(gan_config_validate(&cfg));
    if (!options->out_dir || !options->out_dir[0])
        return gan_error(GAN_ERR_ARG, "the run directory (--out) is empty");
    const gan_dist *dist = options->dist;
    run_state run = {.cfg = &cfg, .dist = dist, .writer = !dist || dist->rank == 0,
                     .ranks = dist && dist->active ? dist->world_size : 1, .out_dir = options->out_dir,
                     .lock_fd = -1};
    run_paths_init(&run.paths, options->out_dir);
    gan_status status = GAN_OK;
    /* Each start-up step ends with every rank knowing whether any failed (one process: a no-op). */
    /* FID's files (rank 0's), before the run directory is made: a missing one stops the run here */
    GAN_CHECK(gan_dist_agree(dist, fid_track_open(&run.fid, &cfg, run.writer)));
    /* The device too: one that cannot be had leaves no run directory behind. */
    GAN_CHECK(gan_dist_agree(dist, open_backend(&run, options)));
    GAN_CHECK(check_same_backend(&run));
    GAN_CHECK(gan_dist_agree(dist, take_run_directory(&run, options->resume, resume_path, sizeof resume_path)));
    if (options->resume) /* rank 0 chose the checkpoint: every rank loads that one */
        GAN_CHECK(gan_dist_broadcast(dist, resume_path, sizeof resume_path, 0));
    /* The convolution algorithms chosen before (cache, checkpoint), then what planning chose,
     * kept by the writer (conv_algorithms.h). */
    GAN_CHECK(gan_dist_agree(dist, conv_algorithms_reuse(run.backend, options->resume ? resume_path : NULL,
                                                         run.writer ? stderr : NULL)));
    GAN_CHECK(gan_dist_agree(dist, open_trainer(&run, options, resume_path)));
    /* FID's network and memory (rank 0's): another network's weights stop the run here */
    GAN_CHECK(gan_dist_agree(dist, fid_track_start(&run.fid, run.backend, run.paths.checkpoints, options->resume,
                                                   options->quiet || !run.writer ? NULL : stdout)));
    GAN_CHECK(gan_dist_agree(dist, run.writer ? conv_algorithms_keep(run.backend, run.paths.root, stderr)
                                              : GAN_OK));
    GAN_CHECK(gan_dist_agree(dist, open_outputs(&run, options->resume)));
    GAN_CHECK(train(&run, result));
cleanup:
    close_run(&run, status);
    return status;
}
