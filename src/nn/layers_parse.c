/* The layer-sequence grammar of docs/DESIGN.md (section 5):
 *   conv(out,k,s,p) convt(out,k,s,p) linear(out)   (append ",bias" for a bias)
 *   bn relu lrelu(slope) tanh sigmoid dropout(p) flatten reshape(c,h,w)
 * Tokens are separated by white space; spaces inside parentheses are allowed. */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gan/nn.h"

enum { MAX_ARGS = 6, MAX_TOKEN = 64 };

bool gan_layer_kind_activation(gan_layer_kind kind, gan_activation *act)
{
    switch (kind) {
    case GAN_LAYER_RELU: *act = GAN_ACT_RELU; return true;
    case GAN_LAYER_LRELU: *act = GAN_ACT_LRELU; return true;
    case GAN_LAYER_TANH: *act = GAN_ACT_TANH; return true;
    case GAN_LAYER_SIGMOID: *act = GAN_ACT_SIGMOID; return true;
    default: return false;
    }
}

const char *gan_layer_kind_name(gan_layer_kind kind)
{
    switch (kind) {
    case GAN_LAYER_CONV: return "conv";
    case GAN_LAYER_CONVT: return "convt";
    case GAN_LAYER_LINEAR: return "linear";
    case GAN_LAYER_BN: return "bn";
    case GAN_LAYER_RELU: return "relu";
    case GAN_LAYER_LRELU: return "lrelu";
    case GAN_LAYER_TANH: return "tanh";
    case GAN_LAYER_SIGMOID: return "sigmoid";
    case GAN_LAYER_DROPOUT: return "dropout";
    case GAN_LAYER_FLATTEN: return "flatten";
    case GAN_LAYER_RESHAPE: return "reshape";
    }
    return "?";
}

typedef struct token {
    char name[MAX_TOKEN];
    char args[MAX_ARGS][MAX_TOKEN];
    int arg_count;
    bool has_parens;
    int position; /* 1-based token number, for messages */
    char text[160];
} token;

static void trim(char *s)
{
    size_t len = strlen(s);
    while (len && isspace((unsigned char)s[len - 1]))
        s[--len] = '\0';
    size_t start = 0;
    while (s[start] && isspace((unsigned char)s[start]))
        start++;
    memmove(s, s + start, len - start + 1);
}

/* Reads one token at *cursor; returns false at the end of the text. */
static gan_status next_token(const char **cursor, token *tok, int position, bool *found)
{
    const char *p = *cursor;
    while (*p && isspace((unsigned char)*p))
        p++;
    *found = false;
    if (!*p)
        return GAN_OK;
    memset(tok, 0, sizeof *tok);
    tok->position = position;
    const char *start = p;
    size_t n = 0;
    while (*p && (isalnum((unsigned char)*p) || *p == '_')) {
        if (n + 1 >= sizeof tok->name)
            return gan_error(GAN_ERR_CONFIG, "layer %d: name too long", position);
        tok->name[n++] = (char)tolower((unsigned char)*p++);
    }
    if (n == 0)
        return gan_error(GAN_ERR_CONFIG, "layer %d: unexpected character '%c'", position, *p);
    if (*p == '(') {
        tok->has_parens = true;
        p++;
        const char *close = strchr(p, ')');
        if (!close)
            return gan_error(GAN_ERR_CONFIG, "layer %d (%s): missing ')'", position, tok->name);
        char inner[256];
        size_t inner_len = (size_t)(close - p);
        if (inner_len >= sizeof inner)
            return gan_error(GAN_ERR_CONFIG, "layer %d (%s): arguments too long", position, tok->name);
        memcpy(inner, p, inner_len);
        inner[inner_len] = '\0';
        /* Split on commas by hand: strtok would silently merge "4,,2" into two
         * arguments. "name()" has no arguments; any other empty field is an error. */
        char *field = inner;
        bool blank = strspn(inner, " \t\r\n") == inner_len;
        while (!blank) {
            char *comma = strchr(field, ',');
            if (comma)
                *comma = '\0';
            if (tok->arg_count == MAX_ARGS)
                return gan_error(GAN_ERR_CONFIG, "layer %d (%s): too many arguments", position, tok->name);
            snprintf(tok->args[tok->arg_count], MAX_TOKEN, "%s", field);
            trim(tok->args[tok->arg_count]);
            if (!tok->args[tok->arg_count][0])
                return gan_error(GAN_ERR_CONFIG, "layer %d '%.*s': argument %d is empty", position,
                                 (int)(close + 1 - start), start, tok->arg_count + 1);
            tok->arg_count++;
            if (!comma)
                break;
            field = comma + 1;
        }
        p = close + 1;
    }
    if (*p && !isspace((unsigned char)*p))
        return gan_error(GAN_ERR_CONFIG, "layer %d (%s): expected white space after it, found '%c'",
                         position, tok->name, *p);
    size_t text_len = (size_t)(p - start);
    if (text_len >= sizeof tok->text)
        text_len = sizeof tok->text - 1;
    memcpy(tok->text, start, text_len);
    *cursor = p;
    *found = true;
    return GAN_OK;
}

static gan_status parse_int(const token *tok, int i, const char *what, int min, int *out)
{
    char *end = NULL;
    errno = 0;
    long value = strtol(tok->args[i], &end, 10);
    if (errno || end == tok->args[i] || *end || value < min || value > 1 << 24)
        return gan_error(GAN_ERR_CONFIG, "layer %d '%s': %s must be an integer >= %d, got '%s'",
                         tok->position, tok->text, what, min, tok->args[i]);
    *out = (int)value;
    return GAN_OK;
}

static gan_status parse_float(const token *tok, int i, const char *what, float min, float max,
                              bool max_inclusive, float *out)
{
    char *end = NULL;
    errno = 0;
    double value = strtod(tok->args[i], &end);
    bool in_range = value >= min && (max_inclusive ? value <= max : value < max);
    if (errno || end == tok->args[i] || *end || !isfinite(value) || !in_range)
        return gan_error(GAN_ERR_CONFIG, "layer %d '%s': %s must be a number in [%g, %g%c, got '%s'",
                         tok->position, tok->text, what, (double)min, (double)max,
                         max_inclusive ? ']' : ')', tok->args[i]);
    *out = (float)value;
    return GAN_OK;
}

static gan_status expect_args(const token *tok, int min, int max, const char *usage)
{
    if (tok->arg_count < min || tok->arg_count > max || (min > 0 && !tok->has_parens))
        return gan_error(GAN_ERR_CONFIG, "layer %d '%s': expected %s", tok->position, tok->text, usage);
    return GAN_OK;
}

/* conv, convt, linear: numbers then an optional trailing "bias". */
static gan_status parse_weighted(const token *tok, gan_layer_spec *spec, int numbers,
                                 const char *usage)
{
    int count = tok->arg_count;
    if (count > 0 && !strcmp(tok->args[count - 1], "bias")) {
        spec->bias = true;
        count--;
    }
    if (count != numbers || !tok->has_parens)
        return gan_error(GAN_ERR_CONFIG, "layer %d '%s': expected %s", tok->position, tok->text, usage);
    GAN_TRY(parse_int(tok, 0, "the output size", 1, &spec->out));
    if (numbers == 4) {
        GAN_TRY(parse_int(tok, 1, "the kernel size", 1, &spec->kernel));
        GAN_TRY(parse_int(tok, 2, "the stride", 1, &spec->stride));
        GAN_TRY(parse_int(tok, 3, "the padding", 0, &spec->pad));
    }
    return GAN_OK;
}

static gan_status parse_token(const token *tok, gan_layer_spec *spec)
{
    memset(spec, 0, sizeof *spec);
    const char *n = tok->name;
    if (!strcmp(n, "conv") || !strcmp(n, "convt")) {
        spec->kind = !strcmp(n, "conv") ? GAN_LAYER_CONV : GAN_LAYER_CONVT;
        return parse_weighted(tok, spec, 4, "(out,kernel,stride,padding[,bias])");
    }
    if (!strcmp(n, "linear")) {
        spec->kind = GAN_LAYER_LINEAR;
        return parse_weighted(tok, spec, 1, "(out[,bias])");
    }
    if (!strcmp(n, "lrelu")) {
        spec->kind = GAN_LAYER_LRELU;
        GAN_TRY(expect_args(tok, 1, 1, "lrelu(slope)"));
        return parse_float(tok, 0, "the slope", 0.0f, 1.0f, true, &spec->slope);
    }
    if (!strcmp(n, "dropout")) {
        spec->kind = GAN_LAYER_DROPOUT;
        GAN_TRY(expect_args(tok, 1, 1, "dropout(p)"));
        return parse_float(tok, 0, "p", 0.0f, 1.0f, false, &spec->drop_p);
    }
    if (!strcmp(n, "reshape")) {
        spec->kind = GAN_LAYER_RESHAPE;
        GAN_TRY(expect_args(tok, 3, 3, "reshape(c,h,w)"));
        GAN_TRY(parse_int(tok, 0, "c", 1, &spec->reshape.c));
        GAN_TRY(parse_int(tok, 1, "h", 1, &spec->reshape.h));
        return parse_int(tok, 2, "w", 1, &spec->reshape.w);
    }
    static const struct { const char *name; gan_layer_kind kind; } plain[] = {
        {"bn", GAN_LAYER_BN},           {"relu", GAN_LAYER_RELU},
        {"tanh", GAN_LAYER_TANH},       {"sigmoid", GAN_LAYER_SIGMOID},
        {"flatten", GAN_LAYER_FLATTEN},
    };
    for (size_t i = 0; i < sizeof plain / sizeof plain[0]; i++) {
        if (!strcmp(n, plain[i].name)) {
            spec->kind = plain[i].kind;
            if (tok->has_parens)
                return gan_error(GAN_ERR_CONFIG, "layer %d '%s': %s takes no arguments",
                                 tok->position, tok->text, n);
            return GAN_OK;
        }
    }
    return gan_error(GAN_ERR_CONFIG,
                     "layer %d '%s': unknown layer (known: conv convt linear bn relu lrelu tanh "
                     "sigmoid dropout flatten reshape)",
                     tok->position, tok->text);
}

gan_status gan_layers_parse(const char *text, gan_layer_spec **specs, int *count)
{
    *specs = NULL;
    *count = 0;
    if (!text)
        return gan_error(GAN_ERR_CONFIG, "empty layer sequence");
    size_t capacity = strlen(text) / 2 + 1;
    gan_layer_spec *list = calloc(capacity, sizeof *list);
    if (!list)
        return gan_error(GAN_ERR_NOMEM, "out of memory parsing layers");
    const char *cursor = text;
    int n = 0;
    for (;;) {
        token tok;
        bool found = false;
        gan_status status = next_token(&cursor, &tok, n + 1, &found);
        if (status == GAN_OK && found)
            status = parse_token(&tok, &list[n]);
        if (status != GAN_OK) {
            free(list);
            return status;
        }
        if (!found)
            break;
        n++;
    }
    if (n == 0) {
        free(list);
        return gan_error(GAN_ERR_CONFIG, "empty layer sequence");
    }
    *specs = list;
    *count = n;
    return GAN_OK;
}
