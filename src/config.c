/* The configuration key table and the INI reader. One row per key: where it lives in
 * gan_config, its type, default and meaning; loading, overriding, printing and --help all walk
 * this table, so they cannot disagree. */
#include "gan/config.h"
#include "gan/file_atomic.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <ini.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

/* KEY_LAYERS: a layer sequence, text whose whitespace only separates layers (a line break or a run
 * of spaces, as a multi-line override gives it, is kept as one space: what its stored INI lines
 * read back as). */
typedef enum key_type { KEY_INT, KEY_INT64, KEY_U64, KEY_DOUBLE, KEY_STRING, KEY_TEXT, KEY_LAYERS, KEY_ENUM, KEY_BOOL } key_type;

typedef struct config_key {
    const char *section, *key;
    key_type type;
    size_t offset, size;      /* size: bytes of a string field */
    const char *default_value;
    double min, max;          /* numeric range, inclusive */
    const char *choices;      /* KEY_ENUM: "normal|uniform", index = enum value */
    const char *meaning;
} config_key;

#define FIELD(f) offsetof(gan_config, f), sizeof(((gan_config *)0)->f)

static const config_key keys[] = {
    {"model", "nz", KEY_INT, FIELD(nz), "100", 1, 65536, NULL, "latent size"},
    {"model", "noise", KEY_ENUM, FIELD(noise), "normal", 0, 0, "normal|uniform",
     "latent distribution: normal N(0,1), or uniform [0,1) like torch.rand"},
    {"model", "generator", KEY_LAYERS, FIELD(generator), "", 0, 0, NULL,
     "generator layer sequence, input [nz,1,1] (grammar: docs/DESIGN.md)"},
    {"model", "discriminator", KEY_LAYERS, FIELD(discriminator), "", 0, 0, NULL,
     "discriminator layer sequence, input [channels,image_size,image_size]"},
    {"model", "export_prefix", KEY_STRING, FIELD(export_prefix), "main", 0, 0, NULL,
     "module prefix of exported names: main.0.weight, ..."},
    {"model", "init", KEY_ENUM, FIELD(init), "dcgan", 0, 0, "dcgan|xavier|pytorch",
     "weight init: dcgan N(0,0.02) with BN weight N(1,0.02); xavier uniform; pytorch default"},
    {"data", "path", KEY_TEXT, FIELD(data_path), "", 0, 0, NULL,
     "dataset: image folder, IDX file, CIFAR-10 folder, or a .npy cache from gan prepare"},
    {"data", "format", KEY_STRING, FIELD(data_format), "auto", 0, 0, NULL,
     "auto | folder | idx | cifar | npy | toy (8 Gaussians on a ring)"},
    {"data", "split", KEY_STRING, FIELD(data_split), "all", 0, 0, NULL,
     "all | train | valid | test (image folders with a split file)"},
    {"data", "split_file", KEY_TEXT, FIELD(data_split_file), "", 0, 0, NULL,
     "CelebA list_eval_partition.txt for data.split"},
    {"data", "image_size", KEY_INT, FIELD(image_size), "64", 1, 4096, NULL,
     "square image size after Resize + CenterCrop"},
    {"data", "channels", KEY_INT, FIELD(channels), "3", 1, 4, NULL, "1 (gray) or 3 (RGB)"},
    {"data", "max_bad_fraction", KEY_DOUBLE, FIELD(max_bad_fraction), "0.01", 0, 1, NULL,
     "fail when more than this fraction of images cannot be decoded"},
    {"data", "fid_stats", KEY_TEXT, FIELD(fid_stats), "", 0, 0, NULL,
     "FID reference statistics .npz (gan fid --save-stats DATA -o STATS.npz), for log.fid_every"},
    {"train", "iterations", KEY_INT64, FIELD(iterations), "0", 0, 1e15, NULL,
     "G steps to run; 0 = run train.epochs"},
    {"train", "epochs", KEY_INT, FIELD(epochs), "5", 0, 1e6, NULL, "epochs when iterations = 0"},
    {"train", "batch_size", KEY_INT, FIELD(batch_size), "128", 2, 65536, NULL, "batch size"},
    {"train", "seed", KEY_U64, FIELD(seed), "999", 0, 1.8e19, NULL,
     "seed of weights, noise, shuffling and dropout"},
    {"train", "lr_g", KEY_DOUBLE, FIELD(adam_g.lr), "0.0002", 0, 10, NULL, "G Adam learning rate"},
    {"train", "beta1_g", KEY_DOUBLE, FIELD(adam_g.beta1), "0.5", 0, 0.999999, NULL, "G Adam beta1"},
    {"train", "beta2_g", KEY_DOUBLE, FIELD(adam_g.beta2), "0.999", 0, 0.999999999, NULL, "G Adam beta2"},
    {"train", "eps_g", KEY_DOUBLE, FIELD(adam_g.eps), "1e-8", 0, 1, NULL, "G Adam eps"},
    {"train", "lr_d", KEY_DOUBLE, FIELD(adam_d.lr), "0.0002", 0, 10, NULL, "D Adam learning rate"},
    {"train", "beta1_d", KEY_DOUBLE, FIELD(adam_d.beta1), "0.5", 0, 0.999999, NULL, "D Adam beta1"},
    {"train", "beta2_d", KEY_DOUBLE, FIELD(adam_d.beta2), "0.999", 0, 0.999999999, NULL, "D Adam beta2"},
    {"train", "eps_d", KEY_DOUBLE, FIELD(adam_d.eps), "1e-8", 0, 1, NULL, "D Adam eps"},
    {"train", "d_steps", KEY_INT, FIELD(d_steps), "1", 1, 100, NULL,
     "k: D steps per G step, each with a fresh real batch and fresh z"},
    {"train", "g_loss", KEY_ENUM, FIELD(g_loss), "nonsaturating", 0, 0, "nonsaturating|minimax",
     "G loss: -log D(G(z)), or the original log(1 - D(G(z)))"},
    {"train", "d_loss", KEY_ENUM, FIELD(d_loss), "sum", 0, 0, "sum|mean",
     "D loss: BCE(real) + BCE(fake), or their mean"},
    {"train", "label_smoothing", KEY_DOUBLE, FIELD(label_smoothing), "0", 0, 0.5, NULL,
     "one-sided label smoothing: real target = 1 - this"},
    {"train", "precision", KEY_ENUM, FIELD(precision), "fp32", 0, 0, "fp32|tf32|bf16",
     "GEMM and convolution arithmetic: fp32, or tf32 / bf16 tensor cores (CUDA only)"},
    {"train", "deterministic", KEY_BOOL, FIELD(deterministic), "true", 0, 0, "false|true",
     "only algorithms that repeat bit for bit (false: the fastest cuDNN finds)"},
    {"train", "graph", KEY_BOOL, FIELD(graph), "true", 0, 0, "false|true",
     "CUDA: capture the iteration once as a CUDA graph and replay it (false: launch op by op)"},
    {"train", "sync_bn", KEY_BOOL, FIELD(sync_bn), "true", 0, 0, "false|true",
     "mpirun -np N: batch norm statistics summed over the ranks (false: each rank's own, as DDP)"},
    {"train", "ema_decay", KEY_DOUBLE, FIELD(ema_decay), "0", 0, 0.99999999, NULL,
     "EMA of G's weights (e.g. 0.999): after each G step ema = decay ema + (1 - decay) w, BN statistics "
     "G's; kept in checkpoints, gan sample/export --ema (0 = off)"},
    {"log", "every", KEY_INT64, FIELD(log_every), "50", 1, 1e15, NULL, "log a line every N iterations"},
    {"log", "sample_every", KEY_INT64, FIELD(sample_every), "500", 0, 1e15, NULL,
     "fixed-noise sample grid every N iterations (0 = only at the end)"},
    {"log", "checkpoint_every", KEY_INT64, FIELD(checkpoint_every), "1000", 0, 1e15, NULL,
     "checkpoint every N iterations (0 = only at the end)"},
    {"log", "keep_checkpoints", KEY_INT, FIELD(keep_checkpoints), "3", 1, 1000, NULL,
     "how many recent checkpoints to keep"},
    {"log", "sample_bn", KEY_ENUM, FIELD(sample_bn), "eval", 0, 0, "eval|batch",
     "BN in sample grids: running statistics (eval), or batch statistics as the tutorial shows"},
    {"log", "fid_every", KEY_INT64, FIELD(fid_every), "0", 0, 1e15, NULL,
     "FID of G (and EMA-G) vs data.fid_stats every N iterations and at the end; the best (EMA-G's with "
     "EMA) kept as checkpoints/best_fid.safetensors (0 = off)"},
    {"log", "fid_samples", KEY_INT, FIELD(fid_samples), "10000", 2, 1000000, NULL,
     "images generated per FID (fixed noise, eval-mode BN, unrounded floats); 50000 for paper numbers"},
    {"log", "fid_weights", KEY_TEXT, FIELD(fid_weights), "", 0, 0, NULL,
     "FID Inception weights (tools/convert_fid_weights.py, README: FID); empty: $GAN_FID_WEIGHTS"},
};
enum { KEY_COUNT = sizeof keys / sizeof keys[0] };

static const config_key *find_key(const char *section, const char *key)
{
    for (int i = 0; i < KEY_COUNT; i++)
        if (!strcasecmp(keys[i].section, section) && !strcasecmp(keys[i].key, key))
            return &keys[i];
    return NULL;
}

static int enum_index(const char *choices, const char *value)
{
    int index = 0;
    const char *p = choices;
    size_t len = strlen(value);
    while (*p) {
        const char *bar = strchr(p, '|');
        size_t n = bar ? (size_t)(bar - p) : strlen(p);
        if (n == len && !strncasecmp(p, value, n))
            return index;
        index++;
        if (!bar)
            break;
        p = bar + 1;
    }
    return -1;
}

/* Sets one key from text. `append` joins a continuation line to a KEY_TEXT value. */
static gan_status set_value(gan_config *cfg, const config_key *k, const char *value, bool append,
                            const char *origin)
{
    char *field = (char *)cfg + k->offset;
    char *end = NULL;
    errno = 0;
    switch (k->type) {
    case KEY_LAYERS: {
        size_t used = append ? strlen(field) : 0;
        for (const char *p = value; *p;) {
            while (*p && isspace((unsigned char)*p))
                p++;
            const char *word = p;
            while (*p && !isspace((unsigned char)*p))
                p++;
            if (p == word)
                break;
            int n = snprintf(field + used, k->size - used, "%s%.*s", used ? " " : "", (int)(p - word), word);
            if (n < 0 || (size_t)n >= k->size - used)
                return gan_error(GAN_ERR_CONFIG, "%s: %s.%s is longer than %zu characters", origin, k->section,
                                 k->key, k->size - 1);
            used += (size_t)n;
        }
        if (!append && !used)
            field[0] = '\0';
        return GAN_OK;
    }
    case KEY_TEXT:
    case KEY_STRING: {
        size_t used = append ? strlen(field) : 0;
        int n = snprintf(field + used, k->size - used, "%s%s", used ? " " : "", value);
        if (n < 0 || (size_t)n >= k->size - used)
            return gan_error(GAN_ERR_CONFIG, "%s: %s.%s is longer than %zu characters", origin,
                             k->section, k->key, k->size - 1);
        return GAN_OK;
    }
    case KEY_ENUM:
    case KEY_BOOL: {
        int index = enum_index(k->choices, value);
        if (index < 0)
            return gan_error(GAN_ERR_CONFIG, "%s: %s.%s must be one of %s, got '%s'", origin,
                             k->section, k->key, k->choices, value);
        if (k->type == KEY_BOOL)
            *(bool *)field = index == 1;
        else
            *(int *)field = index;
        return GAN_OK;
    }
    case KEY_DOUBLE: {
        double v = strtod(value, &end);
        if (errno || end == value || *end || !isfinite(v) || v < k->min || v > k->max)
            return gan_error(GAN_ERR_CONFIG, "%s: %s.%s must be a number in [%g, %g], got '%s'",
                             origin, k->section, k->key, k->min, k->max, value);
        *(double *)field = v;
        return GAN_OK;
    }
    case KEY_INT:
    case KEY_INT64:
    case KEY_U64: {
        /* strtoll and strtoull skip leading spaces and strtoull takes "-1" as 2^64 - 1: the text
         * must start with a digit (a signed key's with an optional sign before it). */
        const char *digits = value + (k->type != KEY_U64 && (value[0] == '-' || value[0] == '+'));
        if (!isdigit((unsigned char)digits[0]))
            goto bad_integer;
        if (k->type == KEY_U64) {
            unsigned long long v = strtoull(value, &end, 10);
            if (errno || end == value || *end)
                goto bad_integer;
            *(uint64_t *)field = (uint64_t)v;
            return GAN_OK;
        }
        long long v = strtoll(value, &end, 10);
        if (errno || end == value || *end || (double)v < k->min || (double)v > k->max)
            goto bad_integer;
        if (k->type == KEY_INT)
            *(int *)field = (int)v;
        else
            *(int64_t *)field = (int64_t)v;
        return GAN_OK;
    }
    }
bad_integer:
    return gan_error(GAN_ERR_CONFIG, "%s: %s.%s must be an integer in [%.0f, %.0f], got '%s'",
                     origin, k->section, k->key, k->min, k->max, value);
}

void gan_config_defaults(gan_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    for (int i = 0; i < KEY_COUNT; i++) {
        gan_status status = set_value(cfg, &keys[i], keys[i].default_value, false, "defaults");
        (void)status; /* the table's defaults are valid (tests/test_config.c checks) */
    }
}

/* What inih makes of a line (src/ini.c of inih r55 with INI_ALLOW_MULTILINE): nothing (blank,
 * comment, section header, or an error inih reports), a `key = value` line, or an indented
 * continuation of the value of the key above it. */
typedef enum line_kind { LINE_OTHER, LINE_KEY, LINE_CONTINUATION } line_kind;

/* The parse: inih reads lines through read_line (which numbers and classifies them, and refuses
 * NUL bytes and lines longer than inih's buffer) and calls on_ini_value for a line right after
 * reading it, so `line` and `kind` describe the line of each call. */
typedef struct ini_state {
    gan_config *cfg;
    const char *origin;
    gan_status status;
    const char *next, *end; /* the text not read yet */
    int line;               /* the number of the line read last */
    line_kind kind;         /* and what it is */
    bool have_key;          /* inih's prev_name: a key was set since the last section header */
    int key_line[KEY_COUNT]; /* the line each key was given on; 0: not given */
} ini_state;

/* inih's find_chars_or_comment: the first of `chars`, or a ';' after whitespace, or the end. */
static const char *find_chars_or_comment(const char *s, const char *chars)
{
    bool was_space = false;
    while (*s && (!chars || !strchr(chars, *s)) && !(was_space && *s == ';')) {
        was_space = isspace((unsigned char)*s);
        s++;
    }
    return s;
}

static line_kind classify_line(ini_state *st, const char *line)
{
    const char *start = line;
    if (st->line == 1 && !strncmp(start, "\xEF\xBB\xBF", 3)) /* a UTF-8 BOM */
        start += 3;
    while (*start && isspace((unsigned char)*start))
        start++;
    if (!*start || *start == ';' || *start == '#')
        return LINE_OTHER;
    if (st->have_key && start > line)
        return LINE_CONTINUATION;
    if (*start == '[') {
        if (*find_chars_or_comment(start + 1, "]") == ']')
            st->have_key = false;
        return LINE_OTHER;
    }
    const char *end = find_chars_or_comment(start, "=:");
    return *end == '=' || *end == ':' ? LINE_KEY : LINE_OTHER;
}

/* inih's fgets-style reader over st->next..st->end. */
static char *read_line(char *out, int out_size, void *stream)
{
    ini_state *st = stream;
    if (st->status != GAN_OK || st->next >= st->end || out_size < 2)
        return NULL;
    const char *start = st->next;
    const char *newline = memchr(start, '\n', (size_t)(st->end - start));
    size_t len = newline ? (size_t)(newline - start) + 1 : (size_t)(st->end - start);
    st->next = start + len;
    st->line++;
    if (memchr(start, '\0', len)) {
        st->status = gan_error(GAN_ERR_CONFIG, "%s: line %d holds a NUL byte; a config is text", st->origin,
                               st->line);
        return NULL;
    }
    if (len > (size_t)out_size - 1) {
        st->status = gan_error(GAN_ERR_CONFIG, "%s: line %d is longer than %d characters; continue a long "
                                               "value on indented lines",
                               st->origin, st->line, out_size - 2);
        return NULL;
    }
    memcpy(out, start, len);
    out[len] = '\0';
    st->kind = classify_line(st, out);
    return out;
}

static int on_ini_value(void *user, const char *section, const char *name, const char *value)
{
    ini_state *st = user;
    if (st->status != GAN_OK)
        return 0;
    const config_key *k = find_key(section, name);
    if (!k) {
        st->status = gan_error(GAN_ERR_CONFIG, "%s: unknown key %s.%s (gan train --help lists the keys)",
                               st->origin, section, name);
        return 0;
    }
    int *given = &st->key_line[k - keys];
    /* inih calls the handler again, with the same key, for each indented continuation line. */
    if (st->kind == LINE_CONTINUATION) {
        if (k->type != KEY_TEXT && k->type != KEY_LAYERS) {
            st->status = gan_error(GAN_ERR_CONFIG, "%s: %s.%s takes one value, and line %d is an indented "
                                                   "continuation of it",
                                   st->origin, section, name, st->line);
            return 0;
        }
        st->status = set_value(st->cfg, k, value, true, st->origin);
        return st->status == GAN_OK;
    }
    if (*given) {
        st->status = gan_error(GAN_ERR_CONFIG, "%s: %s.%s is given twice: lines %d and %d (a value goes on "
                                               "one line, or continues on indented lines)",
                               st->origin, k->section, k->key, *given, st->line);
        return 0;
    }
    *given = st->line;
    st->have_key = true;
    st->status = set_value(st->cfg, k, value, false, st->origin);
    return st->status == GAN_OK;
}

static gan_status finish_parse(ini_state *st, int result)
{
    if (st->status != GAN_OK) {
        if (result > 0)
            return gan_error_prefix(st->status, "line %d: ", result);
        return st->status;
    }
    if (result == -2)
        return gan_error(GAN_ERR_NOMEM, "%s: out of memory reading the config", st->origin);
    if (result > 0)
        return gan_error(GAN_ERR_CONFIG, "%s: line %d is not valid INI", st->origin, result);
    return GAN_OK;
}

/* The run's name: the config's base name without .ini. It names the default run directory
 * (runs/<name>), so a name that is no directory of its own ("", "." or "..", from ".ini",
 * "...ini" or "configs/") becomes "run": runs/.. would be the current directory. */
static void base_name(char *dst, size_t bytes, const char *path)
{
    const char *slash = strrchr(path, '/');
    snprintf(dst, bytes, "%s", slash ? slash + 1 : path);
    char *dot = strrchr(dst, '.');
    if (dot && !strcmp(dot, ".ini"))
        *dot = '\0';
    if (!dst[0] || !strcmp(dst, ".") || !strcmp(dst, ".."))
        snprintf(dst, bytes, "run");
}

static gan_status parse_text(gan_config *cfg, const char *text, size_t bytes, const char *origin)
{
    ini_state st = {.cfg = cfg, .origin = origin, .status = GAN_OK, .next = text, .end = text + bytes};
    int result = ini_parse_stream(read_line, &st, on_ini_value, &st);
    return finish_parse(&st, result);
}

/* Configs are small: a file past this is not one. */
enum { MAX_CONFIG_BYTES = 1 << 20 };

/* Opens a config for reading: a regular file only (gan_input_open_regular: a FIFO, a directory or
 * a device is refused, never waited on). */
static gan_status open_config_file(const char *path, FILE **out)
{
    if (gan_input_fopen_regular(path, out) != GAN_OK)
        return gan_error_prefix(GAN_ERR_IO, "the config file: ");
    return GAN_OK;
}

gan_status gan_config_load(gan_config *cfg, const char *path)
{
    FILE *f = NULL;
    GAN_TRY(open_config_file(path, &f));
    char *text = malloc(MAX_CONFIG_BYTES + 1);
    size_t bytes = text ? fread(text, 1, MAX_CONFIG_BYTES + 1, f) : 0;
    gan_status status = GAN_OK;
    if (!text)
        status = gan_error(GAN_ERR_NOMEM, "%s: out of memory reading the config", path);
    else if (ferror(f))
        status = gan_error(GAN_ERR_IO, "%s: cannot read the config file: %s", path, strerror(errno));
    else if (bytes > MAX_CONFIG_BYTES)
        status = gan_error(GAN_ERR_CONFIG, "%s: larger than %d bytes: not a config file", path,
                           MAX_CONFIG_BYTES);
    fclose(f);
    GAN_CHECK(status);
    GAN_CHECK(parse_text(cfg, text, bytes, path));
    base_name(cfg->name, sizeof cfg->name, path);
cleanup:
    free(text);
    return status;
}

gan_status gan_config_load_text(gan_config *cfg, const char *text, size_t bytes, const char *origin)
{
    GAN_TRY(parse_text(cfg, text, bytes, origin));
    if (!cfg->name[0])
        base_name(cfg->name, sizeof cfg->name, origin);
    return GAN_OK;
}

gan_status gan_config_load_string(gan_config *cfg, const char *text, const char *origin)
{
    return gan_config_load_text(cfg, text, strlen(text), origin);
}

gan_status gan_config_override(gan_config *cfg, const char *assignment)
{
    const char *dot = strchr(assignment, '.');
    const char *eq = strchr(assignment, '=');
    if (!dot || !eq || dot > eq)
        return gan_error(GAN_ERR_CONFIG, "override '%s': expected section.key=value", assignment);
    char section[64], key[64];
    size_t section_len = (size_t)(dot - assignment), key_len = (size_t)(eq - dot - 1);
    if (section_len >= sizeof section || key_len >= sizeof key)
        return gan_error(GAN_ERR_CONFIG, "override '%s': name too long", assignment);
    memcpy(section, assignment, section_len);
    section[section_len] = '\0';
    memcpy(key, dot + 1, key_len);
    key[key_len] = '\0';
    const config_key *k = find_key(section, key);
    if (!k)
        return gan_error(GAN_ERR_CONFIG, "override '%s': unknown key %s.%s (gan train --help lists the keys)",
                         assignment, section, key);
    return set_value(cfg, k, eq + 1, false, "command line");
}

gan_status gan_config_validate(const gan_config *cfg)
{
    if (!cfg->generator[0])
        return gan_error(GAN_ERR_CONFIG, "model.generator is empty: the config must give a layer sequence");
    if (!cfg->discriminator[0])
        return gan_error(GAN_ERR_CONFIG, "model.discriminator is empty: the config must give a layer sequence");
    bool toy = !strcmp(cfg->data_format, "toy");
    if (toy && (cfg->channels != 2 || cfg->image_size != 1))
        return gan_error(GAN_ERR_CONFIG, "data.format = toy gives 2-d points: set data.channels = 2 "
                                         "and data.image_size = 1");
    if (!toy && cfg->channels != 1 && cfg->channels != 3)
        return gan_error(GAN_ERR_CONFIG, "data.channels must be 1 or 3, got %d", cfg->channels);
    if (cfg->fid_every && toy)
        return gan_error(GAN_ERR_CONFIG, "log.fid_every: FID measures images, and data.format = toy gives 2-d "
                                         "points (set log.fid_every = 0)");
    if (cfg->iterations == 0 && cfg->epochs == 0)
        return gan_error(GAN_ERR_CONFIG, "train.iterations and train.epochs are both 0: nothing to run");
    return GAN_OK;
}

static void print_value(const gan_config *cfg, const config_key *k, FILE *out)
{
    const char *field = (const char *)cfg + k->offset;
    switch (k->type) {
    case KEY_TEXT:
    case KEY_LAYERS:
    case KEY_STRING: fputs(field, out); break;
    case KEY_INT: fprintf(out, "%d", *(const int *)field); break;
    case KEY_INT64: fprintf(out, "%lld", (long long)*(const int64_t *)field); break;
    case KEY_U64: fprintf(out, "%llu", (unsigned long long)*(const uint64_t *)field); break;
    case KEY_DOUBLE: fprintf(out, "%.17g", *(const double *)field); break;
    case KEY_BOOL: fputs(*(const bool *)field ? "true" : "false", out); break;
    case KEY_ENUM: {
        int index = *(const int *)field;
        const char *p = k->choices;
        for (int i = 0; i < index && p; i++) {
            p = strchr(p, '|');
            p = p ? p + 1 : NULL;
        }
        if (p) {
            const char *bar = strchr(p, '|');
            fprintf(out, "%.*s", bar ? (int)(bar - p) : (int)strlen(p), p);
        }
        break;
    }
    }
}

/* One key's value as the stored config holds it. */
static void write_value(const gan_config *cfg, const config_key *k, FILE *out)
{
    if (k->type != KEY_TEXT && k->type != KEY_LAYERS) {
        print_value(cfg, k, out);
        return;
    }
    /* Long layer sequences: one indented continuation line per ~90 characters, so that inih's
     * line limit is not reached (a word longer than a line still is: gan_config_check_storable refuses it). */
    const char *field = (const char *)cfg + k->offset;
    int column = 0;
    for (const char *p = field; *p; p++) {
        if (*p == ' ' && column > 90) {
            fputs("\n    ", out);
            column = 0;
            continue;
        }
        fputc(*p, out);
        column++;
    }
}

/* Why a text value cannot be stored as it is, when the reason is one we can name; NULL if not. */
static const char *unstorable_reason(const char *value)
{
    size_t len = strlen(value);
    if (strpbrk(value, "\n\r"))
        return "it holds a line break";
    if (len && (isspace((unsigned char)value[0]) || isspace((unsigned char)value[len - 1])))
        return "it starts or ends with a space, which the INI reader drops";
    for (size_t i = 1; i < len; i++)
        if (value[i] == ';' && isspace((unsigned char)value[i - 1]))
            return "it holds ' ;', which the INI reader takes as the start of a comment";
    return NULL;
}

/* Every value must read back unchanged from the text gan_config_write makes of it: the run
 * directory's config.ini and every checkpoint store the config so, and --resume, gan sample and
 * gan export read it back. A value that does not survive (a path with " ;", a word longer than
 * inih's line, surrounding spaces) is refused by gan train before anything is written, naming
 * the key: found later it would be a run whose checkpoints cannot be resumed, or resume with
 * another value. Not part of gan_config_validate, which readers of stored configs (gan sample)
 * call: a config that loaded from a checkpoint is used as it is. The check writes and reads each
 * key alone, so it covers any key the table gains. */
gan_status gan_config_check_storable(const gan_config *cfg)
{
    gan_config *back = malloc(sizeof *back); /* 16 kB of text fields: not on the stack */
    if (!back)
        return gan_error(GAN_ERR_NOMEM, "out of memory checking the config");
    gan_status status = GAN_OK;
    for (int i = 0; i < KEY_COUNT && status == GAN_OK; i++) {
        const config_key *k = &keys[i];
        char *text = NULL;
        size_t bytes = 0;
        FILE *out = open_memstream(&text, &bytes);
        if (!out) {
            status = gan_error(GAN_ERR_NOMEM, "out of memory checking the config");
            break;
        }
        fprintf(out, "[%s]\n%s = ", k->section, k->key);
        write_value(cfg, k, out);
        fputc('\n', out);
        bool written = fclose(out) == 0 && text;
        if (!written) {
            free(text);
            status = gan_error(GAN_ERR_NOMEM, "out of memory checking the config");
            break;
        }
        gan_config_defaults(back);
        gan_status parsed = parse_text(back, text, bytes, "stored config");
        free(text);
        const char *field = (const char *)cfg + k->offset, *read = (const char *)back + k->offset;
        bool text_value = k->type == KEY_TEXT || k->type == KEY_LAYERS || k->type == KEY_STRING;
        if (parsed == GAN_OK && (text_value ? !strcmp(field, read) : !memcmp(field, read, k->size)))
            continue;
        char why[600];
        const char *reason = text_value ? unstorable_reason(field) : NULL;
        if (reason)
            snprintf(why, sizeof why, "%s", reason);
        else if (parsed != GAN_OK && strstr(gan_error_message(), "is longer than"))
            snprintf(why, sizeof why, "a stretch of it without spaces is too long for one line of the INI "
                                      "reader (%d characters; the writer breaks lines only at spaces)",
                     INI_MAX_LINE - 2);
        else if (parsed != GAN_OK)
            snprintf(why, sizeof why, "it would not read back (%s)", gan_error_message());
        else
            snprintf(why, sizeof why, "it would read back as '%.200s'", text_value ? read : "another value");
        status = gan_error(GAN_ERR_CONFIG,
                         "%s.%s = '%.120s%s': cannot be stored in the run's config.ini and checkpoints: %s",
                         k->section, k->key, text_value ? field : "", text_value && strlen(field) > 120 ? "..." : "",
                         why);
    }
    free(back);
    return status;
}

gan_status gan_config_write(const gan_config *cfg, FILE *out)
{
    errno = 0;
    const char *section = "";
    for (int i = 0; i < KEY_COUNT; i++) {
        const config_key *k = &keys[i];
        if (strcmp(section, k->section)) {
            fprintf(out, "%s[%s]\n", i ? "\n" : "", k->section);
            section = k->section;
        }
        fprintf(out, "; %s\n%s = ", k->meaning, k->key);
        write_value(cfg, k, out);
        if (fputc('\n', out) == EOF)
            break; /* errno says why */
    }
    int write_errno = errno;
    if (fflush(out) != 0 || ferror(out)) {
        int reason = write_errno ? write_errno : errno;
        return gan_error(GAN_ERR_IO, "cannot write the resolved config: %s",
                         reason ? strerror(reason) : "the stream reports an error");
    }
    return GAN_OK;
}

void gan_config_print_help(FILE *out)
{
    gan_config defaults;
    gan_config_defaults(&defaults);
    fprintf(out, "config keys (set in the INI file, or override as section.key=value):\n");
    for (int i = 0; i < KEY_COUNT; i++) {
        char name[64];
        snprintf(name, sizeof name, "%s.%s", keys[i].section, keys[i].key);
        fprintf(out, "  %-24s ", name);
        const char *def = keys[i].default_value;
        fprintf(out, "[%s] ", def[0] ? def : "(none)");
        if (keys[i].type == KEY_ENUM || keys[i].type == KEY_BOOL)
            fprintf(out, "(%s) ", keys[i].choices);
        fprintf(out, "%s\n", keys[i].meaning);
    }
}
