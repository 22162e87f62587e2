/* The safetensors reader against hostile input (runs under AddressSanitizer + UBSan in CI's
 * second pass of tools/test.sh): every malformed file below is refused with GAN_ERR_FORMAT and a
 * message naming the file and the problem, and thousands of random mutations of a valid file
 * (fixed seed) are each either refused the same way or read with every tensor inside the buffer
 * and the data tiled exactly. The rules are the format's (huggingface/safetensors README) and
 * what the reference parser (safetensors/src/tensor.rs on serde_json) refuses; where we refuse
 * more, gan/safetensors.h says so.
 *
 * With `--dump FILE...` it prints what the reader makes of each file instead (one line
 * "OK <tensors> <metadata>" or "REFUSED <message>", then "T <name hex> <dtype> <d0,d1,...>
 * <FNV-1a 64 of the bytes>" per tensor and "M <key hex> <value hex>" per metadata entry), for
 * tests/script_safetensors_official.sh to compare with the official Python package. */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gan/safetensors.h"
#include "test_util.h"

/* ---- building files ----------------------------------------------------------------------- */

typedef struct bytes {
    unsigned char *p;
    size_t n;
} bytes;

/* A file of the 8-byte length `len_field`, `header` and `data_bytes` bytes of data (0, 1, ...). */
static bytes make_file(const char *header, size_t header_len, uint64_t len_field, size_t data_bytes)
{
    bytes b = {malloc(8 + header_len + data_bytes + 1), 8 + header_len + data_bytes};
    for (int i = 0; i < 8; i++)
        b.p[i] = (unsigned char)(len_field >> (8 * i));
    memcpy(b.p + 8, header, header_len);
    for (size_t i = 0; i < data_bytes; i++)
        b.p[8 + header_len + i] = (unsigned char)i;
    return b;
}

/* The header with its true length. */
static bytes make(const char *header, size_t data_bytes)
{
    return make_file(header, strlen(header), strlen(header), data_bytes);
}

/* ---- the invariants of a file the reader accepted ------------------------------------------ */

static int compare_data(const void *a, const void *b)
{
    const gan_st_tensor *x = *(const gan_st_tensor *const *)a, *y = *(const gan_st_tensor *const *)b;
    const unsigned char *px = x->data, *py = y->data;
    if (px != py)
        return px < py ? -1 : 1;
    return x->nbytes < y->nbytes ? -1 : (x->nbytes > y->nbytes);
}

/* Everything a caller may rely on after GAN_OK; false (and a printed reason) if any fails. */
static bool consistent(const gan_safetensors *st, const char *what)
{
    if (st->size < 8 || !st->bytes || st->tensor_count < 0 || st->metadata_count < 0) {
        test_fail_at(__FILE__, __LINE__, "%s: accepted with a broken struct", what);
        return false;
    }
    uint64_t header_len = 0;
    for (int i = 7; i >= 0; i--)
        header_len = header_len << 8 | st->bytes[i];
    if (header_len > st->size - 8) {
        test_fail_at(__FILE__, __LINE__, "%s: accepted a header length past the end", what);
        return false;
    }
    const unsigned char *data = st->bytes + 8 + header_len, *end = st->bytes + st->size;
    const gan_st_tensor **sorted = calloc((size_t)st->tensor_count + 1, sizeof *sorted);
    bool ok = true;
    for (int i = 0; ok && i < st->tensor_count; i++) {
        const gan_st_tensor *t = &st->tensors[i];
        size_t element = gan_st_dtype_bytes(t->dtype), count = 1;
        ok = t->name && element && t->ndim >= 0 && t->ndim <= GAN_ST_MAX_DIMS;
        for (int d = 0; ok && d < t->ndim; d++) {
            ok = t->shape[d] >= 0;
            count *= (size_t)t->shape[d];
        }
        const unsigned char *p = t->data;
        ok = ok && count == t->count && t->nbytes == count * element && p >= data && p <= end &&
             t->nbytes <= (size_t)(end - p);
        for (int j = 0; ok && j < i; j++)
            ok = strcmp(st->tensors[j].name, t->name) != 0;
        if (!ok)
            test_fail_at(__FILE__, __LINE__, "%s: accepted tensor %d (%s) breaks an invariant", what, i,
                         t->name ? t->name : "(no name)");
        sorted[i] = t;
    }
    if (ok) { /* the data tiled exactly, as the format demands */
        qsort(sorted, (size_t)st->tensor_count, sizeof *sorted, compare_data);
        const unsigned char *at = data;
        for (int i = 0; ok && i < st->tensor_count; i++) {
            ok = sorted[i]->data == at;
            at += sorted[i]->nbytes;
        }
        ok = ok && at == end;
        if (!ok)
            test_fail_at(__FILE__, __LINE__, "%s: accepted with holes or overlaps in the data", what);
    }
    for (int i = 0; ok && i < st->metadata_count; i++) {
        ok = st->metadata[i].key && st->metadata[i].value;
        for (int j = 0; ok && j < i; j++)
            ok = strcmp(st->metadata[i].key, st->metadata[j].key) != 0;
        if (!ok)
            test_fail_at(__FILE__, __LINE__, "%s: accepted metadata entry %d breaks an invariant", what, i);
    }
    free(sorted);
    return ok;
}

/* ---- table of hostile files ---------------------------------------------------------------- */

/* `b` (freed here) must be refused as GAN_ERR_FORMAT, with `origin` and `needle` in the message
 * and nothing left to close. */
static void refused(const char *origin, bytes b, const char *needle)
{
    gan_safetensors st;
    gan_status status = gan_safetensors_parse(b.p, b.n, origin, &st);
    CHECK_MSG(status == GAN_ERR_FORMAT, "%s: %s instead of a format error", origin,
              status == GAN_OK ? "accepted" : gan_status_name(status));
    if (status == GAN_ERR_FORMAT) {
        const char *message = gan_error_message();
        CHECK_MSG(strstr(message, origin) != NULL, "%s: the message does not name it: %s", origin, message);
        CHECK_MSG(strstr(message, needle) != NULL, "%s: the message lacks '%s': %s", origin, needle, message);
        CHECK_MSG(!st.tensors && !st.metadata && !st.allocation && !st.path,
                  "%s: a refused parse left memory behind", origin);
    } else if (status == GAN_OK) {
        gan_safetensors_close(&st);
    }
    free(b.p);
}

/* `b` (freed here) must be read with `tensors` tensors and `metadata` entries. */
static void accepted(const char *origin, bytes b, int tensors, int metadata)
{
    gan_safetensors st;
    gan_status status = gan_safetensors_parse(b.p, b.n, origin, &st);
    CHECK_MSG(status == GAN_OK, "%s: refused: %s", origin, gan_error_message());
    if (status == GAN_OK) {
        CHECK_MSG(st.tensor_count == tensors && st.metadata_count == metadata,
                  "%s: %d tensors and %d metadata entries, expected %d and %d", origin, st.tensor_count,
                  st.metadata_count, tensors, metadata);
        CHECK(consistent(&st, origin));
        gan_safetensors_close(&st);
    }
    free(b.p);
}

/* One tensor "a" with the given dtype, shape and offsets text and `data_bytes` of data. */
static bytes one_tensor(const char *dtype, const char *shape, const char *offsets, size_t data_bytes)
{
    char header[512];
    snprintf(header, sizeof header, "{\"a\":{\"dtype\":%s,\"shape\":%s,\"data_offsets\":%s}}", dtype, shape,
             offsets);
    return make(header, data_bytes);
}

#define A_F32x2 "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}"

static void short_files(void)
{
    static const unsigned char zeros[8] = {0};
    for (size_t n = 0; n < 8; n++) {
        bytes b = {malloc(8), n};
        memcpy(b.p, zeros, 8);
        char origin[64];
        snprintf(origin, sizeof origin, "short-%zu-bytes", n);
        refused(origin, b, "too short");
    }
    gan_safetensors st;
    CHECK_FAILS_WITH(gan_safetensors_parse(NULL, 0, "no-bytes", &st), GAN_ERR_FORMAT, "too short");
    CHECK_FAILS_WITH(gan_safetensors_parse(NULL, 16, "null-bytes", &st), GAN_ERR_ARG, "null-bytes");
}

static void header_lengths(void)
{
    const char *h = "{" A_F32x2 "}";
    size_t n = strlen(h);
    refused("length-past-end-by-1", make_file(h, n, n + 8 + 1, 0), "past the end");
    refused("length-past-end", make_file(h, n, n + 1000, 8), "past the end");
    refused("length-2^32", make_file(h, n, (uint64_t)1 << 32, 8), "100 MB");
    refused("length-over-limit", make_file(h, n, 100000001, 8), "100 MB");
    refused("length-2^63", make_file(h, n, (uint64_t)1 << 63, 8), "100 MB");
    refused("length-2^64-1", make_file(h, n, UINT64_MAX, 8), "100 MB");
    refused("length-overflows-plus-8", make_file(h, n, UINT64_MAX - 7, 8), "100 MB");
    refused("length-overflows-plus-8b", make_file(h, n, UINT64_MAX - 3, 8), "100 MB");
    refused("length-zero", make_file(h, n, 0, 8), "'{'");
    refused("length-cuts-json", make_file(h, n, n - 1, 8), "not valid JSON");
    /* a length that stops short leaves the rest of the header as "data" */
    refused("length-short-by-2", make_file(h, n, n - 2, 8), "not valid JSON");
}

/* Tensor "a" (F32 [2]) with a field nested `levels` deep, counting the outer object and the
 * tensor's entry; into `out` (1024 bytes). */
static const char *nested_header(char *out, int levels)
{
    int k = snprintf(out, 1024, "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8],\"x\":");
    for (int i = 0; i < levels - 2; i++)
        out[k++] = '[';
    for (int i = 0; i < levels - 2; i++)
        out[k++] = ']';
    snprintf(out + k, (size_t)(1024 - k), "}}");
    return out;
}

static void not_json(void)
{
    refused("not-json", make("hello", 0), "'{'");
    refused("truncated-json", make("{\"a\":{\"dtype\":\"F32\"", 0), "not valid JSON");
    refused("truncated-json-string", make("{\"a", 0), "not valid JSON");
    refused("unclosed-object", make("{" A_F32x2, 8), "not valid JSON");
    refused("array", make("[1,2]", 0), "'{'");
    refused("string", make("\"{}\"", 0), "'{'");
    refused("number", make("42", 0), "'{'");
    refused("null", make("null", 0), "'{'");
    refused("leading-space", make(" {}", 0), "'{'");
    refused("utf8-bom", make("\xef\xbb\xbf{}", 0), "'{'");
    refused("trailing-garbage", make("{}x", 0), "more than one JSON value");
    refused("trailing-object", make("{} {}", 0), "more than one JSON value");
    refused("trailing-comma-after", make("{},", 0), "more than one JSON value");
    refused("trailing-nul", make_file("{}\0", 3, 3, 0), "control byte");
    refused("trailing-comma-inside", make("{" A_F32x2 ",}", 8), "not valid JSON");
    refused("single-quotes", make("{'a':1}", 0), "not valid JSON");
    refused("comment", make("{/* */}", 0), "not valid JSON");
    refused("bad-escape", make("{\"\\x41\":{}}", 0), "not valid JSON");
    refused("lone-surrogate", make("{\"\\ud800\":{}}", 0), "not valid JSON");
    refused("bad-utf8", make("{\"\xff\":{}}", 0), "not UTF-8");
    refused("truncated-utf8", make("{\"\xe2\x82\":{}}", 0), "not UTF-8");
    refused("tab-in-name", make("{\"a\tb\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}", 1),
            "control byte 0x09 inside a string");
    refused("newline-in-metadata", make("{\"__metadata__\":{\"k\":\"a\nb\"}}", 0), "control byte 0x0a");
    refused("nul-escape-in-name", make("{\"a\\u0000b\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}", 1),
            "\\u0000");
    refused("leading-zero", make("{\"a\":{\"dtype\":\"F32\",\"shape\":[02],\"data_offsets\":[0,8]}}", 8),
            "invalid JSON number '02'");
    refused("bare-point", make("{" A_F32x2 ",\"x\":{\"y\":1.}}", 8), "invalid JSON number '1.'");
    refused("bare-exponent", make("{" A_F32x2 ",\"x\":{\"y\":1e}}", 8), "invalid JSON number '1e'");
    refused("bare-minus", make("{" A_F32x2 ",\"x\":{\"y\":-}}", 8), "invalid JSON number '-'");
    refused("number-out-of-range", make("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8],"
                                        "\"x\":1e400}}", 8), "out of range");

    /* nesting: 127 levels is serde_json's most, so the reference reader's too */
    char deep[1024];
    accepted("nested-127", make(nested_header(deep, 127), 8), 1, 0);
    refused("nested-128", make(nested_header(deep, 128), 8), "deeper than 127");
    size_t huge = 200000; /* no recursion 200,000 deep anywhere */
    char *brackets = malloc(huge + 2);
    brackets[0] = '{';
    memset(brackets + 1, '[', huge);
    brackets[huge + 1] = '\0';
    refused("nested-200000", make(brackets, 0), "deeper than 127");
    free(brackets);
}

static void entries(void)
{
    refused("entry-not-object", make("{\"a\":[1,2]}", 0), "not a JSON object");
    refused("entry-null", make("{\"a\":null}", 0), "not a JSON object");
    refused("no-dtype", make("{\"a\":{\"shape\":[2],\"data_offsets\":[0,8]}}", 8), "dtype is missing");
    refused("no-shape", make("{\"a\":{\"dtype\":\"F32\",\"data_offsets\":[0,8]}}", 8), "shape is missing");
    refused("no-offsets", make("{\"a\":{\"dtype\":\"F32\",\"shape\":[2]}}", 8), "data_offsets is missing");
    refused("empty-entry", make("{\"a\":{}}", 0), "dtype is missing");
    refused("dtype-number", one_tensor("5", "[2]", "[0,8]", 8), "dtype is not a string");
    refused("dtype-null", one_tensor("null", "[2]", "[0,8]", 8), "dtype is not a string");
    refused("shape-object", one_tensor("\"F32\"", "{}", "[0,8]", 8), "shape is not an array");
    refused("shape-number", one_tensor("\"F32\"", "2", "[0,8]", 8), "shape is not an array");
    refused("offsets-string", one_tensor("\"F32\"", "[2]", "\"0,8\"", 8), "data_offsets is not an array");
    refused("dtype-twice", make("{\"a\":{\"dtype\":\"F32\",\"dtype\":\"I32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8),
            "field 'dtype' appears twice");
    refused("shape-twice", make("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"shape\":[2],\"data_offsets\":[0,8]}}", 8),
            "field 'shape' appears twice");
    refused("offsets-twice",
            make("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8],\"data_offsets\":[0,8]}}", 8),
            "field 'data_offsets' appears twice");

    /* dtype names: exact, upper case, ours (the reference knows a few more: refused by name) */
    const char *bad_dtypes[] = {"\"f32\"", "\"FLOAT\"", "\"\"", "\"F32 \"", "\" F32\"", "\"float32\"", "\"U16\"",
                                "\"F8_E4M3\"", "\"C64\""};
    for (size_t i = 0; i < sizeof bad_dtypes / sizeof bad_dtypes[0]; i++) {
        char origin[64];
        snprintf(origin, sizeof origin, "dtype-%zu", i);
        refused(origin, one_tensor(bad_dtypes[i], "[2]", "[0,8]", 8), "unknown dtype");
    }

    /* shape entries */
    struct {
        const char *shape, *needle;
    } shapes[] = {
        {"[-2]", "shape[0] is not a size"},
        {"[2,-1]", "shape[1] is not a size"},
        {"[1.5]", "not a size"},
        {"[2.0]", "not a size"},     /* the reference reads sizes as integers only */
        {"[2e0]", "not a size"},
        {"[0.2e1]", "not a size"},
        {"[-0]", "not a size"},
        {"[\"2\"]", "not a size"},
        {"[null]", "not a size"},
        {"[true]", "not a size"},
        {"[[2]]", "not a size"},
        {"[9007199254740993]", "not a size"},              /* 2^53 + 1: not exact in a double */
        {"[18446744073709551616]", "not a size"},          /* 2^64 */
        {"[4294967296,4294967296,4294967296]", "overflows"}, /* 2^96 elements */
        {"[2147483648,2147483648,4]", "overflows"},         /* 2^64 elements: wraps to 0 in 64 bits */
        {"[2305843009213693952,1]", "not a size"},          /* 2^61 elements of 4 bytes, > 2^53 */
        {"[1,1,1,1,1,1,1,1,1]", "dimensions"},
        {"[3]", "8 bytes for 3 values"},
        {"[]", "8 bytes for 1 values"},
        {"[0]", "8 bytes for 0 values"},
    };
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        char origin[64];
        snprintf(origin, sizeof origin, "shape-%zu-%s", i, shapes[i].shape);
        refused(origin, one_tensor("\"F32\"", shapes[i].shape, "[0,8]", 8), shapes[i].needle);
    }
    /* a product that wraps to exactly the byte count in 64-bit arithmetic is still an overflow */
    refused("shape-wraps-to-size", one_tensor("\"U8\"", "[4294967296,4294967296,1]", "[0,0]", 0), "overflows");

    /* data_offsets */
    struct {
        const char *offsets, *needle;
        size_t data;
    } offsets[] = {
        {"[0,16]", "past the 8 data bytes", 8},
        {"[8,16]", "past the 8 data bytes", 8},
        {"[0,8]", "past the 4 data bytes", 4},
        {"[8,0]", "begin <= end", 8},
        {"[0]", "begin <= end", 8},
        {"[0,8,8]", "begin <= end", 8},
        {"[]", "begin <= end", 8},
        {"[-8,0]", "begin <= end", 8},
        {"[0,8.0]", "begin <= end", 8},
        {"[0,8e0]", "begin <= end", 8},
        {"[\"0\",8]", "begin <= end", 8},
        {"[0,null]", "begin <= end", 8},
        {"[0,18446744073709551615]", "begin <= end", 8},
        {"[0,1e300]", "begin <= end", 8},
        {"[4,12]", "hole", 12},
        {"[0,8]", "cover 8 of the 12", 12},
    };
    for (size_t i = 0; i < sizeof offsets / sizeof offsets[0]; i++) {
        char origin[64];
        snprintf(origin, sizeof origin, "offsets-%zu-%s", i, offsets[i].offsets);
        refused(origin, one_tensor("\"F32\"", "[2]", offsets[i].offsets, offsets[i].data), offsets[i].needle);
    }
    refused("overlap", make("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                            "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12), "overlaps");
    refused("overlap-inside", make("{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
                                   "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 16), "overlaps");
    refused("empty-inside", make("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                                 "\"z\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[4,4]}}", 8), "overlaps");
    refused("same-range", make("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                               "\"b\":{\"dtype\":\"I32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8), "overlaps");
    refused("hole-between", make("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                                 "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}", 12), "hole");
    refused("data-after-last", make("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 5),
            "cover 4 of the 5");
    refused("data-but-no-tensors", make("{}", 3), "cover 0 of the 3");
    refused("duplicate-name", make("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                                   "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8),
            "'a' appears twice");
    refused("duplicate-name-same-range", make("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                                              "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4),
            "appears twice");
    refused("duplicate-name-escaped", make("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                                           "\"\\u0061\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8),
            "'a' appears twice");
}

static void metadata(void)
{
    const char *bad[][2] = {
        {"{\"__metadata__\":{\"k\":3}}", "'k' is not a string"},
        {"{\"__metadata__\":{\"k\":null}}", "'k' is not a string"},
        {"{\"__metadata__\":{\"k\":true}}", "'k' is not a string"},
        {"{\"__metadata__\":{\"k\":[\"v\"]}}", "'k' is not a string"},
        {"{\"__metadata__\":{\"k\":{\"v\":\"w\"}}}", "'k' is not a string"},
        {"{\"__metadata__\":{\"a\":\"1\",\"k\":2.5}}", "'k' is not a string"},
        {"{\"__metadata__\":[]}", "__metadata__ is not an object"},
        {"{\"__metadata__\":\"v\"}", "__metadata__ is not an object"},
        {"{\"__metadata__\":7}", "__metadata__ is not an object"},
        {"{\"__metadata__\":{},\"__metadata__\":{}}", "__metadata__ appears twice"},
        {"{\"__metadata__\":{\"k\":\"1\",\"k\":\"2\"}}", "'k' appears twice"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char origin[64];
        snprintf(origin, sizeof origin, "metadata-%zu", i);
        refused(origin, make(bad[i][0], 0), bad[i][1]);
    }
}

/* What the format allows must still be read. */
static void allowed(void)
{
    accepted("padded-spaces", make("{" A_F32x2 "}       ", 8), 1, 0);
    accepted("padded-whitespace", make("{" A_F32x2 "} \t\r\n", 8), 1, 0);
    accepted("header-length-odd", make("{" A_F32x2 "}", 8), 1, 0); /* not a multiple of 8 */
    accepted("empty-header", make("{}", 0), 0, 0);
    accepted("metadata-only", make("{\"__metadata__\":{\"a\":\"\",\"b\":\"\\u00e9\\n\"}}", 0), 0, 2);
    accepted("metadata-null", make("{\"__metadata__\":null}", 0), 0, 0);
    accepted("extra-fields", make("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8],"
                                  "\"x\":-1.5e3,\"y\":[{}],\"z\":null}}", 8), 1, 0);
    accepted("zero-size-tensors", make("{\"z\":{\"dtype\":\"F32\",\"shape\":[0,4],\"data_offsets\":[0,0]},"
                                       "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                                       "\"e\":{\"dtype\":\"I64\",\"shape\":[3,0],\"data_offsets\":[8,8]}}", 8), 3, 0);
    accepted("scalar", make("{\"s\":{\"dtype\":\"I64\",\"shape\":[],\"data_offsets\":[0,8]}}", 8), 1, 0);
    accepted("huge-empty", one_tensor("\"F64\"", "[0,9007199254740992]", "[0,0]", 0), 1, 0);
    accepted("escaped-name", make("{\"\\u0061\\\"\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}", 1), 1, 0);
    accepted("whitespace-inside", make("{ \"a\" : {\n\"dtype\" : \"F32\" ,\t\"shape\" : [ 2 ] , "
                                       "\"data_offsets\" : [ 0 , 8 ] } }", 8), 1, 0);
    accepted("reverse-order", make("{\"b\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[4,5]},"
                                   "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 5), 2, 0);
}

/* Through a real file, the message names the path. */
static void through_files(const char *dir)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/overlap.safetensors", dir);
    bytes b = make("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                   "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12);
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL);
    if (f) {
        fwrite(b.p, 1, b.n, f);
        fclose(f);
    }
    free(b.p);
    gan_safetensors st;
    CHECK_FAILS_WITH(gan_safetensors_open(path, &st), GAN_ERR_FORMAT, path);
    CHECK(st.tensors == NULL && st.allocation == NULL);
    for (size_t n = 0; n < 8; n++) {
        snprintf(path, sizeof path, "%s/short%zu.safetensors", dir, n);
        f = fopen(path, "wb");
        CHECK(f != NULL);
        if (f) {
            fwrite("\x02\0\0\0\0\0\0\0", 1, n, f);
            fclose(f);
        }
        CHECK_FAILS_WITH(gan_safetensors_open(path, &st), GAN_ERR_FORMAT, path);
    }
}

/* ---- deterministic random mutations -------------------------------------------------------- */

static uint64_t rng_state = 0x9E3779B97F4A7C15u;
static uint64_t next_random(void) /* xorshift64* */
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545F4914F6CDD1Du;
}
static size_t below(size_t n) { return n ? (size_t)(next_random() % n) : 0; }

/* Pieces a JSON-aware mutation splices in. */
static const char *const tokens[] = {
    "{", "}", "[", "]", ",", ":", "\"", "\\", " ", "0", "1", "-1", "9", "1e400", "2.0", "-0", "00",
    "4294967296", "18446744073709551615", "9007199254740993", "null", "true", "\"F32\"", "\"I64\"",
    "\"U16\"", "\"dtype\"", "\"shape\"", "\"data_offsets\"", "\"__metadata__\"", "\\u0000", "\\ud800",
    "\xc3\xa9", "\xff", "\t", "[0,0]", "[]", "{}", "\"a\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[0,0]},",
};

enum mutation {
    FLIP_BIT, SET_BYTE, TRUNCATE, INSERT_RANDOM, INSERT_TOKEN, DELETE_RANGE, DUPLICATE_RANGE,
    LENGTH_FIELD, MUTATION_KINDS
};
static const char *const mutation_names[] = {"flip bit", "set byte", "truncate", "insert random",
                                             "insert token", "delete range", "duplicate range",
                                             "length field"};

typedef struct buffer {
    unsigned char *p;
    size_t n, capacity;
} buffer;

static void insert_at(buffer *b, size_t at, const void *src, size_t n)
{
    if (b->n + n > b->capacity) {
        b->capacity = 2 * (b->n + n);
        b->p = realloc(b->p, b->capacity);
    }
    memmove(b->p + at + n, b->p + at, b->n - at);
    memcpy(b->p + at, src, n);
    b->n += n;
}

static uint64_t length_field(const buffer *b)
{
    uint64_t n = 0;
    for (int i = b->n >= 8 ? 7 : -1; i >= 0; i--)
        n = n << 8 | b->p[i];
    return n;
}

static void set_length_field(buffer *b, uint64_t n)
{
    for (int i = 0; i < 8 && (size_t)i < b->n; i++)
        b->p[i] = (unsigned char)(n >> (8 * i));
}

/* One mutation of kind `kind`. Most stay inside the header and keep the length field true to
 * it, so that the JSON and the checks behind it see them rather than the length check. */
static void mutate(buffer *b, enum mutation kind, size_t header_len)
{
    bool in_header = header_len > 0 && b->n >= 8 + header_len && below(4) != 0;
    size_t lo = in_header ? 8 : 0, span = in_header ? header_len : b->n;
    size_t at = lo + below(span);
    size_t before = b->n;
    switch (kind) {
    case FLIP_BIT:
        if (b->n)
            b->p[below(b->n)] ^= (unsigned char)(1u << below(8));
        break;
    case SET_BYTE: {
        static const unsigned char interesting[] = {0x00, 0x01, 0x09, 0x0a, 0x20, 0x22, 0x2c, 0x2d, 0x2e,
                                                    0x30, 0x31, 0x39, 0x3a, 0x5b, 0x5c, 0x5d, 0x7b,
                                                    0x7d, 0x7f, 0x80, 0xc3, 0xff, 'e', 'E', 'u'};
        if (at < b->n)
            b->p[at] = below(3) ? interesting[below(sizeof interesting)] : (unsigned char)next_random();
        break;
    }
    case TRUNCATE:
        b->n = below(b->n + 1);
        in_header = false;
        break;
    case INSERT_RANDOM: {
        unsigned char junk[16];
        size_t n = 1 + below(sizeof junk);
        for (size_t i = 0; i < n; i++)
            junk[i] = (unsigned char)next_random();
        insert_at(b, at <= b->n ? at : b->n, junk, n);
        break;
    }
    case INSERT_TOKEN: {
        const char *token = tokens[below(sizeof tokens / sizeof tokens[0])];
        insert_at(b, at <= b->n ? at : b->n, token, strlen(token));
        break;
    }
    case DELETE_RANGE: {
        if (at < b->n) {
            size_t n = 1 + below(in_header ? 12 : 32);
            if (n > b->n - at)
                n = b->n - at;
            if (in_header && n > header_len - (at - 8))
                n = header_len - (at - 8);
            memmove(b->p + at, b->p + at + n, b->n - at - n);
            b->n -= n;
        }
        break;
    }
    case DUPLICATE_RANGE: {
        if (at < b->n) {
            size_t n = 1 + below(in_header ? 24 : 64);
            if (n > b->n - at)
                n = b->n - at;
            if (in_header && n > header_len - (at - 8))
                n = header_len - (at - 8);
            unsigned char copy[64];
            memcpy(copy, b->p + at, n);
            insert_at(b, at, copy, n);
        }
        break;
    }
    case LENGTH_FIELD: {
        static const uint64_t lengths[] = {0, 1, 7, 8, 100000000, 100000001, UINT64_MAX, UINT64_MAX - 7,
                                           (uint64_t)1 << 63, (uint64_t)1 << 32};
        uint64_t n = length_field(b);
        switch (below(3)) {
        case 0: n = lengths[below(sizeof lengths / sizeof lengths[0])]; break;
        case 1: n += below(17) - 8; break;
        default: n = below(b->n + 1); break;
        }
        set_length_field(b, n);
        in_header = false;
        break;
    }
    default:
        break;
    }
    if (in_header && b->n != before && b->n >= 8) /* the header grew or shrank: say so */
        set_length_field(b, header_len + b->n - before);
}

/* A valid file with every dtype, a scalar, an empty tensor and metadata, by our writer. */
static buffer seed_file(const char *dir)
{
    float f32[6] = {1, -2, 3.5f, 0, 1e-3f, 7};
    double f64[2] = {0.25, -8};
    int64_t step = 3;
    int32_t i32[3] = {-1, 0, 1};
    uint16_t f16[2] = {0x3c00, 0xc000}, bf16[1] = {0x3f80};
    int16_t i16[1] = {-7};
    int8_t i8[3] = {-1, 2, -3};
    uint8_t u8[5] = {1, 2, 3, 4, 5}, flags[2] = {1, 0};
    gan_st_tensor tensors[] = {
        {.name = "main.0.weight", .dtype = GAN_ST_F32, .ndim = 4, .shape = {1, 2, 3, 1}, .data = f32},
        {.name = "main.1.num_batches_tracked", .dtype = GAN_ST_I64, .ndim = 0, .data = &step},
        {.name = "d", .dtype = GAN_ST_F64, .ndim = 1, .shape = {2}, .data = f64},
        {.name = "h", .dtype = GAN_ST_F16, .ndim = 2, .shape = {2, 1}, .data = f16},
        {.name = "bf", .dtype = GAN_ST_BF16, .ndim = 1, .shape = {1}, .data = bf16},
        {.name = "i32", .dtype = GAN_ST_I32, .ndim = 1, .shape = {3}, .data = i32},
        {.name = "i16", .dtype = GAN_ST_I16, .ndim = 1, .shape = {1}, .data = i16},
        {.name = "i8", .dtype = GAN_ST_I8, .ndim = 1, .shape = {3}, .data = i8},
        {.name = "u8", .dtype = GAN_ST_U8, .ndim = 1, .shape = {5}, .data = u8},
        {.name = "flags", .dtype = GAN_ST_BOOL, .ndim = 1, .shape = {2}, .data = flags},
        {.name = "empty", .dtype = GAN_ST_F32, .ndim = 2, .shape = {0, 3}, .data = NULL},
    };
    gan_st_metadata meta[] = {{"format", "pt"}, {"step", "3"}, {"note", "caf\xc3\xa9 \"quoted\" \\ tab\t"}};
    char path[4200];
    snprintf(path, sizeof path, "%s/seed.safetensors", dir);
    CHECK_OK(gan_safetensors_write(path, tensors, (int)(sizeof tensors / sizeof tensors[0]), meta, 3));
    buffer b = {0};
    FILE *f = fopen(path, "rb");
    if (f) {
        b.capacity = 1 << 16;
        b.p = malloc(b.capacity);
        b.n = fread(b.p, 1, b.capacity, f);
        fclose(f);
    }
    gan_safetensors st;
    CHECK_OK(gan_safetensors_parse(b.p, b.n, "seed", &st));
    CHECK(st.tensor_count == 11 && st.metadata_count == 3 && consistent(&st, "seed"));
    gan_safetensors_close(&st);
    return b;
}

static void mutations(const char *dir)
{
    buffer seed = seed_file(dir);
    if (!seed.p || seed.n < 8)
        return;
    size_t header_len = (size_t)length_field(&seed);
    enum { ROUNDS = 40000 };
    int ok[MUTATION_KINDS] = {0}, refused_count[MUTATION_KINDS] = {0}, other = 0, unnamed = 0;
    buffer b = {malloc(seed.capacity), 0, seed.capacity};
    for (int round = 0; round < ROUNDS; round++) {
        memcpy(b.p, seed.p, seed.n);
        b.n = seed.n;
        /* 1 to 4 stacked mutations; the first one's kind is what the round is counted under */
        enum mutation first = (enum mutation)below(MUTATION_KINDS);
        int stacked = 1 + (int)(below(8) == 0 ? below(4) : 0);
        size_t current_header = header_len;
        for (int m = 0; m < stacked; m++) {
            enum mutation kind = m == 0 ? first : (enum mutation)below(MUTATION_KINDS);
            mutate(&b, kind, current_header);
            current_header = (size_t)length_field(&b);
            if (current_header > b.n)
                current_header = 0;
        }
        char origin[64];
        snprintf(origin, sizeof origin, "mutant-%d", round);
        gan_safetensors st;
        gan_status status = gan_safetensors_parse(b.p, b.n, origin, &st);
        if (status == GAN_OK) {
            ok[first]++;
            if (!consistent(&st, origin))
                fprintf(stderr, "  (%s, round %d)\n", mutation_names[first], round);
            gan_safetensors_close(&st);
        } else if (status == GAN_ERR_FORMAT) {
            refused_count[first]++;
            if (!strstr(gan_error_message(), origin))
                unnamed++;
        } else {
            other++;
            test_fail_at(__FILE__, __LINE__, "%s (%s): %s: %s", origin, mutation_names[first],
                         gan_status_name(status), gan_error_message());
        }
    }
    int total_ok = 0, total_refused = 0;
    for (int k = 0; k < MUTATION_KINDS; k++) {
        printf("  %-16s %5d read, %5d refused\n", mutation_names[k], ok[k], refused_count[k]);
        total_ok += ok[k];
        total_refused += refused_count[k];
        /* every kind is drawn ~5000 times and both outcomes occur for each (data bytes change
         * freely; header bytes mostly do not): a kind never refused or never read would mean the
         * mutator is broken */
        CHECK_MSG(refused_count[k] > 0, "%s: no mutation refused", mutation_names[k]);
    }
    printf("  %d mutations: %d read, %d refused\n", ROUNDS, total_ok, total_refused);
    CHECK(other == 0);
    CHECK_MSG(unnamed == 0, "%d refusals do not name the origin", unnamed);
    CHECK(total_ok > 0 && total_refused > ROUNDS / 4);
    CHECK(ok[FLIP_BIT] > 0 && ok[SET_BYTE] > 0);
    free(b.p);
    free(seed.p);
}

/* ---- --dump ---------------------------------------------------------------------------------- */

static void print_hex(const char *s)
{
    if (!*s)
        putchar('-'); /* an empty string is one token too */
    for (; *s; s++)
        printf("%02x", (unsigned char)*s);
}

static int dump(int count, char **paths)
{
    for (int i = 0; i < count; i++) {
        gan_safetensors st;
        if (gan_safetensors_open(paths[i], &st) != GAN_OK) {
            printf("REFUSED ");
            for (const char *c = gan_error_message(); *c; c++) /* one line, whatever a name holds */
                putchar((unsigned char)*c < 0x20 ? '?' : *c);
            putchar('\n');
            continue;
        }
        printf("OK %d %d\n", st.tensor_count, st.metadata_count);
        for (int t = 0; t < st.tensor_count; t++) {
            const gan_st_tensor *x = &st.tensors[t];
            uint64_t hash = 0xcbf29ce484222325u; /* FNV-1a 64 */
            for (size_t k = 0; k < x->nbytes; k++)
                hash = (hash ^ ((const unsigned char *)x->data)[k]) * 0x100000001b3u;
            printf("T ");
            print_hex(x->name);
            printf(" %s ", gan_st_dtype_name(x->dtype));
            if (!x->ndim)
                putchar('-');
            for (int d = 0; d < x->ndim; d++)
                printf("%s%" PRId64, d ? "," : "", x->shape[d]);
            printf(" %016" PRIx64 "\n", hash);
        }
        for (int m = 0; m < st.metadata_count; m++) {
            printf("M ");
            print_hex(st.metadata[m].key);
            putchar(' ');
            print_hex(st.metadata[m].value);
            putchar('\n');
        }
        gan_safetensors_close(&st);
    }
    return fflush(stdout) == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
    if (argc >= 2 && !strcmp(argv[1], "--dump"))
        return dump(argc - 2, argv + 2);
    const char *dir = test_temp_dir("test_safetensors_fuzz");
    short_files();
    header_lengths();
    not_json();
    entries();
    metadata();
    allowed();
    through_files(dir);
    mutations(dir);
    return test_finish();
}
