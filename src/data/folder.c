/* Image folders: every .jpg/.jpeg/.png below a folder (any letter case), sorted, and CelebA's
 * split list (list_eval_partition.txt) to choose train, valid or test. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gan/data.h"
#include "gan/file_atomic.h"

enum { MAX_DEPTH = 64 };

void gan_file_list_free(gan_file_list *list)
{
    for (int64_t i = 0; i < list->count; i++)
        free(list->paths[i]);
    free(list->paths);
    memset(list, 0, sizeof *list);
}

static bool is_image_name(const char *name)
{
    const char *dot = strrchr(name, '.');
    return dot && (!strcasecmp(dot, ".jpg") || !strcasecmp(dot, ".jpeg") || !strcasecmp(dot, ".png"));
}

/* A folder by identity: two names (a link, a bind mount) of one folder are one folder. */
typedef struct folder_id {
    dev_t dev;
    ino_t ino;
} folder_id;

typedef struct walker {
    gan_file_list *list;
    int64_t capacity;
    int64_t entries; /* everything seen, folders included */
    /* The folders listed so far. Links are followed, so links to a folder already listed (two
     * links to '.' make every path a new one: 2^64 names before the depth limit) would list it
     * again and again; each folder is listed once, the repeats skipped and counted (one warning
     * after the walk: a loop is a mistake in the data, not a reason to refuse it). */
    folder_id *seen;
    int64_t seen_count, seen_capacity;
    int64_t repeats;
    char repeat_path[4096];
    volatile int *cancel; /* non-zero: stop (Ctrl-C in gan prepare); may be NULL */
} walker;

/* false when `st` is a folder seen before; else remembers it. Linear: a data set has few folders
 * next to its images (CelebA: one), and a repeat is looked up once per folder. */
static gan_status first_visit(walker *w, const struct stat *st, bool *first)
{
    *first = true;
    for (int64_t i = 0; i < w->seen_count; i++)
        if (w->seen[i].dev == st->st_dev && w->seen[i].ino == st->st_ino) {
            *first = false;
            return GAN_OK;
        }
    if (w->seen_count == w->seen_capacity) {
        int64_t capacity = w->seen_capacity ? w->seen_capacity * 2 : 64;
        folder_id *grown = realloc(w->seen, (size_t)capacity * sizeof *grown);
        if (!grown)
            return gan_error(GAN_ERR_NOMEM, "out of memory listing images");
        w->seen = grown;
        w->seen_capacity = capacity;
    }
    w->seen[w->seen_count++] = (folder_id){st->st_dev, st->st_ino};
    return GAN_OK;
}

static gan_status push(walker *w, const char *path)
{
    if (w->list->count == w->capacity) {
        int64_t capacity = w->capacity ? w->capacity * 2 : 1024;
        char **paths = realloc(w->list->paths, (size_t)capacity * sizeof *paths);
        if (!paths)
            return gan_error(GAN_ERR_NOMEM, "out of memory listing images");
        w->list->paths = paths;
        w->capacity = capacity;
    }
    char *copy = strdup(path);
    if (!copy)
        return gan_error(GAN_ERR_NOMEM, "out of memory listing images");
    w->list->paths[w->list->count++] = copy;
    return GAN_OK;
}

static gan_status walk(walker *w, const char *dir, int depth)
{
    if (depth > MAX_DEPTH)
        return gan_error(GAN_ERR_IO, "%s: folders nested more than %d deep (a link loop?)", dir, MAX_DEPTH);
    struct stat dir_st;
    if (stat(dir, &dir_st) != 0)
        return gan_error(GAN_ERR_IO, "%s: %s", dir, strerror(errno));
    bool first = true;
    GAN_TRY(first_visit(w, &dir_st, &first));
    if (!first) {
        if (w->repeats++ == 0)
            snprintf(w->repeat_path, sizeof w->repeat_path, "%s", dir);
        return GAN_OK;
    }
    DIR *d = opendir(dir);
    if (!d)
        return gan_error(GAN_ERR_IO, "%s: %s", dir, strerror(errno));
    gan_status status = GAN_OK;
    struct dirent *e;
    size_t dir_len = strlen(dir);
    bool slash = dir_len > 0 && dir[dir_len - 1] == '/';
    while ((e = readdir(d)) != NULL) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        if (w->cancel && *w->cancel) {
            status = gan_error(GAN_ERR_IO, "interrupted while listing %s", dir);
            goto cleanup;
        }
        w->entries++;
        char path[4096];
        if ((size_t)snprintf(path, sizeof path, "%s%s%s", dir, slash ? "" : "/", e->d_name) >= sizeof path) {
            status = gan_error(GAN_ERR_IO, "%s/%s: path too long", dir, e->d_name);
            goto cleanup;
        }
        bool is_dir = e->d_type == DT_DIR, is_file = e->d_type == DT_REG;
        if (e->d_type == DT_UNKNOWN || e->d_type == DT_LNK) {
            struct stat st;
            if (stat(path, &st) != 0)
                continue; /* a dangling link */
            is_dir = S_ISDIR(st.st_mode);
            is_file = S_ISREG(st.st_mode);
        }
        if (is_dir)
            GAN_CHECK(walk(w, path, depth + 1));
        else if (is_file && is_image_name(e->d_name))
            GAN_CHECK(push(w, path));
        else
            w->list->ignored++;
    }
cleanup:
    closedir(d);
    return status;
}

static int compare_paths(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every image under `dir` into w's list: a folder without entries, or without images, is refused. */
static gan_status list_images(walker *w, const char *dir)
{
    GAN_TRY(walk(w, dir, 0));
    if (w->repeats)
        fprintf(stderr, "gan: warning: %s: %lld folder link%s to a folder listed already (the first: %s) "
                        "skipped: each folder's images are taken once\n",
                dir, (long long)w->repeats, w->repeats == 1 ? "" : "s", w->repeat_path);
    if (w->entries == 0)
        return gan_error(GAN_ERR_IO, "image folder %s is empty", dir);
    if (w->list->count == 0)
        return gan_error(GAN_ERR_IO, "image folder %s holds no .jpg, .jpeg or .png images (%lld other "
                                     "files)",
                         dir, (long long)w->list->ignored);
    return GAN_OK;
}

gan_status gan_folder_list(const char *dir, gan_file_list *out)
{
    return gan_folder_list_cancellable(dir, NULL, out);
}

gan_status gan_folder_list_cancellable(const char *dir, volatile int *cancel, gan_file_list *out)
{
    memset(out, 0, sizeof *out);
    struct stat st;
    if (stat(dir, &st) != 0)
        return gan_error(GAN_ERR_IO, "image folder %s: %s", dir, strerror(errno));
    if (!S_ISDIR(st.st_mode))
        return gan_error(GAN_ERR_IO, "%s is not a folder", dir);
    walker w = {.list = out, .cancel = cancel};
    gan_status status = list_images(&w, dir);
    free(w.seen);
    if (status != GAN_OK) {
        gan_file_list_free(out);
        return status;
    }
    if (out->count > 1)
        qsort(out->paths, (size_t)out->count, sizeof *out->paths, compare_paths);
    return GAN_OK;
}

/* ---- the split list --------------------------------------------------------------------------- */

typedef struct split_entry {
    char *name;
    int partition;
    bool matched;
} split_entry;

static int compare_entries(const void *a, const void *b)
{
    return strcmp(((const split_entry *)a)->name, ((const split_entry *)b)->name);
}

static int split_partition(const char *split)
{
    if (!strcmp(split, "train"))
        return 0;
    if (!strcmp(split, "valid") || !strcmp(split, "val"))
        return 1;
    if (!strcmp(split, "test"))
        return 2;
    return -1;
}

static void warn_line(gan_warn_fn warn, void *ctx, const char *message)
{
    if (warn)
        warn(ctx, message);
    else
        fprintf(stderr, "gan: warning: %s\n", message);
}

gan_status gan_split_filter(gan_file_list *list, const char *split_file, const char *split,
                            gan_warn_fn warn, void *warn_ctx)
{
    if (!split || !split[0] || !strcmp(split, "all"))
        return GAN_OK;
    int wanted = split_partition(split);
    if (wanted < 0)
        return gan_error(GAN_ERR_CONFIG, "data.split = '%s': use all, train, valid or test", split);
    FILE *f = NULL;
    if (gan_input_fopen_regular(split_file, &f) != GAN_OK)
        return gan_error_prefix(GAN_ERR_IO, "split list ");
    split_entry *entries = NULL;
    size_t count = 0, capacity = 0;
    char line[4096];
    int line_number = 0;
    gan_status status = GAN_OK;
    while (fgets(line, sizeof line, f)) {
        line_number++;
        char *p = line;
        while (*p == ' ' || *p == '\t')
            p++;
        if (*p == '\n' || *p == '\r' || *p == '\0' || *p == '#')
            continue;
        char *name = p;
        while (*p && *p != ' ' && *p != '\t' && *p != ',' && *p != '\n' && *p != '\r')
            p++;
        char *name_end = p;
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        char *end = NULL;
        long partition = strtol(p, &end, 10);
        bool numeric = end != p;
        while (end && (*end == ' ' || *end == '\t' || *end == '\r' || *end == '\n'))
            end++;
        if (!numeric && line_number == 1)
            continue; /* a header, as in the CSV version: image_id,partition */
        if (!numeric || (end && *end) || partition < 0 || partition > 2 || name_end == name) {
            status = gan_error(GAN_ERR_FORMAT, "split list %s:%d: expected 'NAME PARTITION' with partition "
                                               "0 (train), 1 (valid) or 2 (test)",
                               split_file, line_number);
            break;
        }
        if (count == capacity) {
            capacity = capacity ? capacity * 2 : 1024;
            split_entry *grown = realloc(entries, capacity * sizeof *entries);
            if (!grown) {
                status = gan_error(GAN_ERR_NOMEM, "out of memory reading %s", split_file);
                break;
            }
            entries = grown;
        }
        *name_end = '\0';
        entries[count].name = strdup(name);
        entries[count].partition = (int)partition;
        entries[count].matched = false;
        if (!entries[count].name) {
            status = gan_error(GAN_ERR_NOMEM, "out of memory reading %s", split_file);
            break;
        }
        count++;
    }
    fclose(f);
    GAN_CHECK(status);
    if (count == 0) {
        status = gan_error(GAN_ERR_FORMAT, "split list %s has no entries", split_file);
        goto cleanup;
    }
    int64_t kept = 0, unlisted = 0;
    char first_unlisted[4096] = "";
    if (count > 1)
        qsort(entries, count, sizeof *entries, compare_entries);
    for (int64_t i = 0; i < list->count; i++) {
        const char *slash = strrchr(list->paths[i], '/');
        split_entry key = {(char *)(slash ? slash + 1 : list->paths[i]), 0, false};
        split_entry *found = bsearch(&key, entries, count, sizeof *entries, compare_entries);
        if (found)
            found->matched = true;
        else if (unlisted++ == 0)
            snprintf(first_unlisted, sizeof first_unlisted, "%s", list->paths[i]);
        if (found && found->partition == wanted)
            list->paths[kept++] = list->paths[i];
        else
            free(list->paths[i]);
    }
    int64_t missing = 0;
    const char *first_missing = NULL;
    for (size_t i = 0; i < count; i++)
        if (entries[i].partition == wanted && !entries[i].matched) {
            missing++;
            if (!first_missing)
                first_missing = entries[i].name;
        }
    char message[8800];
    if (missing) {
        snprintf(message, sizeof message, "%lld images of split '%s' in %s are not in the folder "
                                          "(the first: %s)",
                 (long long)missing, split, split_file, first_missing);
        warn_line(warn, warn_ctx, message);
    }
    if (unlisted) {
        snprintf(message, sizeof message, "%lld images in the folder are not in %s (the first: %s); "
                                          "they are left out",
                 (long long)unlisted, split_file, first_unlisted);
        warn_line(warn, warn_ctx, message);
    }
    list->count = kept;
    if (kept == 0)
        status = gan_error(GAN_ERR_IO, "no image of the folder belongs to split '%s' of %s", split,
                           split_file);
cleanup:
    for (size_t i = 0; i < count; i++)
        free(entries[i].name);
    free(entries);
    return status;
}
