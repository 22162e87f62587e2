/* Stored convolution algorithm choices: the text, the list, the user's cache (gan/conv_choices.h).
 * Pure C: compiled in every build, tested in tests/test_conv_choices.c. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gan/conv_choices.h"
#include "gan/file_atomic.h"

static const char *const pass_names[] = {"forward", "backward-data", "backward-filter"};
static const char *const math_names[] = {"default", "tensor-op", "tensor-op-allow-conversion", "fma"};
static const char *const layout_names[] = {"nchw", "nhwc"};

const char *gan_conv_pass_name(gan_conv_pass pass)
{
    return (unsigned)pass < 3 ? pass_names[pass] : "?";
}

const char *gan_conv_math_name(gan_conv_math math)
{
    return (unsigned)math < 4 ? math_names[math] : "?";
}

const char *gan_conv_layout_name(gan_conv_layout layout)
{
    return (unsigned)layout < 2 ? layout_names[layout] : "?";
}

void gan_conv_choices_free(gan_conv_choices *list)
{
    free(list->items);
    list->items = NULL;
    list->count = list->capacity = 0;
}

static bool key_equal(const gan_conv_choice *a, const gan_conv_choice *b)
{
    return !strcmp(a->gpu, b->gpu) && a->cc_major == b->cc_major && a->cc_minor == b->cc_minor &&
           a->cudnn_version == b->cudnn_version && a->precision == b->precision &&
           a->deterministic == b->deterministic && a->pass == b->pass && a->stored == b->stored &&
           gan_conv_geom_equal(&a->geom, &b->geom);
}

int gan_conv_choices_find(const gan_conv_choices *list, const gan_conv_choice *key)
{
    for (int i = 0; i < list->count; i++)
        if (key_equal(&list->items[i], key))
            return i;
    return -1;
}

gan_status gan_conv_choices_put(gan_conv_choices *list, const gan_conv_choice *choice)
{
    int at = gan_conv_choices_find(list, choice);
    if (at >= 0) {
        list->items[at] = *choice;
        return GAN_OK;
    }
    if (list->count == list->capacity) {
        int capacity = list->capacity ? 2 * list->capacity : 32;
        gan_conv_choice *grown = realloc(list->items, (size_t)capacity * sizeof *grown);
        if (!grown)
            return gan_error(GAN_ERR_NOMEM, "out of memory for convolution algorithm choices");
        list->items = grown;
        list->capacity = capacity;
    }
    list->items[list->count++] = *choice;
    return GAN_OK;
}

/* ---- one line --------------------------------------------------------------------------- */

/* The line being parsed: `at` walks it; errors name source, line and field. */
typedef struct line_reader {
    const char *at, *end;
    const char *source;
    int line;
} line_reader;

static gan_status line_error(const line_reader *r, const char *field, const char *what)
{
    return gan_error(GAN_ERR_FORMAT, "%s line %d: field %s: %s", r->source, r->line, field, what);
}

/* Takes "name=" and leaves `at` on the value. */
static gan_status expect_key(line_reader *r, const char *name, bool first)
{
    if (!first) {
        if (r->at >= r->end || *r->at != ' ')
            return line_error(r, name, "missing (fields are separated by one space)");
        r->at++;
    }
    size_t len = strlen(name);
    if ((size_t)(r->end - r->at) <= len || strncmp(r->at, name, len) != 0 || r->at[len] != '=')
        return line_error(r, name, "missing or out of order");
    r->at += len + 1;
    return GAN_OK;
}

/* The value up to the next space or the line's end. */
static size_t value_length(const line_reader *r)
{
    const char *p = r->at;
    while (p < r->end && *p != ' ')
        p++;
    return (size_t)(p - r->at);
}

static gan_status read_long(line_reader *r, const char *field, long lo, long hi, long *out)
{
    size_t len = value_length(r);
    char buf[32];
    if (len == 0 || len >= sizeof buf)
        return line_error(r, field, "not an integer");
    memcpy(buf, r->at, len);
    buf[len] = '\0';
    char *end;
    errno = 0;
    long v = strtol(buf, &end, 10);
    if (*end || errno == ERANGE || v < lo || v > hi || buf[0] == '+' || buf[0] == ' ')
        return line_error(r, field, "not an integer in range");
    *out = v;
    r->at += len;
    return GAN_OK;
}

static gan_status read_int(line_reader *r, const char *field, int lo, int hi, int *out)
{
    long v;
    GAN_TRY(read_long(r, field, lo, hi, &v));
    *out = (int)v;
    return GAN_OK;
}

/* One of `names[count]`; its index into *out. */
static gan_status read_word(line_reader *r, const char *field, const char *const *names, int count,
                            int *out)
{
    size_t len = value_length(r);
    for (int i = 0; i < count; i++)
        if (strlen(names[i]) == len && !strncmp(r->at, names[i], len)) {
            *out = i;
            r->at += len;
            return GAN_OK;
        }
    return line_error(r, field, "not one of the known words");
}

/* Expects the character c. */
static gan_status expect_char(line_reader *r, const char *field, char c)
{
    if (r->at >= r->end || *r->at != c)
        return line_error(r, field, "malformed");
    r->at++;
    return GAN_OK;
}

/* An integer ending at `stop` (taken). */
static gan_status read_int_until(line_reader *r, const char *field, int lo, char stop, int *out)
{
    const char *p = r->at;
    while (p < r->end && *p != stop && *p != ' ')
        p++;
    if (p >= r->end || *p != stop)
        return line_error(r, field, "malformed");
    line_reader part = *r;
    part.end = p;
    GAN_TRY(read_int(&part, field, lo, INT_MAX, out));
    if (part.at != p)
        return line_error(r, field, "malformed");
    r->at = p + 1;
    return GAN_OK;
}

/* "AxB" */
static gan_status read_pair(line_reader *r, const char *field, int lo, int *a, int *b)
{
    GAN_TRY(read_int_until(r, field, lo, 'x', a));
    return read_int(r, field, lo, INT_MAX, b);
}

/* "CxHxW" */
static gan_status read_chw(line_reader *r, const char *field, int *c, int *h, int *w)
{
    GAN_TRY(read_int_until(r, field, 1, 'x', c));
    GAN_TRY(read_int_until(r, field, 1, 'x', h));
    return read_int(r, field, 1, INT_MAX, w);
}

static gan_status read_gpu(line_reader *r, char *gpu)
{
    GAN_TRY(expect_char(r, "gpu", '"'));
    const char *close = memchr(r->at, '"', (size_t)(r->end - r->at));
    size_t len = close ? (size_t)(close - r->at) : 0;
    if (!close || len == 0 || len >= GAN_CONV_CHOICE_GPU_CHARS)
        return line_error(r, "gpu", "not a quoted name of 1 to 95 characters");
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)r->at[i] < 0x20 || r->at[i] == 0x7f)
            return line_error(r, "gpu", "holds a control character");
    memcpy(gpu, r->at, len);
    gpu[len] = '\0';
    r->at = close + 1;
    return GAN_OK;
}

static gan_status read_ms(line_reader *r, double *ms)
{
    size_t len = value_length(r);
    char buf[32];
    if (len == 0 || len >= sizeof buf)
        return line_error(r, "ms", "not a number");
    memcpy(buf, r->at, len);
    buf[len] = '\0';
    char *end;
    double v = strtod(buf, &end);
    if (*end || !(v >= 0.0 && v < 1e9))
        return line_error(r, "ms", "not a number of milliseconds");
    *ms = v;
    r->at += len;
    return GAN_OK;
}

static gan_status parse_line(line_reader *r, gan_conv_choice *c)
{
    memset(c, 0, sizeof *c);
    GAN_TRY(expect_key(r, "gpu", true));
    GAN_TRY(read_gpu(r, c->gpu));
    GAN_TRY(expect_key(r, "cc", false));
    GAN_TRY(read_int_until(r, "cc", 0, '.', &c->cc_major));
    GAN_TRY(read_int(r, "cc", 0, 99, &c->cc_minor));
    GAN_TRY(expect_key(r, "cudnn", false));
    GAN_TRY(read_long(r, "cudnn", 0, LONG_MAX, &c->cudnn_version));
    static const char *const precisions[] = {"fp32", "tf32", "bf16"};
    static const char *const booleans[] = {"false", "true"};
    int word = 0;
    GAN_TRY(expect_key(r, "precision", false));
    GAN_TRY(read_word(r, "precision", precisions, 3, &word));
    c->precision = (gan_precision)word;
    GAN_TRY(expect_key(r, "deterministic", false));
    GAN_TRY(read_word(r, "deterministic", booleans, 2, &word));
    c->deterministic = word == 1;
    gan_conv_geom *g = &c->geom;
    GAN_TRY(expect_key(r, "n", false));
    GAN_TRY(read_int(r, "n", 1, INT_MAX, &g->n));
    GAN_TRY(expect_key(r, "x", false));
    GAN_TRY(read_chw(r, "x", &g->c_in, &g->h_in, &g->w_in));
    GAN_TRY(expect_key(r, "y", false));
    GAN_TRY(read_chw(r, "y", &g->c_out, &g->h_out, &g->w_out));
    GAN_TRY(expect_key(r, "k", false));
    GAN_TRY(read_pair(r, "k", 1, &g->k_h, &g->k_w));
    GAN_TRY(expect_key(r, "s", false));
    GAN_TRY(read_pair(r, "s", 1, &g->stride_h, &g->stride_w));
    GAN_TRY(expect_key(r, "p", false));
    GAN_TRY(read_pair(r, "p", 0, &g->pad_h, &g->pad_w));
    GAN_TRY(expect_key(r, "pass", false));
    GAN_TRY(read_word(r, "pass", pass_names, 3, &word));
    c->pass = (gan_conv_pass)word;
    /* stored: written only where true (absent in the lines written before it existed) */
    if ((size_t)(r->end - r->at) > strlen(" stored=") && !strncmp(r->at, " stored=", strlen(" stored="))) {
        GAN_TRY(expect_key(r, "stored", false));
        GAN_TRY(read_word(r, "stored", booleans, 2, &word));
        if (word != 1)
            return line_error(r, "stored", "written only where true");
        c->stored = true;
    }
    GAN_TRY(expect_key(r, "algo", false));
    if (value_length(r) == strlen("subpixel") && !strncmp(r->at, "subpixel", 8)) {
        c->algo = GAN_CONV_ALGO_SUBPIXEL;
        r->at += 8;
    } else if (value_length(r) == strlen("im2col") && !strncmp(r->at, "im2col", 6)) {
        c->algo = GAN_CONV_ALGO_IM2COL;
        r->at += 6;
    } else {
        GAN_TRY(read_int(r, "algo", 0, 63, &c->algo));
    }
    GAN_TRY(expect_key(r, "math", false));
    GAN_TRY(read_word(r, "math", math_names, 4, &word));
    c->math = (gan_conv_math)word;
    /* layout: absent in the lines written before it existed, when bf16's cuDNN convolutions ran
     * in NHWC and everything else in NCHW */
    bool own = c->algo == GAN_CONV_ALGO_SUBPIXEL || c->algo == GAN_CONV_ALGO_IM2COL;
    c->layout = c->precision == GAN_PRECISION_BF16 && !own ? GAN_CONV_LAYOUT_NHWC : GAN_CONV_LAYOUT_NCHW;
    if ((size_t)(r->end - r->at) > strlen(" layout=") && !strncmp(r->at, " layout=", strlen(" layout="))) {
        GAN_TRY(expect_key(r, "layout", false));
        GAN_TRY(read_word(r, "layout", layout_names, 2, &word));
        c->layout = (gan_conv_layout)word;
    }
    long workspace;
    GAN_TRY(expect_key(r, "workspace", false));
    GAN_TRY(read_long(r, "workspace", 0, LONG_MAX, &workspace));
    c->workspace_bytes = (size_t)workspace;
    GAN_TRY(expect_key(r, "ms", false));
    GAN_TRY(read_ms(r, &c->ms));
    if (r->at != r->end)
        return line_error(r, "ms", "followed by more text");
    if (c->algo == GAN_CONV_ALGO_SUBPIXEL && c->pass != GAN_CONV_BACKWARD_DATA)
        return line_error(r, "algo", "subpixel is a backward-data algorithm");
    if (c->algo == GAN_CONV_ALGO_IM2COL && c->pass != GAN_CONV_BACKWARD_FILTER)
        return line_error(r, "algo", "im2col is a backward-filter algorithm");
    if (c->layout == GAN_CONV_LAYOUT_NHWC && (own || c->precision == GAN_PRECISION_FP32))
        return line_error(r, "layout", own ? "the forms of ours run on nchw" : "fp32 runs in nchw");
    if (c->layout == GAN_CONV_LAYOUT_NCHW && !own && c->precision == GAN_PRECISION_BF16)
        return line_error(r, "layout", "bf16's cuDNN convolutions run in nhwc");
    if (c->stored && (own || c->layout != GAN_CONV_LAYOUT_NHWC))
        return line_error(r, "stored", "stored tensors run cuDNN in nhwc");
    return GAN_OK;
}

gan_status gan_conv_choices_parse(const char *text, const char *source, gan_conv_choices *list)
{
    line_reader r = {.source = source, .line = 0};
    const char *p = text;
    while (*p) {
        const char *nl = strchr(p, '\n');
        const char *end = nl ? nl : p + strlen(p);
        r.line++;
        r.at = p;
        r.end = end > p && end[-1] == '\r' ? end - 1 : end;
        if (r.at < r.end && *r.at != '#') {
            gan_conv_choice c;
            GAN_TRY(parse_line(&r, &c));
            GAN_TRY(gan_conv_choices_put(list, &c));
        }
        p = nl ? nl + 1 : end;
    }
    return GAN_OK;
}

gan_status gan_conv_choices_format(const gan_conv_choices *list, char **text)
{
    static const char header[] =
        "# gan convolution algorithm choices (gan/conv_choices.h): reused where every field up to\n"
        "# pass matches the GPU, cuDNN, precision, determinism and geometry being planned\n";
    size_t cap = sizeof header + (size_t)list->count * 400, len = 0;
    char *out = malloc(cap);
    if (!out)
        return gan_error(GAN_ERR_NOMEM, "out of memory formatting convolution algorithm choices");
    len = (size_t)snprintf(out, cap, "%s", header);
    for (int i = 0; i < list->count; i++) {
        const gan_conv_choice *c = &list->items[i];
        const gan_conv_geom *g = &c->geom;
        char algo[16];
        if (c->algo == GAN_CONV_ALGO_SUBPIXEL)
            snprintf(algo, sizeof algo, "subpixel");
        else if (c->algo == GAN_CONV_ALGO_IM2COL)
            snprintf(algo, sizeof algo, "im2col");
        else
            snprintf(algo, sizeof algo, "%d", c->algo);
        int n = snprintf(out + len, cap - len,
                         "gpu=\"%s\" cc=%d.%d cudnn=%ld precision=%s deterministic=%s n=%d "
                         "x=%dx%dx%d y=%dx%dx%d k=%dx%d s=%dx%d p=%dx%d pass=%s%s algo=%s math=%s "
                         "layout=%s workspace=%zu ms=%.6g\n",
                         c->gpu, c->cc_major, c->cc_minor, c->cudnn_version,
                         gan_precision_name(c->precision), c->deterministic ? "true" : "false",
                         g->n, g->c_in, g->h_in, g->w_in, g->c_out, g->h_out, g->w_out, g->k_h,
                         g->k_w, g->stride_h, g->stride_w, g->pad_h, g->pad_w,
                         gan_conv_pass_name(c->pass), c->stored ? " stored=true" : "", algo,
                         gan_conv_math_name(c->math), gan_conv_layout_name(c->layout), c->workspace_bytes, c->ms);
        if (n < 0 || (size_t)n >= cap - len) {
            free(out);
            return gan_error(GAN_ERR_ARG, "convolution algorithm choice %d does not format", i);
        }
        len += (size_t)n;
    }
    *text = out;
    return GAN_OK;
}

/* ---- the user's cache -------------------------------------------------------------------- */

bool gan_conv_choices_cache_path(char *path, size_t bytes)
{
    const char *dir = getenv("GAN_CACHE_DIR");
    int n;
    if (dir)
        n = (!dir[0] || !strcmp(dir, "off")) ? -1 : snprintf(path, bytes, "%s/conv_algorithms.txt", dir);
    else if ((dir = getenv("XDG_CACHE_HOME")) && dir[0] == '/')
        n = snprintf(path, bytes, "%s/gan/conv_algorithms.txt", dir);
    else if ((dir = getenv("HOME")) && dir[0])
        n = snprintf(path, bytes, "%s/.cache/gan/conv_algorithms.txt", dir);
    else
        n = -1;
    return n > 0 && (size_t)n < bytes;
}

/* The whole of `path` as a string; a missing file gives NULL and GAN_OK. */
static gan_status read_text(const char *path, char **text)
{
    *text = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) {
        if (errno == ENOENT)
            return GAN_OK;
        return gan_error(GAN_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    }
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > (64 << 20)) {
        fclose(f);
        return gan_error(GAN_ERR_IO, "%s: not a regular file of at most 64 MiB", path);
    }
    char *buf = malloc((size_t)st.st_size + 1);
    if (!buf) {
        fclose(f);
        return gan_error(GAN_ERR_NOMEM, "%s: out of memory", path);
    }
    size_t got = fread(buf, 1, (size_t)st.st_size, f);
    bool failed = ferror(f);
    fclose(f);
    if (failed || got != (size_t)st.st_size) {
        free(buf);
        return gan_error(GAN_ERR_IO, "%s: read failed", path);
    }
    buf[got] = '\0';
    if (strlen(buf) != got) {
        free(buf);
        return gan_error(GAN_ERR_FORMAT, "%s: holds a NUL byte", path);
    }
    *text = buf;
    return GAN_OK;
}

gan_status gan_conv_choices_load(const char *path, gan_conv_choices *list)
{
    char *text;
    GAN_TRY(read_text(path, &text));
    if (!text)
        return GAN_OK;
    gan_status status = gan_conv_choices_parse(text, path, list);
    free(text);
    return status;
}

/* mkdir -p of the directory part of `path`. */
static gan_status make_parent_dirs(const char *path)
{
    char dir[PATH_MAX];
    if (snprintf(dir, sizeof dir, "%s", path) >= (int)sizeof dir)
        return gan_error(GAN_ERR_ARG, "%s: path too long", path);
    char *slash = strrchr(dir, '/');
    if (!slash || slash == dir)
        return GAN_OK;
    *slash = '\0';
    for (char *p = dir + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(dir, 0777) != 0 && errno != EEXIST)
            return gan_error(GAN_ERR_IO, "%s: cannot make directory: %s", dir, strerror(errno));
        *p = '/';
    }
    if (mkdir(dir, 0777) != 0 && errno != EEXIST)
        return gan_error(GAN_ERR_IO, "%s: cannot make directory: %s", dir, strerror(errno));
    return GAN_OK;
}

gan_status gan_conv_choices_store(const char *path, const gan_conv_choices *list)
{
    gan_conv_choices merged = {0};
    char *text = NULL, tmp[PATH_MAX + 32] = "";
    int fd = -1;
    gan_status status = GAN_OK;
    GAN_CHECK(make_parent_dirs(path));
    GAN_CHECK(gan_conv_choices_load(path, &merged));
    for (int i = 0; i < list->count; i++)
        GAN_CHECK(gan_conv_choices_put(&merged, &list->items[i]));
    GAN_CHECK(gan_conv_choices_format(&merged, &text));
    if (snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid()) >= (int)sizeof tmp) {
        status = gan_error(GAN_ERR_ARG, "%s: path too long", path);
        goto cleanup;
    }
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    if (fd < 0) {
        status = gan_error(GAN_ERR_IO, "%s: cannot create: %s", tmp, strerror(errno));
        goto cleanup;
    }
    GAN_CHECK(gan_write_all(fd, text, strlen(text), tmp));
    if (close(fd) != 0) {
        fd = -1;
        status = gan_error(GAN_ERR_IO, "%s: close failed: %s", tmp, strerror(errno));
        goto cleanup;
    }
    fd = -1;
    if (rename(tmp, path) != 0)
        status = gan_error(GAN_ERR_IO, "%s: cannot rename %s over it: %s", path, tmp, strerror(errno));
cleanup:
    if (fd >= 0)
        close(fd);
    if (status != GAN_OK && tmp[0])
        unlink(tmp);
    free(text);
    gan_conv_choices_free(&merged);
    return status;
}

void gan_conv_choices_reuse_cache(gan_backend *be, FILE *log)
{
    char path[4096];
    if (!be->conv_choices_import || !gan_conv_choices_cache_path(path, sizeof path))
        return;
    gan_conv_choices list = {0};
    char *text = NULL;
    gan_status status = gan_conv_choices_load(path, &list);
    if (status == GAN_OK && list.count > 0)
        status = gan_conv_choices_format(&list, &text);
    if (status == GAN_OK && list.count > 0)
        status = be->conv_choices_import(be, text, path);
    if (status != GAN_OK && log)
        fprintf(log, "warning: convolution algorithm cache not used: %s (delete it to let gan "
                     "rebuild it)\n",
                gan_error_message());
    free(text);
    gan_conv_choices_free(&list);
}

void gan_conv_choices_update_cache(gan_backend *be, FILE *log)
{
    char path[4096];
    if (!be->conv_choices_export || !gan_conv_choices_cache_path(path, sizeof path))
        return;
    char *text = NULL;
    gan_conv_choices list = {0};
    gan_status status = be->conv_choices_export(be, &text);
    if (status == GAN_OK)
        status = gan_conv_choices_parse(text, "the backend's choices", &list);
    if (status == GAN_OK && list.count > 0)
        status = gan_conv_choices_store(path, &list);
    if (status != GAN_OK && log)
        fprintf(log, "warning: convolution algorithm cache not updated: %s\n", gan_error_message());
    gan_conv_choices_free(&list);
    free(text);
}
