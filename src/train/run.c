/* `gan train`: the loop around gan_trainer_step. */
#include "gan/run.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gan/backend_select.h"
#include "gan/checkpoint.h"
#include "gan/clock.h"
#include "gan/image.h"
#include "gan/npy.h"
#include "gan/tb_events.h"

static volatile sig_atomic_t stop_signal = 0;

static void on_stop_signal(int signo) { stop_signal = signo; }

static gan_status make_dir(const char *path)
{
    char partial[4096];
    size_t len = strlen(path);
    if (len >= sizeof partial)
        return gan_error(GAN_ERR_ARG, "%s: path too long", path);
    memcpy(partial, path, len + 1);
    for (size_t i = 1; i <= len; i++) {
        if (partial[i] == '/' || partial[i] == '\0') {
            char saved = partial[i];
            partial[i] = '\0';
            if (mkdir(partial, 0755) != 0 && errno != EEXIST)
                return gan_error(GAN_ERR_IO, "%s: cannot create directory: %s", partial, strerror(errno));
            partial[i] = saved;
        }
    }
    return GAN_OK;
}

/* Checkpoint files are checkpoints/ckpt_<iteration, 10 digits>.safetensors. */
static int checkpoint_iteration(const char *name, long long *iteration)
{
    int consumed = 0;
    if (sscanf(name, "ckpt_%lld.safetensors%n", iteration, &consumed) == 1 &&
        consumed == (int)strlen(name))
        return 1;
    return 0;
}

/* Lists checkpoint iterations in dir (ascending); returns the count (at most `max`). */
static int list_checkpoints(const char *dir, long long *iterations, int max)
{
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    int n = 0;
    struct dirent *entry;
    while ((entry = readdir(d)) && n < max) {
        long long it;
        if (checkpoint_iteration(entry->d_name, &it))
            iterations[n++] = it;
    }
    closedir(d);
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && iterations[j - 1] > iterations[j]; j--) {
            long long tmp = iterations[j];
            iterations[j] = iterations[j - 1];
            iterations[j - 1] = tmp;
        }
    return n;
}

enum { MAX_LISTED_CHECKPOINTS = 100000 };

gan_status gan_run_latest_checkpoint(const char *run_dir, char *path, size_t path_bytes)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/checkpoints", run_dir);
    struct stat st;
    if (stat(run_dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return gan_error(GAN_ERR_IO, "%s: no such run directory", run_dir);
    long long *its = malloc(MAX_LISTED_CHECKPOINTS * sizeof *its);
    if (!its)
        return gan_error(GAN_ERR_NOMEM, "out of memory");
    int n = list_checkpoints(dir, its, MAX_LISTED_CHECKPOINTS);
    long long last = n ? its[n - 1] : -1;
    free(its);
    if (n == 0)
        return gan_error(GAN_ERR_IO, "%s: no checkpoint (ckpt_*.safetensors) to resume from", dir);
    snprintf(path, path_bytes, "%s/ckpt_%010lld.safetensors", dir, last);
    return GAN_OK;
}

static void prune_checkpoints(const char *dir, int keep)
{
    long long *its = malloc(MAX_LISTED_CHECKPOINTS * sizeof *its);
    if (!its)
        return;
    int n = list_checkpoints(dir, its, MAX_LISTED_CHECKPOINTS);
    for (int i = 0; i + keep < n; i++) {
        char path[4200];
        snprintf(path, sizeof path, "%s/ckpt_%010lld.safetensors", dir, its[i]);
        unlink(path);
    }
    free(its);
}

typedef struct run_state {
    gan_trainer *trainer;
    gan_data_source *data;
    const gan_config *cfg;
    const char *out_dir;
    char checkpoint_dir[4096];
    char last_checkpoint[4200];
    FILE *metrics;
    gan_tb_writer *tb;          /* TensorBoard events; NULL after a failed write */
    int64_t total_iterations;
    int64_t iterations_per_epoch;
    int64_t epochs;
    int64_t last_checked;       /* iteration of the last finite check */
    double start_s;
    int64_t start_iteration;
    bool progress_bar;
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

static gan_status save_checkpoint(run_state *run)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/ckpt_%010lld.safetensors", run->checkpoint_dir,
             (long long)run->trainer->iteration);
    GAN_TRY(gan_trainer_save_checkpoint(run->trainer, run->data, epoch_of(run, run->trainer->iteration), path));
    snprintf(run->last_checkpoint, sizeof run->last_checkpoint, "%s", path);
    prune_checkpoints(run->checkpoint_dir, run->cfg->keep_checkpoints);
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
    gan_status status = gan_sample_grid_png(images, run->trainer->sample_batch, s.c, s.h, s.w, 8, 2, &png,
                                            &png_size, &grid_w, &grid_h);
    if (status == GAN_OK)
        status = gan_tb_add_png(run->tb, run->trainer->iteration, "samples/fixed_noise", png, png_size,
                                grid_w, grid_h, 3);
    free(png);
    tb_check(run, status);
}

static gan_status save_samples(run_state *run, const char *name)
{
    gan_trainer *t = run->trainer;
    gan_shape s = t->g->output_shape;
    size_t per_image = gan_shape_count(s);
    float *images = malloc((size_t)t->sample_batch * per_image * sizeof(float));
    if (!images)
        return gan_error(GAN_ERR_NOMEM, "out of memory for the sample grid");
    gan_status status = gan_trainer_generate(t, t->fixed_z, t->sample_batch,
                                             run->cfg->sample_bn == GAN_SAMPLE_BN_BATCH, images);
    char path[4200];
    bool image = s.c == 1 || s.c == 3;
    /* Images become a grid; other samples (the toy set's 2-d points) their raw values. */
    snprintf(path, sizeof path, "%s/samples/%s.%s", run->out_dir, name, image ? "png" : "npy");
    if (status == GAN_OK && image)
        status = gan_write_sample_grid(path, images, t->sample_batch, s.c, s.h, s.w, 8, 2);
    if (status == GAN_OK && image && run->tb)
        tb_add_grid(run, images, s);
    if (status == GAN_OK && !image) {
        int64_t shape[4] = {t->sample_batch, s.c, s.h, s.w};
        status = gan_npy_write_f32(path, images, 4, shape);
    }
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
    gan_trainer *t = run->trainer;
    int64_t it = t->iteration;
    double elapsed = gan_now_s() - run->start_s;
    int64_t done = it - run->start_iteration;
    double img_per_s = elapsed > 0 ? (double)done * run->cfg->batch_size * run->cfg->d_steps / elapsed : 0.0;
    double eta = done > 0 ? elapsed / (double)done * (double)(run->total_iterations - it) : 0.0;
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
    fprintf(run->metrics,
            "{\"iteration\": %lld, \"epoch\": %lld, \"loss_d\": %.9g, \"loss_g\": %.9g, "
            "\"d_x\": %.9g, \"d_g_z1\": %.9g, \"d_g_z2\": %.9g, \"img_per_s\": %.1f, "
            "\"elapsed_s\": %.3f, \"lr_g\": %.9g, \"lr_d\": %.9g}\n",
            (long long)it, (long long)epoch, stats->loss_d, stats->loss_g, stats->d_x,
            stats->d_g_z1, stats->d_g_z2, img_per_s, elapsed, run->cfg->adam_g.lr,
            run->cfg->adam_d.lr);
    fflush(run->metrics);
    if (run->tb) {
        /* The log line's names for the losses, metrics.jsonl's for the rest. */
        static const char *const tags[] = {"Loss_D", "Loss_G", "D(x)", "D(G(z))", "D(G(z))_after_D_step",
                                           "img_per_s", "lr_g", "lr_d"};
        float values[] = {stats->loss_d, stats->loss_g, stats->d_x, stats->d_g_z1, stats->d_g_z2,
                          (float)img_per_s, (float)run->cfg->adam_g.lr, (float)run->cfg->adam_d.lr};
        tb_check(run, gan_tb_add_scalars(run->tb, it, 8, tags, values));
    }
    return ferror(run->metrics) ? gan_error(GAN_ERR_IO, "%s/metrics.jsonl: write failed", run->out_dir)
                                : GAN_OK;
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

static gan_status write_resolved_config(const gan_config *cfg, const char *out_dir)
{
    char path[4200], tmp[4300];
    snprintf(path, sizeof path, "%s/config.ini", out_dir);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f)
        return gan_error(GAN_ERR_IO, "%s: %s", tmp, strerror(errno));
    fprintf(f, "; the resolved config of this run (every key, with the overrides applied)\n");
    gan_status status = gan_config_write(cfg, f);
    if (fclose(f) != 0 && status == GAN_OK)
        status = gan_error(GAN_ERR_IO, "%s: %s", tmp, strerror(errno));
    if (status == GAN_OK && rename(tmp, path) != 0)
        status = gan_error(GAN_ERR_IO, "%s: %s", path, strerror(errno));
    return status;
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
        if (cfg->sample_every && it % cfg->sample_every == 0 && !last) {
            char name[64];
            snprintf(name, sizeof name, "iter_%010lld", (long long)it);
            GAN_TRY(save_samples(run, name));
        }
        if (stop_signal) {
            GAN_TRY(check_stats(run, &stats));
            GAN_TRY(save_checkpoint(run));
            if (run->progress_bar)
                putchar('\n');
            fprintf(stderr, "gan: %s after iteration %lld: wrote %s\n",
                    stop_signal == SIGINT ? "interrupted" : "terminated", (long long)it,
                    run->last_checkpoint);
            *result = GAN_RUN_INTERRUPTED;
            return GAN_OK;
        }
        if (cfg->checkpoint_every && it % cfg->checkpoint_every == 0 && !last) {
            GAN_TRY(check_stats(run, &stats));
            GAN_TRY(save_checkpoint(run));
        }
    }
    GAN_TRY(check_stats(run, &stats));
    GAN_TRY(save_samples(run, "final"));
    GAN_TRY(save_checkpoint(run));
    *result = GAN_RUN_FINISHED;
    return GAN_OK;
}

gan_status gan_run_train(const gan_config *cfg_in, const gan_run_options *options,
                         gan_run_result *result)
{
    *result = GAN_RUN_FINISHED;
    gan_config cfg_storage = *cfg_in;
    gan_config *cfg = &cfg_storage;
    char resume_path[4200] = "";
    if (options->resume) {
        GAN_TRY(gan_run_latest_checkpoint(options->out_dir, resume_path, sizeof resume_path));
    } else {
        char dir[4200];
        long long its[1];
        snprintf(dir, sizeof dir, "%s/checkpoints", options->out_dir);
        if (list_checkpoints(dir, its, 1) > 0)
            return gan_error(GAN_ERR_ARG,
                             "%s already holds checkpoints: continue it with --resume %s, or choose "
                             "another --out (nothing was overwritten)",
                             options->out_dir, options->out_dir);
    }
    GAN_TRY(gan_config_validate(cfg));

    gan_backend *be = NULL;
    char why[512] = "";
    gan_backend_options backend_options = gan_backend_options_for_config(cfg);
    GAN_TRY(gan_backend_open(options->device, &backend_options, &be, why, sizeof why));
    if (why[0])
        fprintf(stderr, "gan: %s\n", why);

    gan_data_source *data = NULL;
    gan_trainer *trainer = NULL;
    run_state run = {0};
    gan_status status = gan_data_source_open_for_config(cfg, &data);
    if (status == GAN_OK)
        status = gan_trainer_create(cfg, be, data, options->quiet ? NULL : stdout, &trainer);
    int64_t epoch = 0;
    if (status == GAN_OK && options->resume) {
        status = gan_trainer_load_checkpoint(trainer, data, resume_path, &epoch);
        if (status == GAN_OK)
            printf("resumed from %s at iteration %lld\n", resume_path, (long long)trainer->iteration);
    }
    run.trainer = trainer;
    run.data = data;
    run.cfg = cfg;
    run.out_dir = options->out_dir;
    snprintf(run.checkpoint_dir, sizeof run.checkpoint_dir, "%s/checkpoints", options->out_dir);
    if (options->resume)
        snprintf(run.last_checkpoint, sizeof run.last_checkpoint, "%s", resume_path);
    if (status == GAN_OK) {
        run.iterations_per_epoch = data->batches_per_epoch / cfg->d_steps;
        if (run.iterations_per_epoch < 1)
            run.iterations_per_epoch = 1;
        run.total_iterations = cfg->iterations ? cfg->iterations
                                               : (int64_t)cfg->epochs * run.iterations_per_epoch;
        run.epochs = (run.total_iterations + run.iterations_per_epoch - 1) / run.iterations_per_epoch;
        run.last_checked = trainer->iteration;
        run.start_iteration = trainer->iteration;
        run.progress_bar = isatty(STDOUT_FILENO);
        status = make_dir(options->out_dir);
    }
    char samples_dir[4200];
    snprintf(samples_dir, sizeof samples_dir, "%s/samples", options->out_dir);
    if (status == GAN_OK)
        status = make_dir(samples_dir);
    if (status == GAN_OK)
        status = make_dir(run.checkpoint_dir);
    if (status == GAN_OK)
        status = write_resolved_config(cfg, options->out_dir);
    if (status == GAN_OK) {
        char path[4200];
        snprintf(path, sizeof path, "%s/metrics.jsonl", options->out_dir);
        run.metrics = fopen(path, options->resume ? "a" : "w");
        if (!run.metrics)
            status = gan_error(GAN_ERR_IO, "%s: %s", path, strerror(errno));
    }
    if (status == GAN_OK) /* a new events file on resume too: TensorBoard merges a directory's */
        status = gan_tb_writer_open(options->out_dir, &run.tb);
    if (status == GAN_OK) {
        char backend_text[96];
        snprintf(backend_text, sizeof backend_text, "%s (%s, %sdeterministic)", be->name,
                 gan_precision_name(be->options.precision), be->options.deterministic ? "" : "not ");
        printf("training %s on %s: %lld iterations (%lld per epoch), batch %d, seed %llu -> %s\n",
               cfg->name, backend_text, (long long)run.total_iterations,
               (long long)run.iterations_per_epoch, cfg->batch_size, (unsigned long long)cfg->seed,
               options->out_dir);
        fflush(stdout);
        struct sigaction action, old_int, old_term;
        memset(&action, 0, sizeof action);
        action.sa_handler = on_stop_signal;
        sigemptyset(&action.sa_mask);
        sigaction(SIGINT, &action, &old_int);
        sigaction(SIGTERM, &action, &old_term);
        stop_signal = 0;
        run.start_s = gan_now_s();
        status = run_loop(&run, result);
        sigaction(SIGINT, &old_int, NULL);
        sigaction(SIGTERM, &old_term, NULL);
        double seconds = gan_now_s() - run.start_s;
        if (status == GAN_OK) {
            printf("%s: %lld iterations in %.1f s; samples in %s/samples, checkpoint %s\n",
                   *result == GAN_RUN_FINISHED ? "done" : "stopped",
                   (long long)(trainer->iteration - run.start_iteration), seconds, options->out_dir,
                   run.last_checkpoint);
        }
    }
    if (run.metrics)
        fclose(run.metrics);
    gan_status tb_status = gan_tb_writer_close(run.tb);
    if (tb_status != GAN_OK && status == GAN_OK)
        fprintf(stderr, "gan: warning: %s\n", gan_error_message());
    gan_trainer_destroy(trainer);
    if (data)
        data->close(data);
    be->destroy(be);
    return status;
}
