/* The run directory's files: see run_dir.h. */
#include "train/run_dir.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gan/checkpoint.h"
#include "gan/run.h"

void run_paths_init(run_paths *paths, const char *root)
{
    snprintf(paths->root, sizeof paths->root, "%s", root);
    snprintf(paths->checkpoints, sizeof paths->checkpoints, "%s/checkpoints", root);
    snprintf(paths->samples, sizeof paths->samples, "%s/samples", root);
}

/* mkdir -p. A name that exists must be a directory we can write into: a regular file called
 * checkpoints (or samples) would otherwise be found only when the first checkpoint is written,
 * possibly hours into the run. */
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
            if (mkdir(partial, 0755) != 0) {
                struct stat st;
                if (errno != EEXIST)
                    return gan_error(GAN_ERR_IO, "%s: cannot create directory: %s", partial, strerror(errno));
                if (stat(partial, &st) != 0 || !S_ISDIR(st.st_mode))
                    return gan_error(GAN_ERR_IO, "%s exists and is not a directory: move it away or choose "
                                                 "another --out",
                                     partial);
            }
            partial[i] = saved;
        }
    }
    if (access(path, W_OK | X_OK) != 0)
        return gan_error(GAN_ERR_IO, "%s: cannot write into this directory: %s", path, strerror(errno));
    return GAN_OK;
}

gan_status run_dir_create_root(const run_paths *paths) { return make_dir(paths->root); }

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

/* The checkpoint files gan writes are checkpoints/ckpt_<iteration>.safetensors with the iteration
 * as %010lld prints it. Only those names count: listed, chosen for --resume, pruned. A name of
 * another spelling (ckpt_99.safetensors, ckpt_+5.safetensors, *.corrupt) is someone else's and left
 * alone. */
static bool checkpoint_iteration(const char *name, long long *iteration)
{
    const char *digits = name + 5;
    if (strncmp(name, "ckpt_", 5) || !isdigit((unsigned char)digits[0]))
        return false;
    char *end = NULL;
    errno = 0;
    long long value = strtoll(digits, &end, 10);
    if (errno || strcmp(end, ".safetensors"))
        return false;
    char canonical[64];
    snprintf(canonical, sizeof canonical, "ckpt_%010lld.safetensors", value);
    if (strcmp(canonical, name))
        return false;
    *iteration = value;
    return true;
}

static int compare_iterations(const void *a, const void *b)
{
    long long x = *(const long long *)a, y = *(const long long *)b;
    return (x > y) - (x < y);
}

/* The iterations of the checkpoint files in dir, ascending, in *out (malloc'ed); *count of them. */
static gan_status list_checkpoints(const char *dir, long long **out, int *count)
{
    *out = NULL;
    *count = 0;
    DIR *d = opendir(dir);
    if (!d)
        return errno == ENOENT ? GAN_OK : gan_error(GAN_ERR_IO, "%s: %s", dir, strerror(errno));
    long long *its = NULL;
    int n = 0, capacity = 0;
    gan_status status = GAN_OK;
    struct dirent *entry;
    while ((entry = readdir(d))) {
        long long it;
        if (!checkpoint_iteration(entry->d_name, &it))
            continue;
        if (n == capacity) {
            capacity = capacity ? 2 * capacity : 64;
            long long *grown = realloc(its, (size_t)capacity * sizeof *grown);
            if (!grown) {
                status = gan_error(GAN_ERR_NOMEM, "out of memory listing %s", dir);
                break;
            }
            its = grown;
        }
        its[n++] = it;
    }
    closedir(d);
    if (status != GAN_OK) {
        free(its);
        return status;
    }
    if (n > 1) /* qsort of no array (NULL) is undefined, even for 0 elements */
        qsort(its, (size_t)n, sizeof *its, compare_iterations);
    *out = its;
    *count = n;
    return GAN_OK;
}

/* A checkpoint file that opens (format, version, checksum) and whose iteration is its name's. */
static gan_status verify_checkpoint(const char *path, long long iteration)
{
    gan_checkpoint ck;
    GAN_TRY(gan_checkpoint_open(path, &ck));
    gan_checkpoint_counter counter = {"iteration", true, {0}};
    gan_status status = gan_checkpoint_read_counters(&ck, &counter, 1);
    if (status == GAN_OK && counter.value.i64 != iteration)
        status = gan_error(GAN_ERR_FORMAT, "%s: its metadata says iteration %lld, its name %lld", path,
                           (long long)counter.value.i64, iteration);
    gan_checkpoint_close(&ck);
    return status;
}

/* Renames a checkpoint that failed to verify to <name>.corrupt (.corrupt.1, ... when taken): kept
 * for inspection, never read, listed or pruned again. */
static gan_status move_aside(const char *path, char *moved, size_t bytes)
{
    for (int k = 0; k < 1000; k++) {
        if (k == 0)
            snprintf(moved, bytes, "%s.corrupt", path);
        else
            snprintf(moved, bytes, "%s.corrupt.%d", path, k);
        if (access(moved, F_OK) != 0) {
            if (rename(path, moved) != 0)
                return gan_error(GAN_ERR_IO, "%s: cannot move it aside to %s: %s", path, moved, strerror(errno));
            return GAN_OK;
        }
    }
    return gan_error(GAN_ERR_IO, "%s: cannot move it aside: every %s.corrupt.N name is taken", path, path);
}

gan_status run_dir_select_checkpoint(const run_paths *paths, bool move_damaged, char *path, size_t bytes)
{
    struct stat st;
    if (stat(paths->root, &st) != 0 || !S_ISDIR(st.st_mode))
        return gan_error(GAN_ERR_IO, "%s: no such run directory", paths->root);
    long long *its = NULL;
    int n = 0;
    GAN_TRY(list_checkpoints(paths->checkpoints, &its, &n));
    gan_status status = GAN_OK;
    int skipped = 0;
    char reasons[2048] = ""; /* the quiet look's skipped checkpoints, for its message */
    for (int i = n - 1; i >= 0; i--) {
        run_dir_checkpoint_path(paths, its[i], path, bytes);
        gan_status verified = verify_checkpoint(path, its[i]);
        if (verified == GAN_OK) {
            free(its);
            return GAN_OK;
        }
        /* Only a file that is not a valid checkpoint (format, checksum, metadata: GAN_ERR_FORMAT) is
         * damaged. One that could not be read (I/O, permissions, memory) may be fine: moving it aside
         * and resuming from an older one would throw its iterations away, so the resume stops. */
        if (verified != GAN_ERR_FORMAT) {
            status = gan_error_prefix(verified, "cannot read the newest checkpoint (nothing was moved or "
                                                "resumed; fix this and resume again): ");
            goto cleanup;
        }
        skipped++;
        char reason[1024], moved[4400];
        snprintf(reason, sizeof reason, "%s", gan_error_message());
        if (!move_damaged) { /* a look only (gan train --resume reading the config): quiet */
            size_t used = strlen(reasons);
            snprintf(reasons + used, sizeof reasons - used, "%s%s", used ? "; " : ": ", reason);
            continue;
        }
        GAN_CHECK(move_aside(path, moved, sizeof moved));
        fprintf(stderr, "gan: warning: skipping %s: %s; moved it to %s\n", path, reason, moved);
    }
    if (!skipped)
        status = gan_error(GAN_ERR_IO, "%s: no checkpoint (ckpt_<iteration>.safetensors) to resume from",
                           paths->checkpoints);
    else if (move_damaged)
        status = gan_error(GAN_ERR_IO, "%s: no checkpoint (ckpt_<iteration>.safetensors) that verifies to "
                                           "resume from (the others are listed above)",
                           paths->checkpoints);
    else
        status = gan_error(GAN_ERR_IO, "%s: no checkpoint (ckpt_<iteration>.safetensors) that verifies to "
                                           "resume from%s",
                           paths->checkpoints, reasons);
cleanup:
    free(its);
    path[0] = '\0';
    return status;
}

gan_status gan_run_latest_checkpoint(const char *run_dir, char *path, size_t path_bytes)
{
    run_paths paths;
    run_paths_init(&paths, run_dir);
    return run_dir_select_checkpoint(&paths, false, path, path_bytes);
}

bool run_dir_has_checkpoints(const run_paths *paths)
{
    long long *its = NULL;
    int n = 0;
    bool any = list_checkpoints(paths->checkpoints, &its, &n) == GAN_OK && n > 0;
    free(its);
    return any;
}

void run_dir_prune_checkpoints(const run_paths *paths, int64_t current, int keep)
{
    long long *its = NULL;
    int n = 0;
    if (list_checkpoints(paths->checkpoints, &its, &n) != GAN_OK)
        return;
    /* a name past the run's own iteration is not the run's: never counted, never deleted */
    while (n > 0 && its[n - 1] > current)
        n--;
    for (int i = 0; i + keep < n; i++) {
        char path[4300];
        run_dir_checkpoint_path(paths, its[i], path, sizeof path);
        unlink(path);
    }
    free(its);
}

gan_status run_dir_lock(const run_paths *paths, int *fd_out)
{
    *fd_out = -1;
    char path[4200];
    snprintf(path, sizeof path, "%s/lock", paths->root);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd < 0)
        return gan_error(GAN_ERR_IO, "%s: cannot open the run's lock file: %s", path, strerror(errno));
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int why = errno;
        char holder[256] = "";
        ssize_t got = pread(fd, holder, sizeof holder - 1, 0);
        holder[got > 0 ? got : 0] = '\0';
        holder[strcspn(holder, "\n")] = '\0';
        close(fd);
        if (why == EWOULDBLOCK)
            return gan_error(GAN_ERR_IO,
                             "%s is in use by another gan train (%s; lock file %s): wait for it to end, or "
                             "choose another --out",
                             paths->root, holder[0] ? holder : "holder unknown", path);
        return gan_error(GAN_ERR_IO, "%s: cannot lock: %s", path, strerror(why));
    }
    char host[256] = "unknown host", text[400];
    gethostname(host, sizeof host - 1);
    int len = snprintf(text, sizeof text, "pid %ld on %s\n", (long)getpid(), host);
    if (ftruncate(fd, 0) != 0 || pwrite(fd, text, (size_t)len, 0) != len) {
        int why = errno;
        close(fd);
        return gan_error(GAN_ERR_IO, "%s: cannot write the lock file: %s", path, strerror(why));
    }
    *fd_out = fd;
    return GAN_OK;
}

gan_status gan_run_check_available(const char *run_dir)
{
    run_paths paths;
    run_paths_init(&paths, run_dir);
    struct stat st;
    if (stat(run_dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return gan_error(GAN_ERR_IO, "%s: no such run directory", run_dir);
    /* Checked before the lock file is made: --resume of a directory that is no run (a typo, the
     * runs/ folder itself) must leave nothing in it. */
    if (stat(paths.checkpoints, &st) != 0 || !S_ISDIR(st.st_mode))
        return gan_error(GAN_ERR_IO, "%s is not a run directory (it has no checkpoints/ folder): --resume takes "
                                     "the --out of an earlier gan train",
                         run_dir);
    int fd = -1;
    GAN_TRY(run_dir_lock(&paths, &fd));
    run_dir_unlock(fd);
    return GAN_OK;
}

void run_dir_unlock(int fd)
{
    if (fd >= 0)
        close(fd); /* the lock goes with the descriptor; the file stays (its holder line is stale) */
}

/* The length of the name a temporary file name is for: `name` is <base>.tmp (run_dir's own
 * writers), <base>.tmp.<pid> (conv_choices.c) or <base>.tmp.<pid>.<n> (gan_file_write_replace, the
 * npy writer); 0 when it is none of these. */
static size_t temporary_base_length(const char *name)
{
    const char *tmp = NULL;
    for (const char *p = strstr(name, ".tmp"); p; p = strstr(p + 1, ".tmp"))
        tmp = p; /* the last ".tmp" */
    if (!tmp || tmp == name)
        return 0;
    const char *p = tmp + 4;
    for (int groups = 0; *p && groups < 2; groups++) {
        if (*p != '.' || !isdigit((unsigned char)p[1]))
            return 0;
        p++;
        while (isdigit((unsigned char)*p))
            p++;
    }
    return *p ? 0 : (size_t)(tmp - name);
}

/* Removes the regular files in `dir` that are temporary files (temporary_base_length) of a name
 * ending in `suffix` ("" for any), or equal to `suffix` when `exact`. The run directory is locked:
 * no other writer's temporary file can be in it. */
static void remove_temporaries(const char *dir, const char *suffix, bool exact)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    size_t suffix_len = strlen(suffix);
    struct dirent *entry;
    while ((entry = readdir(d))) {
        size_t len = temporary_base_length(entry->d_name);
        if (!len || len < suffix_len || (exact && len != suffix_len) ||
            strncmp(entry->d_name + len - suffix_len, suffix, suffix_len))
            continue;
        char path[4400];
        snprintf(path, sizeof path, "%s/%s", dir, entry->d_name);
        struct stat st;
        if (lstat(path, &st) == 0 && S_ISREG(st.st_mode) && unlink(path) == 0)
            fprintf(stderr, "gan: removed %s, left by a run that was killed while writing it\n", path);
    }
    closedir(d);
}

void run_dir_remove_stale_temporaries(const run_paths *paths)
{
    remove_temporaries(paths->checkpoints, ".safetensors", false);
    remove_temporaries(paths->samples, "", false);
    const char *root_files[] = {"config.ini", "conv_algorithms.txt", "metrics.jsonl"};
    for (size_t i = 0; i < sizeof root_files / sizeof root_files[0]; i++)
        remove_temporaries(paths->root, root_files[i], true);
}

/* The iteration of one metrics.jsonl line ({"iteration": N, ...}); false when it has none. */
static bool line_iteration(const char *line, long long *iteration)
{
    return sscanf(line, "{\"iteration\": %lld", iteration) == 1;
}

gan_status run_dir_truncate_metrics(const run_paths *paths, int64_t iteration)
{
    char path[4200], tmp[4300];
    snprintf(path, sizeof path, "%s/metrics.jsonl", paths->root);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *in = fopen(path, "r");
    if (!in)
        return errno == ENOENT ? GAN_OK : gan_error(GAN_ERR_IO, "%s: %s", path, strerror(errno));
    FILE *out = fopen(tmp, "w");
    if (!out) {
        int why = errno;
        fclose(in);
        return gan_error(GAN_ERR_IO, "%s: %s", tmp, strerror(why));
    }
    /* Lines of iterations up to the checkpoint's are kept; a line cut by a kill (no newline) and
     * the replayed iterations' lines go. */
    char *line = NULL;
    size_t capacity = 0;
    ssize_t len;
    long long dropped = 0;
    while ((len = getline(&line, &capacity, in)) > 0) {
        long long it;
        if (line[len - 1] == '\n' && line_iteration(line, &it) && it <= iteration)
            fwrite(line, 1, (size_t)len, out);
        else
            dropped++;
    }
    free(line);
    bool read_failed = ferror(in);
    fclose(in);
    gan_status status = GAN_OK;
    if (read_failed)
        status = gan_error(GAN_ERR_IO, "%s: read failed", path);
    if (fflush(out) != 0 || fsync(fileno(out)) != 0)
        if (status == GAN_OK)
            status = gan_error(GAN_ERR_IO, "%s: %s", tmp, strerror(errno));
    if (fclose(out) != 0 && status == GAN_OK)
        status = gan_error(GAN_ERR_IO, "%s: %s", tmp, strerror(errno));
    if (status == GAN_OK && rename(tmp, path) != 0)
        status = gan_error(GAN_ERR_IO, "%s: %s", path, strerror(errno));
    if (status != GAN_OK)
        unlink(tmp);
    else if (dropped)
        printf("metrics.jsonl: %lld line%s after iteration %lld removed (they are run again)\n", dropped,
               dropped == 1 ? "" : "s", (long long)iteration);
    return status;
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
