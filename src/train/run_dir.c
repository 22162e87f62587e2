/* The run directory's files: see run_dir.h. */
#include "train/run_dir.h"

#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gan/run.h"

void run_paths_init(run_paths *paths, const char *root)
{
    snprintf(paths->root, sizeof paths->root, "%s", root);
    snprintf(paths->checkpoints, sizeof paths->checkpoints, "%s/checkpoints", root);
    snprintf(paths->samples, sizeof paths->samples, "%s/samples", root);
}

/* mkdir -p */
static gan_status make_dir(const char *path)
{
    char partial[4200];
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

gan_status run_dir_create(const run_paths *paths)
{
    GAN_TRY(make_dir(paths->root));
    GAN_TRY(make_dir(paths->samples));
    return make_dir(paths->checkpoints);
}

void run_dir_checkpoint_path(const run_paths *paths, int64_t iteration, char *path, size_t bytes)
{
    snprintf(path, bytes, "%s/ckpt_%010lld.safetensors", paths->checkpoints, (long long)iteration);
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
    run_paths paths;
    run_paths_init(&paths, run_dir);
    struct stat st;
    if (stat(run_dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return gan_error(GAN_ERR_IO, "%s: no such run directory", run_dir);
    long long *its = malloc(MAX_LISTED_CHECKPOINTS * sizeof *its);
    if (!its)
        return gan_error(GAN_ERR_NOMEM, "out of memory");
    int n = list_checkpoints(paths.checkpoints, its, MAX_LISTED_CHECKPOINTS);
    long long last = n ? its[n - 1] : -1;
    free(its);
    if (n == 0)
        return gan_error(GAN_ERR_IO, "%s: no checkpoint (ckpt_*.safetensors) to resume from",
                         paths.checkpoints);
    run_dir_checkpoint_path(&paths, last, path, path_bytes);
    return GAN_OK;
}

bool run_dir_has_checkpoints(const run_paths *paths)
{
    long long its[1];
    return list_checkpoints(paths->checkpoints, its, 1) > 0;
}

void run_dir_prune_checkpoints(const run_paths *paths, int keep)
{
    long long *its = malloc(MAX_LISTED_CHECKPOINTS * sizeof *its);
    if (!its)
        return;
    int n = list_checkpoints(paths->checkpoints, its, MAX_LISTED_CHECKPOINTS);
    for (int i = 0; i + keep < n; i++) {
        char path[4300];
        run_dir_checkpoint_path(paths, its[i], path, sizeof path);
        unlink(path);
    }
    free(its);
}

gan_status run_dir_write_config(const run_paths *paths, const gan_config *cfg)
{
    char path[4200], tmp[4300];
    snprintf(path, sizeof path, "%s/config.ini", paths->root);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f)
        return gan_error(GAN_ERR_IO, "%s: %s", tmp, strerror(errno));
    fprintf(f, "; the resolved config of this run (every key, with the overrides applied)\n");
    gan_status status = gan_config_write(cfg, f);
    if (fclose(f) != 0 && status == GAN_OK)
        status = gan_error(GAN_ERR_IO, "%s: %s", tmp, strerror(errno));
    GAN_TRY(status);
    if (rename(tmp, path) != 0)
        return gan_error(GAN_ERR_IO, "%s: %s", path, strerror(errno));
    return GAN_OK;
}
