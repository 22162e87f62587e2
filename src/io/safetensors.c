/* safetensors reader and writer (see gan/safetensors.h for the rules). */
#include "gan/safetensors.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gan/crc32c.h"
#include "gan/file_atomic.h"

/* The reference implementation's MAX_HEADER_SIZE (decimal megabytes). */
static const uint64_t MAX_HEADER_BYTES = 100000000u;
enum { DATA_ALIGN = 64 };

static const struct {
    const char *name;
    size_t bytes;
} dtypes[] = {
    [GAN_ST_F32] = {"F32", 4}, [GAN_ST_F64] = {"F64", 8}, [GAN_ST_F16] = {"F16", 2},
    [GAN_ST_BF16] = {"BF16", 2}, [GAN_ST_I64] = {"I64", 8}, [GAN_ST_I32] = {"I32", 4},
    [GAN_ST_I16] = {"I16", 2}, [GAN_ST_I8] = {"I8", 1}, [GAN_ST_U8] = {"U8", 1},
    [GAN_ST_BOOL] = {"BOOL", 1},
};
enum { DTYPE_COUNT = sizeof dtypes / sizeof dtypes[0] };

static bool dtype_valid(gan_st_dtype dtype) { return (unsigned)dtype < DTYPE_COUNT; }

size_t gan_st_dtype_bytes(gan_st_dtype dtype) { return dtype_valid(dtype) ? dtypes[dtype].bytes : 0; }
const char *gan_st_dtype_name(gan_st_dtype dtype) { return dtype_valid(dtype) ? dtypes[dtype].name : "invalid"; }

void gan_safetensors_close(gan_safetensors *st)
{
    if (!st)
        return;
    for (int i = 0; i < st->tensor_count; i++)
        free(st->tensors[i].name);
    for (int i = 0; i < st->metadata_count; i++) {
        free(st->metadata[i].key);
        free(st->metadata[i].value);
    }
    free(st->tensors);
    free(st->metadata);
    free(st->allocation);
    free(st->path);
    memset(st, 0, sizeof *st);
}

/* Strict UTF-8 as Rust's str::from_utf8 checks it: no overlong forms, no surrogates, nothing
 * past U+10FFFF. On failure *bad is the offset of the first bad byte. */
static bool valid_utf8(const unsigned char *s, size_t n, size_t *bad)
{
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        size_t len;
        uint32_t cp, min;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xE0) == 0xC0) {
            len = 2, cp = c & 0x1F, min = 0x80;
        } else if ((c & 0xF0) == 0xE0) {
            len = 3, cp = c & 0x0F, min = 0x800;
        } else if ((c & 0xF8) == 0xF0) {
            len = 4, cp = c & 0x07, min = 0x10000;
        } else {
            *bad = i;
            return false;
        }
        bool ok = n - i >= len;
        for (size_t k = 1; ok && k < len; k++) {
            ok = (s[i + k] & 0xC0) == 0x80;
            cp = cp << 6 | (s[i + k] & 0x3Fu);
        }
        if (!ok || cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
            *bad = i;
            return false;
        }
        i += len;
    }
    return true;
}

static bool json_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

/* A JSON number that is an integer 0 <= n <= 2^53 (exact in a double). A number not written as
 * plain digits (2.0, 2e0, -0: the reference's integer parser refuses them) or above 2^53 arrives
 * here as NaN, from mark_numbers. */
static bool json_size(const cJSON *item, uint64_t *out)
{
    if (!cJSON_IsNumber(item))
        return false;
    double v = item->valuedouble;
    if (!(v >= 0.0) || v > 9007199254740992.0 || floor(v) != v)
        return false;
    *out = (uint64_t)v;
    return true;
}

/* serde_json's nesting limit, where the reference reader refuses a header (the outer object
 * counts as one level); it also bounds cJSON's recursion and ours. */
enum { MAX_JSON_DEPTH = 127 };

/* What the header text says about its numbers, in document order (cJSON keeps no text). */
typedef struct json_numbers {
    unsigned char *plain; /* [count]: 1 where written as plain digits, at most 2^53 (a size) */
    size_t count, capacity;
} json_numbers;

static bool is_digit(char c) { return c >= '0' && c <= '9'; }

/* RFC 8259's number: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?, all of s[0, n). */
static bool json_number_ok(const char *s, size_t n, bool *plain)
{
    size_t i = 0;
    if (i < n && s[i] == '-')
        i++;
    if (i < n && s[i] == '0')
        i++;
    else if (i < n && is_digit(s[i]))
        while (i < n && is_digit(s[i]))
            i++;
    else
        return false;
    *plain = s[0] != '-' && i == n;
    if (i < n && s[i] == '.') {
        size_t first = ++i;
        while (i < n && is_digit(s[i]))
            i++;
        if (i == first)
            return false;
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < n && (s[i] == '+' || s[i] == '-'))
            i++;
        size_t first = i;
        while (i < n && is_digit(s[i]))
            i++;
        if (i == first)
            return false;
    }
    return i == n;
}

/* What the reference's JSON parser (serde_json) refuses and cJSON lets through: control bytes
 * inside strings (raw tabs and newlines too), numbers outside JSON's grammar (01, 1., 1e),
 * nesting deeper than MAX_JSON_DEPTH. Also refused: "\u0000" in a string, which names and
 * metadata held as C strings cannot carry. Records which numbers are plain digits. Runs before
 * cJSON; syntax it does not look at (brackets that do not match, missing commas) is cJSON's. */
static gan_status scan_json_text(const char *origin, const char *s, size_t n, json_numbers *nums)
{
    int depth = 0;
    size_t i = 0;
    while (i < n) {
        char c = s[i];
        if (c == '"') {
            for (i++; i < n && s[i] != '"'; i++) {
                if ((unsigned char)s[i] < 0x20)
                    return gan_error(GAN_ERR_FORMAT, "%s: the header has control byte 0x%02x inside a "
                                                     "string at byte %zu (not valid JSON)",
                                     origin, (unsigned char)s[i], i);
                if (s[i] == '\\') {
                    if (n - i >= 6 && !memcmp(s + i, "\\u0000", 6))
                        return gan_error(GAN_ERR_FORMAT, "%s: the header has \\u0000 in a string at "
                                                         "byte %zu (a NUL in a name or metadata is not "
                                                         "supported)", origin, i);
                    i++; /* the escaped character cannot end the string */
                }
            }
            i++;
        } else if (c == '{' || c == '[') {
            if (++depth > MAX_JSON_DEPTH)
                return gan_error(GAN_ERR_FORMAT, "%s: the header nests deeper than %d levels at byte %zu",
                                 origin, MAX_JSON_DEPTH, i);
            i++;
        } else if (c == '}' || c == ']') {
            depth--;
            i++;
        } else if (c == '-' || is_digit(c)) {
            size_t start = i;
            while (i < n && (is_digit(s[i]) || s[i] == '-' || s[i] == '+' || s[i] == '.' ||
                             s[i] == 'e' || s[i] == 'E'))
                i++;
            bool plain = false;
            if (!json_number_ok(s + start, i - start, &plain))
                return gan_error(GAN_ERR_FORMAT, "%s: the header has an invalid JSON number '%.*s' at "
                                                 "byte %zu", origin, (int)(i - start < 40 ? i - start : 40),
                                 s + start, start);
            /* a size must also be exact in cJSON's double: 2^53 + 1 would be read as 2^53 */
            uint64_t value = 0;
            for (size_t k = start; plain && k < i; k++) {
                value = value * 10 + (uint64_t)(s[k] - '0');
                plain = value <= ((uint64_t)1 << 53);
            }
            if (nums->count == nums->capacity) {
                size_t capacity = nums->capacity ? 2 * nums->capacity : 64;
                unsigned char *grown = realloc(nums->plain, capacity);
                if (!grown)
                    return gan_error(GAN_ERR_NOMEM, "%s: out of memory", origin);
                nums->plain = grown;
                nums->capacity = capacity;
            }
            nums->plain[nums->count++] = plain;
        } else {
            i++;
        }
    }
    return GAN_OK;
}

/* Walks cJSON's tree in document order beside `nums` (once cJSON has accepted the text, its
 * numbers are exactly the ones scan_json_text saw, in the same order). A number out of a
 * double's range (1e400) is refused, as serde_json refuses it; one not written as plain digits
 * becomes NaN, which json_size refuses where a size is expected and nothing else reads. */
static gan_status mark_numbers(const char *origin, cJSON *item, const json_numbers *nums, size_t *next)
{
    for (; item; item = item->next) {
        if (cJSON_IsNumber(item)) {
            if (*next >= nums->count)
                return gan_error(GAN_ERR_FORMAT, "%s: the header's numbers could not be read", origin);
            if (isinf(item->valuedouble))
                return gan_error(GAN_ERR_FORMAT, "%s: the header has a number out of range (number %zu)",
                                 origin, *next + 1);
            if (!nums->plain[*next])
                item->valuedouble = NAN;
            ++*next;
        }
        gan_status status = item->child ? mark_numbers(origin, item->child, nums, next) : GAN_OK;
        if (status != GAN_OK)
            return status;
    }
    return GAN_OK;
}

static int compare_offsets(const void *a, const void *b)
{
    const gan_st_tensor *x = *(const gan_st_tensor *const *)a, *y = *(const gan_st_tensor *const *)b;
    const unsigned char *px = x->data, *py = y->data;
    if (px != py)
        return px < py ? -1 : 1;
    return x->nbytes < y->nbytes ? -1 : (x->nbytes > y->nbytes);
}

static int compare_names(const void *a, const void *b)
{
    return strcmp((*(const gan_st_tensor *const *)a)->name, (*(const gan_st_tensor *const *)b)->name);
}

static int compare_keys(const void *a, const void *b)
{
    return strcmp(((const gan_st_metadata *)a)->key, ((const gan_st_metadata *)b)->key);
}

static gan_status parse_tensor(const char *origin, const cJSON *entry, const unsigned char *data,
                               size_t data_size, gan_st_tensor *t)
{
    const char *name = entry->string;
    if (!cJSON_IsObject(entry))
        return gan_error(GAN_ERR_FORMAT, "%s: tensor '%s' is not a JSON object", origin, name);
    /* Fields other than these three are ignored, as the reference ignores them; one of them
     * given twice is refused, as the reference refuses it. */
    const cJSON *dtype = NULL, *shape = NULL, *offsets = NULL, *field;
    cJSON_ArrayForEach(field, entry) {
        const cJSON **slot = !strcmp(field->string, "dtype")          ? &dtype
                             : !strcmp(field->string, "shape")        ? &shape
                             : !strcmp(field->string, "data_offsets") ? &offsets
                                                                      : NULL;
        if (slot && *slot)
            return gan_error(GAN_ERR_FORMAT, "%s: tensor '%s': field '%s' appears twice", origin, name,
                             field->string);
        if (slot)
            *slot = field;
    }
    if (!cJSON_IsString(dtype))
        return gan_error(GAN_ERR_FORMAT, "%s: tensor '%s': dtype is %s", origin, name,
                         dtype ? "not a string" : "missing");
    if (!cJSON_IsArray(shape))
        return gan_error(GAN_ERR_FORMAT, "%s: tensor '%s': shape is %s", origin, name,
                         shape ? "not an array" : "missing");
    if (!cJSON_IsArray(offsets))
        return gan_error(GAN_ERR_FORMAT, "%s: tensor '%s': data_offsets is %s", origin, name,
                         offsets ? "not an array" : "missing");
    int d = 0;
    while (d < DTYPE_COUNT && strcmp(dtypes[d].name, dtype->valuestring))
        d++;
    if (d == DTYPE_COUNT)
        return gan_error(GAN_ERR_FORMAT,
                         "%s: tensor '%s' has unknown dtype '%s' (this reader knows F32, F64, F16, "
                         "BF16, I64, I32, I16, I8, U8, BOOL)",
                         origin, name, dtype->valuestring);
    t->dtype = (gan_st_dtype)d;
    t->ndim = cJSON_GetArraySize(shape);
    if (t->ndim > GAN_ST_MAX_DIMS)
        return gan_error(GAN_ERR_FORMAT, "%s: tensor '%s' has %d dimensions (at most %d)", origin,
                         name, t->ndim, GAN_ST_MAX_DIMS);
    uint64_t count = 1;
    for (int i = 0; i < t->ndim; i++) {
        uint64_t dim;
        if (!json_size(cJSON_GetArrayItem(shape, i), &dim))
            return gan_error(GAN_ERR_FORMAT, "%s: tensor '%s': shape[%d] is not a size (an integer "
                                             "0 <= n <= 2^53 written as plain digits)", origin, name, i);
        /* dims up to 2^53 each: keep count * 8 bytes below 2^64 */
        if (dim && count > UINT64_MAX / 8 / dim)
            return gan_error(GAN_ERR_FORMAT, "%s: tensor '%s': the shape's byte size overflows", origin, name);
        count *= dim;
        t->shape[i] = (int64_t)dim;
    }
    uint64_t begin, end;
    if (cJSON_GetArraySize(offsets) != 2 || !json_size(cJSON_GetArrayItem(offsets, 0), &begin) ||
        !json_size(cJSON_GetArrayItem(offsets, 1), &end) || begin > end)
        return gan_error(GAN_ERR_FORMAT, "%s: tensor '%s': data_offsets must be [begin, end], two "
                                         "sizes with begin <= end", origin, name);
    if (end > data_size)
        return gan_error(GAN_ERR_FORMAT,
                         "%s: tensor '%s': data_offsets [%" PRIu64 ", %" PRIu64 "] run past the %zu "
                         "data bytes (truncated file?)", origin, name, begin, end, data_size);
    if (end - begin != count * dtypes[d].bytes)
        return gan_error(GAN_ERR_FORMAT,
                         "%s: tensor '%s': %" PRIu64 " bytes for %" PRIu64 " values of %s (%zu bytes each)",
                         origin, name, end - begin, count, dtypes[d].name, dtypes[d].bytes);
    t->count = (size_t)count;
    t->nbytes = (size_t)(end - begin);
    t->data = data + begin;
    t->name = strdup(name);
    if (!t->name)
        return gan_error(GAN_ERR_NOMEM, "%s: out of memory", origin);
    return GAN_OK;
}

static gan_status parse_metadata(gan_safetensors *st, const cJSON *meta)
{
    if (cJSON_IsNull(meta)) /* the reference reads null as "no metadata" */
        return GAN_OK;
    if (!cJSON_IsObject(meta))
        return gan_error(GAN_ERR_FORMAT, "%s: __metadata__ is not an object", st->path);
    int n = cJSON_GetArraySize(meta);
    st->metadata = calloc((size_t)n + 1, sizeof *st->metadata);
    if (!st->metadata)
        return gan_error(GAN_ERR_NOMEM, "%s: out of memory", st->path);
    const cJSON *item;
    cJSON_ArrayForEach(item, meta) {
        if (!cJSON_IsString(item))
            return gan_error(GAN_ERR_FORMAT, "%s: __metadata__ value of '%s' is not a string",
                             st->path, item->string);
        gan_st_metadata *m = &st->metadata[st->metadata_count];
        m->key = strdup(item->string);
        m->value = strdup(item->valuestring);
        if (m->key && m->value)
            st->metadata_count++;
        if (!m->key || !m->value) {
            free(m->key);
            free(m->value);
            m->key = m->value = NULL;
            return gan_error(GAN_ERR_NOMEM, "%s: out of memory", st->path);
        }
    }
    /* Sorted by key, a repeated key sits next to itself (a hostile header may hold millions). */
    if (st->metadata_count > 1)
        qsort(st->metadata, (size_t)st->metadata_count, sizeof *st->metadata, compare_keys);
    for (int i = 1; i < st->metadata_count; i++)
        if (!strcmp(st->metadata[i - 1].key, st->metadata[i].key))
            return gan_error(GAN_ERR_FORMAT, "%s: __metadata__ key '%s' appears twice", st->path,
                             st->metadata[i].key);
    return GAN_OK;
}

/* Sorted by offset, each tensor must start where the last one ended and the last end at the end
 * of the data; sorted by name, no two may be equal. `sorted` has room for every tensor. */
static gan_status check_layout(const gan_safetensors *st, const unsigned char *data, size_t data_size,
                               const gan_st_tensor **sorted)
{
    int n = st->tensor_count;
    for (int i = 0; i < n; i++)
        sorted[i] = &st->tensors[i];
    if (n > 1)
        qsort(sorted, (size_t)n, sizeof *sorted, compare_names);
    for (int i = 1; i < n; i++)
        if (!strcmp(sorted[i - 1]->name, sorted[i]->name))
            return gan_error(GAN_ERR_FORMAT, "%s: tensor '%s' appears twice", st->path, sorted[i]->name);
    if (n > 1)
        qsort(sorted, (size_t)n, sizeof *sorted, compare_offsets);
    size_t expected = 0;
    for (int i = 0; i < n; i++) {
        size_t begin = (size_t)((const unsigned char *)sorted[i]->data - data);
        if (begin != expected)
            return gan_error(GAN_ERR_FORMAT, "%s: tensor '%s' starts at data byte %zu, expected %zu (%s)",
                             st->path, sorted[i]->name, begin, expected,
                             begin < expected ? "it overlaps another tensor" : "a hole before it");
        expected = begin + sorted[i]->nbytes;
    }
    if (expected != data_size)
        return gan_error(GAN_ERR_FORMAT, "%s: the tensors cover %zu of the %zu data bytes (the last "
                                         "tensor must end at the end of the file)",
                         st->path, expected, data_size);
    return GAN_OK;
}

/* The header's entries into st: __metadata__ (at most once) and the tensors. */
static gan_status parse_entries(gan_safetensors *st, const cJSON *root, const unsigned char *data,
                                size_t data_size)
{
    bool seen_metadata = false;
    const cJSON *entry;
    cJSON_ArrayForEach(entry, root) {
        if (!strcmp(entry->string, "__metadata__")) {
            if (seen_metadata)
                return gan_error(GAN_ERR_FORMAT, "%s: __metadata__ appears twice", st->path);
            GAN_TRY(parse_metadata(st, entry));
            seen_metadata = true;
            continue;
        }
        gan_status status = parse_tensor(st->path, entry, data, data_size, &st->tensors[st->tensor_count]);
        if (st->tensors[st->tensor_count].name)
            st->tensor_count++;
        GAN_TRY(status);
    }
    return GAN_OK;
}

/* The header text as a JSON object, one value only, with every number read as the text writes it
 * (scan_json_text, mark_numbers); the caller deletes *out. */
static gan_status parse_header_json(const gan_safetensors *st, const char *header, uint64_t header_len,
                                    cJSON **out)
{
    json_numbers nums = {0};
    cJSON *root = NULL;
    gan_status status = GAN_OK;
    GAN_CHECK(scan_json_text(st->path, header, (size_t)header_len, &nums));
    const char *end = NULL;
    root = cJSON_ParseWithLengthOpts(header, (size_t)header_len, &end, false);
    size_t parsed = end ? (size_t)(end - header) : 0;
    if (!root || !cJSON_IsObject(root)) {
        status = gan_error(GAN_ERR_FORMAT, "%s: the header is not valid JSON (error near byte %zu of %"
                                           PRIu64 ")", st->path, parsed, header_len);
        goto cleanup;
    }
    for (size_t i = parsed; i < header_len; i++)
        if (!json_space(header[i])) {
            status = gan_error(GAN_ERR_FORMAT, "%s: the header has more than one JSON value (byte %zu "
                                               "after the object)", st->path, i);
            goto cleanup;
        }
    size_t numbers_seen = 0;
    GAN_CHECK(mark_numbers(st->path, root, &nums, &numbers_seen));
    if (numbers_seen != nums.count) {
        status = gan_error(GAN_ERR_FORMAT, "%s: the header's numbers could not be read", st->path);
        goto cleanup;
    }
    free(nums.plain);
    *out = root;
    return GAN_OK;
cleanup:
    free(nums.plain);
    cJSON_Delete(root);
    return status;
}

/* Checks st->bytes[0, size) and fills tensors and metadata. */
static gan_status parse_owned(gan_safetensors *st)
{
    if (st->size < 8)
        return gan_error(GAN_ERR_FORMAT, "%s: %zu bytes: too short for a safetensors header", st->path,
                         st->size);
    uint64_t header_len = 0;
    for (int i = 7; i >= 0; i--)
        header_len = header_len << 8 | st->bytes[i];
    if (header_len > MAX_HEADER_BYTES)
        return gan_error(GAN_ERR_FORMAT, "%s: header length %" PRIu64 " is over the 100 MB limit (not "
                                         "a safetensors file?)", st->path, header_len);
    if (header_len > st->size - 8)
        return gan_error(GAN_ERR_FORMAT, "%s: header length %" PRIu64 " runs past the end of the "
                                         "%zu-byte file (truncated?)", st->path, header_len, st->size);
    const char *header = (const char *)st->bytes + 8;
    size_t bad;
    if (header_len == 0 || header[0] != '{')
        return gan_error(GAN_ERR_FORMAT, "%s: the header does not start with '{'", st->path);
    if (!valid_utf8(st->bytes + 8, (size_t)header_len, &bad))
        return gan_error(GAN_ERR_FORMAT, "%s: the header is not UTF-8 (byte %zu)", st->path, bad);
    for (size_t i = 0; i < header_len; i++)
        if ((unsigned char)header[i] < 0x20 && !json_space(header[i]))
            return gan_error(GAN_ERR_FORMAT, "%s: the header has control byte 0x%02x at byte %zu (not "
                                             "valid JSON)", st->path, (unsigned char)header[i], i);
    cJSON *root = NULL;
    GAN_TRY(parse_header_json(st, header, header_len, &root));
    const unsigned char *data = st->bytes + 8 + header_len;
    size_t data_size = st->size - 8 - (size_t)header_len;
    int n = cJSON_GetArraySize(root);
    gan_status status = GAN_OK;
    st->tensors = calloc((size_t)n + 1, sizeof *st->tensors);
    const gan_st_tensor **sorted = calloc((size_t)n + 1, sizeof *sorted);
    if (!st->tensors || !sorted) {
        status = gan_error(GAN_ERR_NOMEM, "%s: out of memory", st->path);
        goto cleanup;
    }
    GAN_CHECK(parse_entries(st, root, data, data_size));
    GAN_CHECK(check_layout(st, data, data_size, sorted));
cleanup:
    cJSON_Delete(root);
    free(sorted);
    return status;
}

/* Room for `size` file bytes placed so that the data section (after 8 + header_len bytes)
 * starts on a DATA_ALIGN boundary. */
static gan_status alloc_bytes(gan_safetensors *st, size_t size, uint64_t header_len)
{
    size_t pad = (size_t)((DATA_ALIGN - (8 + header_len % DATA_ALIGN) % DATA_ALIGN) % DATA_ALIGN);
    void *allocation = NULL;
    /* exactly the file's bytes (one for an empty file): AddressSanitizer sees a read past them */
    if (size > SIZE_MAX - pad || posix_memalign(&allocation, DATA_ALIGN, pad + (size ? size : 1)) != 0)
        return gan_error(GAN_ERR_NOMEM, "%s: out of memory for %zu bytes", st->path, size);
    st->allocation = allocation;
    st->bytes = (unsigned char *)allocation + pad;
    st->size = size;
    return GAN_OK;
}

static uint64_t header_length_field(const unsigned char *bytes, size_t size)
{
    uint64_t n = 0;
    for (int i = size >= 8 ? 7 : -1; i >= 0; i--)
        n = n << 8 | bytes[i];
    return n;
}

gan_status gan_safetensors_parse(const void *bytes, size_t size, const char *origin,
                                 gan_safetensors *out)
{
    memset(out, 0, sizeof *out);
    if (!bytes && size)
        return gan_error(GAN_ERR_ARG, "%s: no bytes given", origin ? origin : "(memory)");
    out->path = strdup(origin ? origin : "(memory)");
    if (!out->path)
        return gan_error(GAN_ERR_NOMEM, "out of memory");
    gan_status status = GAN_OK;
    GAN_CHECK(alloc_bytes(out, size, header_length_field(bytes, size)));
    if (size)
        memcpy(out->bytes, bytes, size);
    GAN_CHECK(parse_owned(out));
    return GAN_OK;
cleanup:
    gan_safetensors_close(out);
    return status;
}

/* The `size` bytes of the open file f into out (its path too). */
static gan_status read_file(FILE *f, const char *path, size_t size, gan_safetensors *out)
{
    unsigned char prefix[8];
    size_t prefix_got = fread(prefix, 1, sizeof prefix, f);
    out->path = strdup(path);
    if (!out->path)
        return gan_error(GAN_ERR_NOMEM, "%s: out of memory", path);
    GAN_TRY(alloc_bytes(out, size, header_length_field(prefix, prefix_got)));
    if (fseek(f, 0, SEEK_SET) != 0)
        return gan_error(GAN_ERR_IO, "%s: cannot seek: %s", path, strerror(errno));
    size_t got = fread(out->bytes, 1, size, f);
    if (got != size)
        return gan_error(GAN_ERR_IO, "%s: read %zu of %zu bytes", path, got, size);
    return GAN_OK;
}

gan_status gan_safetensors_open(const char *path, gan_safetensors *out)
{
    memset(out, 0, sizeof *out);
    struct stat info;
    if (stat(path, &info) == 0 && !S_ISREG(info.st_mode)) /* never open a FIFO: it would wait */
        return gan_error(GAN_ERR_IO, "%s: not a regular file", path);
    FILE *f = fopen(path, "rb");
    if (!f)
        return gan_error(GAN_ERR_IO, "%s: %s", path, strerror(errno));
    if (fstat(fileno(f), &info) != 0 || !S_ISREG(info.st_mode)) {
        fclose(f);
        return gan_error(GAN_ERR_IO, "%s: not a regular file", path);
    }
    gan_status status = read_file(f, path, (size_t)info.st_size, out);
    fclose(f);
    GAN_CHECK(status);
    GAN_CHECK(parse_owned(out));
    return GAN_OK;
cleanup:
    gan_safetensors_close(out);
    return status;
}

const gan_st_tensor *gan_safetensors_find(const gan_safetensors *st, const char *name)
{
    for (int i = 0; i < st->tensor_count; i++)
        if (!strcmp(st->tensors[i].name, name))
            return &st->tensors[i];
    return NULL;
}

const char *gan_safetensors_metadata(const gan_safetensors *st, const char *key)
{
    for (int i = 0; i < st->metadata_count; i++)
        if (!strcmp(st->metadata[i].key, key))
            return st->metadata[i].value;
    return NULL;
}

/* ---- the header's checksum ------------------------------------------------------------------ */

/* One tensor's entry as the checksum reads it. */
typedef struct header_entry {
    const char *name;
    gan_st_dtype dtype;
    int ndim;
    const int64_t *shape;
    uint64_t begin, end;
} header_entry;

static int compare_entry_names(const void *a, const void *b)
{
    return strcmp(((const header_entry *)a)->name, ((const header_entry *)b)->name);
}

static uint32_t crc_text(uint32_t crc, const char *text) { return gan_crc32c_extend(crc, text, strlen(text) + 1); }

/* CRC-32C of every tensor entry in name order (name, dtype, shape and data offsets, each written
 * as a NUL-ended text) and then every metadata pair in key order (key, value) but those of the
 * two checksums. `entries` is sorted here; `metadata` must be sorted by key already. The same
 * text on both sides, whatever order or spacing the JSON has. */
static uint32_t header_crc(header_entry *entries, int entry_count, const gan_st_metadata *metadata,
                           int metadata_count, const char *data_crc_key)
{
    if (entry_count > 1)
        qsort(entries, (size_t)entry_count, sizeof *entries, compare_entry_names);
    uint32_t crc = 0;
    char number[24];
    for (int i = 0; i < entry_count; i++) {
        crc = crc_text(crc, entries[i].name);
        crc = crc_text(crc, dtypes[entries[i].dtype].name);
        for (int d = 0; d < entries[i].ndim; d++) {
            snprintf(number, sizeof number, "%" PRId64, entries[i].shape[d]);
            crc = crc_text(crc, number);
        }
        snprintf(number, sizeof number, "%" PRIu64, entries[i].begin);
        crc = crc_text(crc, number);
        snprintf(number, sizeof number, "%" PRIu64, entries[i].end);
        crc = crc_text(crc, number);
    }
    for (int i = 0; i < metadata_count; i++) {
        if (!strcmp(metadata[i].key, GAN_ST_HEADER_CRC_KEY) ||
            (data_crc_key && !strcmp(metadata[i].key, data_crc_key)))
            continue;
        crc = crc_text(crc, metadata[i].key);
        crc = crc_text(crc, metadata[i].value);
    }
    return crc;
}

/* ---- writer ------------------------------------------------------------------------------- */

static bool text_ok(const char *s)
{
    size_t bad;
    return s && valid_utf8((const unsigned char *)s, strlen(s), &bad);
}

/* The byte size of a tensor to be written, after checking what the caller gave. */
static gan_status checked_nbytes(const char *path, const gan_st_tensor *t, int index, uint64_t *nbytes)
{
    if (!text_ok(t->name) || !strcmp(t->name, "__metadata__"))
        return gan_error(GAN_ERR_ARG, "%s: tensor %d: the name is missing, not UTF-8 or "
                                      "\"__metadata__\"", path, index);
    if (!dtype_valid(t->dtype) || t->ndim < 0 || t->ndim > GAN_ST_MAX_DIMS)
        return gan_error(GAN_ERR_ARG, "%s: tensor '%s': dtype %d or ndim %d is out of range", path,
                         t->name, (int)t->dtype, t->ndim);
    /* At most 2^50 elements (2^53 bytes): sizes and offsets stay exact in a JSON reader's doubles. */
    const uint64_t max_count = (uint64_t)1 << 50;
    uint64_t count = 1;
    for (int d = 0; d < t->ndim; d++) {
        if (t->shape[d] < 0 || (t->shape[d] && count > max_count / (uint64_t)t->shape[d]))
            return gan_error(GAN_ERR_ARG, "%s: tensor '%s': shape[%d] = %" PRId64 " is negative or "
                                          "too large", path, t->name, d, t->shape[d]);
        count *= (uint64_t)t->shape[d];
    }
    *nbytes = count * dtypes[t->dtype].bytes;
    if (*nbytes && !t->data)
        return gan_error(GAN_ERR_ARG, "%s: tensor '%s' has no data", path, t->name);
    return GAN_OK;
}

static bool add_size(cJSON *array, uint64_t value)
{
    char text[24];
    snprintf(text, sizeof text, "%" PRIu64, value);
    cJSON *item = cJSON_CreateRaw(text);
    if (!item || !cJSON_AddItemToArray(array, item)) {
        cJSON_Delete(item);
        return false;
    }
    return true;
}

/* The 8-byte length and the padded JSON header for tensors in the order `order`; malloc'ed. */
static gan_status build_header(const char *path, const gan_st_tensor *tensors, const int *order,
                               const uint64_t *nbytes, int tensor_count, const gan_st_metadata *metadata,
                               int metadata_count, unsigned char **out, size_t *out_size)
{
    cJSON *root = cJSON_CreateObject();
    bool ok = root != NULL;
    if (ok && metadata_count > 0) {
        cJSON *meta = cJSON_AddObjectToObject(root, "__metadata__");
        ok = meta != NULL;
        for (int i = 0; ok && i < metadata_count; i++)
            ok = cJSON_AddStringToObject(meta, metadata[i].key, metadata[i].value) != NULL;
    }
    uint64_t offset = 0;
    for (int k = 0; ok && k < tensor_count; k++) {
        const gan_st_tensor *t = &tensors[order[k]];
        /* keys in the reference writer's order */
        cJSON *entry = cJSON_AddObjectToObject(root, t->name);
        ok = entry && cJSON_AddStringToObject(entry, "dtype", dtypes[t->dtype].name);
        cJSON *shape = ok ? cJSON_AddArrayToObject(entry, "shape") : NULL;
        cJSON *offsets = shape ? cJSON_AddArrayToObject(entry, "data_offsets") : NULL;
        ok = offsets != NULL;
        for (int d = 0; ok && d < t->ndim; d++)
            ok = add_size(shape, (uint64_t)t->shape[d]);
        ok = ok && add_size(offsets, offset) && add_size(offsets, offset + nbytes[order[k]]);
        offset += nbytes[order[k]];
    }
    char *json = ok ? cJSON_PrintUnformatted(root) : NULL;
    cJSON_Delete(root);
    if (!json)
        return gan_error(GAN_ERR_NOMEM, "%s: out of memory for the header", path);
    size_t json_len = strlen(json), padded = (json_len + 7) / 8 * 8;
    unsigned char *bytes = malloc(8 + padded);
    if (!bytes) {
        free(json);
        return gan_error(GAN_ERR_NOMEM, "%s: out of memory for the header", path);
    }
    for (int i = 0; i < 8; i++)
        bytes[i] = (unsigned char)((uint64_t)padded >> (8 * i));
    memcpy(bytes + 8, json, json_len);
    memset(bytes + 8 + json_len, ' ', padded - json_len);
    free(json);
    *out = bytes;
    *out_size = 8 + padded;
    return GAN_OK;
}

/* Every tensor's byte size into `nbytes`, each tensor checked, and no name given twice; `by_name`
 * has room for every tensor. */
static gan_status check_tensors(const char *path, const gan_st_tensor *tensors, int tensor_count,
                                uint64_t *nbytes, const gan_st_tensor **by_name)
{
    for (int i = 0; i < tensor_count; i++) {
        GAN_TRY(checked_nbytes(path, &tensors[i], i, &nbytes[i]));
        by_name[i] = &tensors[i];
    }
    if (tensor_count > 1)
        qsort(by_name, (size_t)tensor_count, sizeof *by_name, compare_names);
    for (int i = 1; i < tensor_count; i++)
        if (!strcmp(by_name[i - 1]->name, by_name[i]->name))
            return gan_error(GAN_ERR_ARG, "%s: tensor '%s' given twice", path, by_name[i]->name);
    return GAN_OK;
}

gan_status gan_safetensors_write(const char *path, const gan_st_tensor *tensors, int tensor_count,
                                 const gan_st_metadata *metadata, int metadata_count)
{
    return gan_safetensors_write_with_crc(path, tensors, tensor_count, metadata, metadata_count, NULL);
}

gan_status gan_safetensors_write_with_crc(const char *path, const gan_st_tensor *tensors, int tensor_count,
                                          const gan_st_metadata *metadata, int metadata_count,
                                          const char *crc_key)
{
    if (!path || tensor_count < 0 || metadata_count < 0 || (tensor_count && !tensors) ||
        (metadata_count && !metadata))
        return gan_error(GAN_ERR_ARG, "safetensors write: no path, or counts without arrays");
    for (int i = 0; i < metadata_count; i++) {
        if (!text_ok(metadata[i].key) || !text_ok(metadata[i].value))
            return gan_error(GAN_ERR_ARG, "%s: metadata %d: key or value missing or not UTF-8", path, i);
        for (int j = 0; j < i; j++)
            if (!strcmp(metadata[i].key, metadata[j].key))
                return gan_error(GAN_ERR_ARG, "%s: metadata key '%s' given twice", path, metadata[i].key);
    }
    uint64_t *nbytes = calloc((size_t)tensor_count + 1, sizeof *nbytes);
    int *order = calloc((size_t)tensor_count + 1, sizeof *order);
    gan_st_tensor const **by_name = calloc((size_t)tensor_count + 1, sizeof *by_name);
    gan_st_metadata *with_crc = crc_key ? calloc((size_t)metadata_count + 2, sizeof *with_crc) : NULL;
    header_entry *entries = crc_key ? calloc((size_t)tensor_count + 1, sizeof *entries) : NULL;
    char data_crc_text[16], header_crc_text[16];
    unsigned char *header = NULL;
    size_t header_size = 0;
    gan_file_piece *pieces = NULL;
    gan_status status = GAN_OK;
    if (!nbytes || !order || !by_name || (crc_key && (!with_crc || !entries))) {
        status = gan_error(GAN_ERR_NOMEM, "%s: out of memory", path);
        goto cleanup;
    }
    GAN_CHECK(check_tensors(path, tensors, tensor_count, nbytes, by_name));
    /* Data by decreasing element size keeps every tensor aligned for its type (the header is a
     * multiple of 8 bytes, and each size class ends on a multiple of the next one's size). */
    int placed = 0;
    for (size_t element = 8; element >= 1; element /= 2)
        for (int i = 0; i < tensor_count; i++)
            if (dtypes[tensors[i].dtype].bytes == element)
                order[placed++] = i;
    if (crc_key) { /* the checksums of the data section and of the header go into the header */
        uint32_t crc = 0;
        uint64_t offset = 0;
        for (int k = 0; k < tensor_count; k++) {
            const gan_st_tensor *t = &tensors[order[k]];
            crc = gan_crc32c_extend(crc, t->data, (size_t)nbytes[order[k]]);
            entries[k] = (header_entry){t->name, t->dtype, t->ndim, t->shape, offset, offset + nbytes[order[k]]};
            offset += nbytes[order[k]];
        }
        snprintf(data_crc_text, sizeof data_crc_text, "%08x", crc);
        for (int i = 0; i < metadata_count; i++) {
            if (!strcmp(metadata[i].key, crc_key) || !strcmp(metadata[i].key, GAN_ST_HEADER_CRC_KEY)) {
                status = gan_error(GAN_ERR_ARG, "%s: metadata key '%s' is a checksum's", path, metadata[i].key);
                goto cleanup;
            }
            with_crc[i] = metadata[i];
        }
        if (metadata_count > 1)
            qsort(with_crc, (size_t)metadata_count, sizeof *with_crc, compare_keys);
        snprintf(header_crc_text, sizeof header_crc_text, "%08x",
                 header_crc(entries, tensor_count, with_crc, metadata_count, crc_key));
        with_crc[metadata_count] = (gan_st_metadata){(char *)crc_key, data_crc_text};
        with_crc[metadata_count + 1] = (gan_st_metadata){(char *)GAN_ST_HEADER_CRC_KEY, header_crc_text};
        metadata = with_crc;
        metadata_count += 2;
    }
    GAN_CHECK(build_header(path, tensors, order, nbytes, tensor_count, metadata, metadata_count,
                           &header, &header_size));
    pieces = calloc((size_t)tensor_count + 1, sizeof *pieces);
    if (!pieces) {
        status = gan_error(GAN_ERR_NOMEM, "%s: out of memory", path);
        goto cleanup;
    }
    pieces[0] = (gan_file_piece){header, header_size};
    for (int k = 0; k < tensor_count; k++)
        pieces[k + 1] = (gan_file_piece){tensors[order[k]].data, (size_t)nbytes[order[k]]};
    GAN_CHECK(gan_file_write_atomic(path, pieces, tensor_count + 1));
cleanup:
    free(pieces);
    free(header);
    free(by_name);
    free(order);
    free(nbytes);
    free(with_crc);
    free(entries);
    return status;
}

/* The metadata value of `key` as a CRC-32C (8 hex digits). */
static gan_status read_crc(const gan_safetensors *st, const char *key, const char *text, uint32_t *value)
{
    char *end = NULL;
    unsigned long parsed = strtoul(text, &end, 16);
    if (strlen(text) != 8 || *end || !isxdigit((unsigned char)text[0]))
        return gan_error(GAN_ERR_FORMAT, "%s: metadata '%s' is not a CRC-32C (8 hex digits): '%s'", st->path,
                         key, text);
    *value = (uint32_t)parsed;
    return GAN_OK;
}

gan_status gan_safetensors_check_crc(const gan_safetensors *st, const char *crc_key, bool *present)
{
    const char *want = gan_safetensors_metadata(st, crc_key);
    *present = want != NULL;
    if (!want)
        return GAN_OK;
    uint32_t value = 0;
    GAN_TRY(read_crc(st, crc_key, want, &value));
    uint64_t header_len = header_length_field(st->bytes, st->size);
    size_t start = (size_t)(8 + header_len);
    uint32_t got = gan_crc32c(st->bytes + start, st->size - start);
    if (got != value)
        return gan_error(GAN_ERR_FORMAT,
                         "%s: the tensor data does not match its checksum (CRC-32C %08x, the file says %s): "
                         "the file is damaged",
                         st->path, got, want);
    /* Files written before the header had a checksum have none: their data's is all there is. */
    const char *header_want = gan_safetensors_metadata(st, GAN_ST_HEADER_CRC_KEY);
    if (!header_want)
        return GAN_OK;
    GAN_TRY(read_crc(st, GAN_ST_HEADER_CRC_KEY, header_want, &value));
    header_entry *entries = calloc((size_t)st->tensor_count + 1, sizeof *entries);
    if (!entries)
        return gan_error(GAN_ERR_NOMEM, "%s: out of memory", st->path);
    const unsigned char *data = st->bytes + start;
    for (int i = 0; i < st->tensor_count; i++) {
        const gan_st_tensor *t = &st->tensors[i];
        uint64_t begin = t->nbytes ? (uint64_t)((const unsigned char *)t->data - data) : 0;
        entries[i] = (header_entry){t->name, t->dtype, t->ndim, t->shape, begin, begin + t->nbytes};
    }
    got = header_crc(entries, st->tensor_count, st->metadata, st->metadata_count, crc_key);
    free(entries);
    if (got != value)
        return gan_error(GAN_ERR_FORMAT,
                         "%s: the header (tensor names, shapes, offsets or metadata) does not match its checksum "
                         "(CRC-32C %08x, the file says %s): the file is damaged",
                         st->path, got, header_want);
    return GAN_OK;
}
