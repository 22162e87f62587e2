/* safetensors: round trips, byte-for-byte agreement with the reference writer's own test vectors
 * (huggingface/safetensors, safetensors/src/tensor.rs: test_serialization, test_empty,
 * test_serialization_forced_alignement), atomic replacement, and every kind of malformed file
 * refused with GAN_ERR_FORMAT and a message naming the file and the problem (never a crash or a
 * read out of bounds: every truncation and many byte flips of a valid file are tried too, and
 * this test also runs under AddressSanitizer). */
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gan/safetensors.h"
#include "test_util.h"

static const char *dir;

static char *path_in_dir(const char *name)
{
    static char paths[8][4200];
    static int next;
    char *p = paths[next++ % 8];
    snprintf(p, sizeof paths[0], "%s/%s", dir, name);
    return p;
}

/* The entries of the test's folder whose names start with `prefix`. */
static int count_with_prefix(const char *prefix) { return test_count_entries(dir, prefix); }

static void write_file(const char *path, const void *bytes, size_t n)
{
    FILE *f = fopen(path, "wb");
    CHECK_MSG(f != NULL, "cannot create %s", path);
    if (!f)
        return;
    fwrite(bytes, 1, n, f);
    fclose(f);
}

/* The whole file, malloc'ed; *n its size (0 and NULL if it does not exist). */
static unsigned char *read_file(const char *path, size_t *n)
{
    *n = 0;
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    unsigned char *buf = malloc(1 << 16);
    *n = fread(buf, 1, 1 << 16, f);
    fclose(f);
    return buf;
}

/* The header's true length as the length field. */
#define TRUE_LEN UINT64_MAX

/* A file made of the length field `len_field`, the header text and `data_bytes` bytes of data. */
static void write_raw(const char *path, const char *header, uint64_t len_field, size_t data_bytes)
{
    size_t header_len = strlen(header);
    uint64_t len = len_field == TRUE_LEN ? header_len : len_field;
    unsigned char *buf = malloc(8 + header_len + data_bytes + 1);
    for (int i = 0; i < 8; i++)
        buf[i] = (unsigned char)(len >> (8 * i));
    memcpy(buf + 8, header, header_len);
    for (size_t i = 0; i < data_bytes; i++)
        buf[8 + header_len + i] = (unsigned char)(i & 0xff);
    write_file(path, buf, 8 + header_len + data_bytes);
    free(buf);
}

static void expect_bad(const char *name, const char *header, uint64_t len_field, size_t data_bytes,
                       const char *needle)
{
    char file[256];
    snprintf(file, sizeof file, "%s.safetensors", name);
    const char *path = path_in_dir(file);
    write_raw(path, header, len_field, data_bytes);
    gan_safetensors st;
    gan_status status = gan_safetensors_open(path, &st);
    CHECK_MSG(status == GAN_ERR_FORMAT, "%s: accepted or wrong status (%s)", name, gan_status_name(status));
    if (status == GAN_ERR_FORMAT) {
        CHECK_MSG(strstr(gan_error_message(), path) != NULL, "%s: message does not name the file: %s",
                  name, gan_error_message());
        CHECK_MSG(strstr(gan_error_message(), needle) != NULL, "%s: message lacks '%s': %s", name,
                  needle, gan_error_message());
        CHECK_MSG(st.tensors == NULL && st.allocation == NULL, "%s: a failed open left memory", name);
    } else if (status == GAN_OK) {
        gan_safetensors_close(&st);
    }
}

static void expect_good(const char *name, const char *header, size_t data_bytes, int tensors, int metadata)
{
    char file[256];
    snprintf(file, sizeof file, "%s.safetensors", name);
    const char *path = path_in_dir(file);
    write_raw(path, header, TRUE_LEN, data_bytes);
    gan_safetensors st;
    gan_status status = gan_safetensors_open(path, &st);
    CHECK_MSG(status == GAN_OK, "%s: refused: %s", name, gan_error_message());
    if (status == GAN_OK) {
        CHECK_MSG(st.tensor_count == tensors && st.metadata_count == metadata,
                  "%s: %d tensors and %d metadata entries, expected %d and %d", name, st.tensor_count,
                  st.metadata_count, tensors, metadata);
        gan_safetensors_close(&st);
    }
}

static void round_trip(void)
{
    const char *path = path_in_dir("round.safetensors");
    float w[6] = {1, 2, 3, 4, 5, 6};
    int64_t tracked = 42;
    uint8_t bytes[3] = {7, 8, 9};
    uint16_t half = 0x3c00;
    double d[1] = {0.25};
    /* U8 first and an odd number of F32s: the writer must still align the I64 and F64 */
    gan_st_tensor tensors[6] = {
        {.name = "u8", .dtype = GAN_ST_U8, .ndim = 1, .shape = {3}, .data = bytes},
        {.name = "main.0.weight", .dtype = GAN_ST_F32, .ndim = 2, .shape = {1, 3}, .data = w},
        {.name = "main.1.num_batches_tracked", .dtype = GAN_ST_I64, .ndim = 0, .data = &tracked},
        {.name = "h", .dtype = GAN_ST_F16, .ndim = 1, .shape = {1}, .data = &half},
        {.name = "d", .dtype = GAN_ST_F64, .ndim = 3, .shape = {1, 1, 1}, .data = d},
        {.name = "empty", .dtype = GAN_ST_F32, .ndim = 2, .shape = {0, 5}, .data = NULL},
    };
    gan_st_metadata meta[2] = {{"step", "17"}, {"format", "pt"}};
    CHECK_OK(gan_safetensors_write(path, tensors, 6, meta, 2));
    gan_safetensors st;
    CHECK_OK(gan_safetensors_open(path, &st));
    if (!st.tensors)
        return;
    CHECK(st.tensor_count == 6 && st.metadata_count == 2);
    for (int i = 0; i < 6; i++) {
        const gan_st_tensor *want = &tensors[i], *got = gan_safetensors_find(&st, want->name);
        CHECK_MSG(got != NULL, "round trip: %s missing", want->name);
        if (!got)
            continue;
        size_t count = 1;
        for (int k = 0; k < want->ndim; k++)
            count *= (size_t)want->shape[k];
        size_t element = gan_st_dtype_bytes(want->dtype);
        bool same = got->dtype == want->dtype && got->ndim == want->ndim && got->count == count &&
                    got->nbytes == count * element;
        for (int k = 0; same && k < want->ndim; k++)
            same = got->shape[k] == want->shape[k];
        CHECK_MSG(same, "round trip: %s has another dtype, shape or size", want->name);
        CHECK_MSG(!count || !memcmp(got->data, want->data, count * element), "round trip: %s data differs",
                  want->name);
        CHECK_MSG((uintptr_t)got->data % element == 0, "round trip: %s (%s) is not aligned in memory",
                  want->name, gan_st_dtype_name(want->dtype));
    }
    /* laid out by element size: I64, F64, then F32, F16, U8 */
    const gan_st_tensor *i64 = gan_safetensors_find(&st, "main.1.num_batches_tracked"),
                        *f64 = gan_safetensors_find(&st, "d"), *f32 = gan_safetensors_find(&st, "main.0.weight"),
                        *f16 = gan_safetensors_find(&st, "h"), *u8 = gan_safetensors_find(&st, "u8");
    if (i64 && f64 && f32 && f16 && u8)
        CHECK((const char *)i64->data < (const char *)f64->data && (const char *)f64->data < (const char *)f32->data &&
              (const char *)f32->data < (const char *)f16->data && (const char *)f16->data < (const char *)u8->data);
    CHECK(gan_safetensors_find(&st, "missing") == NULL);
    const char *step = gan_safetensors_metadata(&st, "step"), *format = gan_safetensors_metadata(&st, "format");
    CHECK(step && !strcmp(step, "17") && format && !strcmp(format, "pt"));
    CHECK(gan_safetensors_metadata(&st, "missing") == NULL);
    /* the header length is a multiple of 8, as the reference writer pads it */
    CHECK(st.bytes[0] % 8 == 0);
    gan_safetensors_close(&st);
    gan_safetensors_close(&st); /* twice is harmless */
    CHECK(count_with_prefix("round.safetensors.tmp") == 0);

    /* parse() checks bytes in memory the same way */
    size_t n;
    unsigned char *file = read_file(path, &n);
    CHECK_OK(gan_safetensors_parse(file, n, "in-memory copy", &st));
    gan_safetensors_close(&st);
    CHECK_FAILS_WITH(gan_safetensors_parse(file, n - 1, "in-memory copy", &st), GAN_ERR_FORMAT, "in-memory copy");
    free(file);
}

/* Our writer gives the reference writer's bytes for the reference's own test vectors. */
static void reference_vectors(void)
{
    float values[6] = {0, 1, 2, 3, 4, 5};
    struct {
        const char *file;
        gan_st_tensor tensor;
        int tensors;
        gan_st_metadata meta;
        int metadata;
        const char *header;
    } cases[] = {
        {"ref_serialization.safetensors",
         {.name = "attn.0", .dtype = GAN_ST_F32, .ndim = 3, .shape = {1, 2, 3}, .data = values}, 1, {0}, 0,
         "{\"attn.0\":{\"dtype\":\"F32\",\"shape\":[1,2,3],\"data_offsets\":[0,24]}}"},
        {"ref_alignment.safetensors",
         {.name = "attn0", .dtype = GAN_ST_F32, .ndim = 4, .shape = {1, 1, 2, 3}, .data = values}, 1, {0}, 0,
         "{\"attn0\":{\"dtype\":\"F32\",\"shape\":[1,1,2,3],\"data_offsets\":[0,24]}}       "},
        {"ref_empty.safetensors", {0}, 0, {0}, 0, "{}      "},
        {"ref_empty_metadata.safetensors", {0}, 0, {"framework", "pt"}, 1,
         "{\"__metadata__\":{\"framework\":\"pt\"}}     "},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        const char *path = path_in_dir(cases[c].file);
        CHECK_OK(gan_safetensors_write(path, &cases[c].tensor, cases[c].tensors, &cases[c].meta, cases[c].metadata));
        size_t header_len = strlen(cases[c].header), data_len = cases[c].tensors ? sizeof values : 0;
        size_t want_n = 8 + header_len + data_len, n;
        unsigned char *want = calloc(1, want_n), *got = read_file(path, &n);
        want[0] = (unsigned char)header_len;
        memcpy(want + 8, cases[c].header, header_len);
        memcpy(want + 8 + header_len, values, data_len); /* little-endian host */
        CHECK_MSG(got && n == want_n && !memcmp(got, want, n), "%s: not the reference writer's bytes",
                  cases[c].file);
        free(want);
        free(got);
    }
}

/* A failed write leaves the file it would have replaced as it was, and no .tmp behind. */
static void atomic_replace(void)
{
    const char *path = path_in_dir("keep.safetensors");
    float w[2] = {1, 2};
    gan_st_tensor good = {.name = "w", .dtype = GAN_ST_F32, .ndim = 1, .shape = {2}, .data = w};
    CHECK_OK(gan_safetensors_write(path, &good, 1, NULL, 0));
    size_t before_n, after_n;
    unsigned char *before = read_file(path, &before_n);

    gan_st_tensor refused[] = {
        {.name = "w", .dtype = (gan_st_dtype)99, .ndim = 1, .shape = {2}, .data = w},
        {.name = "w", .dtype = GAN_ST_F32, .ndim = 1, .shape = {-2}, .data = w},
        {.name = "w", .dtype = GAN_ST_F32, .ndim = 9, .shape = {1}, .data = w},
        {.name = "w", .dtype = GAN_ST_F32, .ndim = 1, .shape = {2}, .data = NULL},
        {.name = NULL, .dtype = GAN_ST_F32, .ndim = 1, .shape = {2}, .data = w},
        {.name = "__metadata__", .dtype = GAN_ST_F32, .ndim = 1, .shape = {2}, .data = w},
        {.name = "bad \xff utf8", .dtype = GAN_ST_F32, .ndim = 1, .shape = {2}, .data = w},
        {.name = "w", .dtype = GAN_ST_F32, .ndim = 2, .shape = {INT64_C(1) << 40, INT64_C(1) << 20}, .data = w},
    };
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++)
        CHECK_FAILS_WITH(gan_safetensors_write(path, &refused[i], 1, NULL, 0), GAN_ERR_ARG, path);
    gan_st_tensor twice[2] = {good, good};
    CHECK_FAILS_WITH(gan_safetensors_write(path, twice, 2, NULL, 0), GAN_ERR_ARG, "given twice");
    gan_st_metadata meta_twice[2] = {{"k", "1"}, {"k", "2"}};
    CHECK_FAILS_WITH(gan_safetensors_write(path, &good, 1, meta_twice, 2), GAN_ERR_ARG, "given twice");
    gan_st_metadata meta_null = {"k", NULL};
    CHECK_FAILS_WITH(gan_safetensors_write(path, &good, 1, &meta_null, 1), GAN_ERR_ARG, "metadata");

    /* an I/O failure after the checks: the file size limit (RLIMIT_FSIZE, which binds root too)
     * makes the temporary file's write fail with EFBIG */
    char tmp[4300];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    struct rlimit limit;
    CHECK(getrlimit(RLIMIT_FSIZE, &limit) == 0);
    struct rlimit tiny = {16, limit.rlim_max};
    void (*old_xfsz)(int) = signal(SIGXFSZ, SIG_IGN);
    CHECK(setrlimit(RLIMIT_FSIZE, &tiny) == 0);
    CHECK_FAILS_WITH(gan_safetensors_write(path, &good, 1, NULL, 0), GAN_ERR_IO, tmp);
    CHECK(setrlimit(RLIMIT_FSIZE, &limit) == 0);
    signal(SIGXFSZ, old_xfsz);
    unsigned char *after = read_file(path, &after_n);
    CHECK_MSG(after && after_n == before_n && !memcmp(before, after, before_n),
              "a refused write changed %s", path);
    CHECK(count_with_prefix("keep.safetensors.tmp") == 0);
    free(before);
    free(after);

    /* The temporary name is this write's alone (path.tmp.<pid>.<n>, O_EXCL): a file at another
     * writer's temporary name (here the old fixed name path.tmp) is neither removed nor renamed
     * into place, so two writers of one target cannot swap half-written files. */
    write_file(tmp, "another writer's", 16);
    CHECK_OK(gan_safetensors_write(path, &good, 1, NULL, 0));
    size_t other_n = 0;
    unsigned char *other = read_file(tmp, &other_n);
    CHECK_MSG(other && other_n == 16 && !memcmp(other, "another writer's", 16),
              "the write removed or changed %s", tmp);
    free(other);
    unlink(tmp);
    CHECK(count_with_prefix("keep.safetensors.tmp") == 0);

    /* rename fails (the target is a directory): the written .tmp is removed */
    const char *target_dir = path_in_dir("target_is_dir.safetensors");
    CHECK(mkdir(target_dir, 0755) == 0);
    char file_in_dir[4300];
    snprintf(file_in_dir, sizeof file_in_dir, "%s/x", target_dir);
    write_file(file_in_dir, "x", 1);
    CHECK_FAILS_WITH(gan_safetensors_write(target_dir, &good, 1, NULL, 0), GAN_ERR_IO, "rename");
    CHECK(count_with_prefix("target_is_dir.safetensors.tmp") == 0);

    /* a missing directory */
    const char *bad_path = path_in_dir("no/such/dir/x.safetensors");
    CHECK_FAILS_WITH(gan_safetensors_write(bad_path, &good, 1, NULL, 0), GAN_ERR_IO, "no/such/dir");
}

static void malformed(void)
{
    gan_safetensors st;
    const char *tiny = path_in_dir("tiny.safetensors");
    write_file(tiny, "abc", 3);
    CHECK_FAILS_WITH(gan_safetensors_open(tiny, &st), GAN_ERR_FORMAT, "too short");
    const char *empty = path_in_dir("zero_bytes.safetensors");
    write_file(empty, "", 0);
    CHECK_FAILS_WITH(gan_safetensors_open(empty, &st), GAN_ERR_FORMAT, "too short");

    const char *ok = "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}";
    expect_bad("empty_header", "", 0, 0, "'{'");
    expect_bad("huge_header", ok, (uint64_t)1 << 40, 8, "100 MB");
    expect_bad("header_over_limit", ok, 100000001, 8, "100 MB");
    expect_bad("header_length_max", ok, UINT64_MAX - 1, 8, "100 MB");
    expect_bad("header_past_end", ok, 4096, 8, "past the end");
    expect_bad("truncated_data", ok, TRUE_LEN, 4, "past the");
    expect_bad("extra_data", ok, TRUE_LEN, 12, "cover 8 of the 12");
    expect_bad("bad_json", "{\"a\": {\"dtype\": ", TRUE_LEN, 0, "not valid JSON");
    expect_bad("trailing_value", "{} {}", TRUE_LEN, 0, "more than one JSON value");
    expect_bad("trailing_garbage", "{}x", TRUE_LEN, 0, "more than one JSON value");
    expect_bad("not_object", "[1,2,3]", TRUE_LEN, 0, "'{'");
    expect_bad("bad_utf8", "{\"\xc3\x28\":{}}", TRUE_LEN, 0, "not UTF-8");
    expect_bad("overlong_utf8", "{\"\xc0\xaf\":{}}", TRUE_LEN, 0, "not UTF-8");
    expect_bad("surrogate_utf8", "{\"\xed\xa0\x80\":{}}", TRUE_LEN, 0, "not UTF-8");
    expect_bad("control_byte", "{\"a\x01\":{}}", TRUE_LEN, 0, "control byte");
    expect_bad("tensor_not_object", "{\"a\":3}", TRUE_LEN, 0, "not a JSON object");
    expect_bad("missing_field", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2]}}", TRUE_LEN, 8, "data_offsets");
    expect_bad("dtype_not_string", "{\"a\":{\"dtype\":4,\"shape\":[1],\"data_offsets\":[0,4]}}", TRUE_LEN, 4, "dtype");
    expect_bad("bad_dtype", "{\"a\":{\"dtype\":\"Q7\",\"shape\":[2],\"data_offsets\":[0,8]}}", TRUE_LEN, 8,
               "unknown dtype 'Q7'");
    expect_bad("lowercase_dtype", "{\"a\":{\"dtype\":\"f32\",\"shape\":[2],\"data_offsets\":[0,8]}}", TRUE_LEN, 8,
               "unknown dtype");
    expect_bad("size_mismatch", "{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", TRUE_LEN, 8,
               "8 bytes for 3 values");
    expect_bad("size_mismatch_f64", "{\"a\":{\"dtype\":\"F64\",\"shape\":[2,1],\"data_offsets\":[0,8]}}", TRUE_LEN,
               8, "8 bytes for 2 values");
    expect_bad("reversed", "{\"a\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[8,0]}}", TRUE_LEN, 8,
               "begin <= end");
    expect_bad("three_offsets", "{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1,2]}}", TRUE_LEN, 1,
               "begin <= end");
    expect_bad("negative_offset", "{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[-1,0]}}", TRUE_LEN, 1,
               "begin <= end");
    expect_bad("string_offset", "{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[\"0\",1]}}", TRUE_LEN, 1,
               "begin <= end");
    expect_bad("negative_dim", "{\"a\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", TRUE_LEN, 8,
               "not a size");
    expect_bad("fractional_dim", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,8]}}", TRUE_LEN, 8,
               "not a size");
    expect_bad("huge_dims",
               "{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,4294967296],\"data_offsets\":[0,8]}}",
               TRUE_LEN, 8, "overflows");
    expect_bad("offset_past_2_53", "{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1e300]}}", TRUE_LEN, 1,
               "begin <= end");
    expect_bad("overlap",
               "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
               "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
               TRUE_LEN, 12, "overlaps");
    expect_bad("same_range",
               "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
               "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}",
               TRUE_LEN, 8, "overlaps");
    expect_bad("hole",
               "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
               "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}",
               TRUE_LEN, 12, "hole");
    expect_bad("hole_at_start", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", TRUE_LEN, 8, "hole");
    expect_bad("duplicate",
               "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
               "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
               TRUE_LEN, 8, "'a' appears twice");
    expect_bad("metadata_not_string", "{\"__metadata__\":{\"k\":3}}", TRUE_LEN, 0, "not a string");
    expect_bad("metadata_not_object", "{\"__metadata__\":[\"k\"]}", TRUE_LEN, 0, "not an object");
    expect_bad("metadata_twice", "{\"__metadata__\":{\"a\":\"1\",\"b\":\"2\",\"c\":\"3\"},\"__metadata__\":{\"d\":\"4\"}}",
               TRUE_LEN, 0, "__metadata__ appears twice");
    expect_bad("metadata_key_twice", "{\"__metadata__\":{\"k\":\"1\",\"j\":\"0\",\"k\":\"2\"}}", TRUE_LEN, 0,
               "'k' appears twice");
    expect_bad("too_many_dims",
               "{\"a\":{\"dtype\":\"U8\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,1]}}", TRUE_LEN, 1,
               "dimensions");
    CHECK_FAILS_WITH(gan_safetensors_open(path_in_dir("missing.safetensors"), &st), GAN_ERR_IO, "missing.safetensors");
    CHECK_FAILS_WITH(gan_safetensors_open(dir, &st), GAN_ERR_IO, "not a regular file");

    /* What the reference accepts, so must we: whitespace padding (spaces, tabs, newlines), null
     * metadata, zero-size tensors (also two at one offset), tensors listed out of offset order,
     * unknown fields in an entry, no tensors at all, non-ASCII names. */
    expect_good("padded", "{\"a\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[0,2]}} \t\n\r  ", 2, 1, 0);
    expect_good("null_metadata", "{\"__metadata__\":null}", 0, 0, 0);
    expect_good("zero_size",
                "{\"z\":{\"dtype\":\"F32\",\"shape\":[0,3],\"data_offsets\":[0,0]},"
                "\"y\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0]},"
                "\"a\":{\"dtype\":\"I16\",\"shape\":[],\"data_offsets\":[0,2]}}",
                2, 3, 0);
    expect_good("out_of_order",
                "{\"b\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[3,4]},"
                "\"a\":{\"dtype\":\"BOOL\",\"shape\":[3],\"data_offsets\":[0,3]}}",
                4, 2, 0);
    expect_good("extra_fields", "{\"a\":{\"dtype\":\"BF16\",\"shape\":[1],\"data_offsets\":[0,2],\"x\":1}}", 2, 1, 0);
    expect_good("no_tensors", "{\"__metadata__\":{\"k\":\"v\",\"\xc3\xa9\":\"\xe2\x82\xac\"}}", 0, 0, 2);
    expect_good("unicode_name", "{\"\xf0\x9f\x98\x80\":{\"dtype\":\"I8\",\"shape\":[1],\"data_offsets\":[0,1]}}", 1, 1,
                0);

    /* The data section is 64-byte aligned in memory even when the header length is not a
     * multiple of 8 (other writers). */
    const char *odd = "{\"a\":{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[0,8]}}"; /* 53 bytes */
    const char *odd_path = path_in_dir("odd_header.safetensors");
    write_raw(odd_path, odd, TRUE_LEN, 8);
    if (gan_safetensors_open(odd_path, &st) == GAN_OK) {
        CHECK((uintptr_t)st.tensors[0].data % 64 == 0);
        gan_safetensors_close(&st);
    } else {
        CHECK_MSG(false, "odd header refused: %s", gan_error_message());
    }
}

/* Every truncation of a valid file is refused; every single-byte change is refused or read
 * consistently (all offsets within the file): nothing crashes or reads out of bounds. */
static void hostile_bytes(void)
{
    float w[3] = {1, 2, 3};
    int64_t step = 5;
    gan_st_tensor tensors[2] = {
        {.name = "w", .dtype = GAN_ST_F32, .ndim = 2, .shape = {3, 1}, .data = w},
        {.name = "step", .dtype = GAN_ST_I64, .ndim = 0, .data = &step},
    };
    gan_st_metadata meta = {"k", "v"};
    const char *path = path_in_dir("hostile.safetensors");
    CHECK_OK(gan_safetensors_write(path, tensors, 2, &meta, 1));
    size_t n;
    unsigned char *file = read_file(path, &n);
    if (!file)
        return;
    int truncations_refused = 0, flips_ok = 0, flips_refused = 0, flips_other = 0;
    gan_safetensors st;
    for (size_t len = 0; len < n; len++)
        truncations_refused += gan_safetensors_parse(file, len, "truncated", &st) == GAN_ERR_FORMAT;
    CHECK_MSG(truncations_refused == (int)n, "%d of %zu truncations refused", truncations_refused, n);
    const unsigned char flips[] = {0x00, 0x01, 0x20, 0x7f, 0x80, 0xff, '{', '}', '"', ',', '9'};
    for (size_t i = 0; i < n; i++)
        for (size_t f = 0; f < sizeof flips; f++) {
            unsigned char saved = file[i];
            file[i] = flips[f];
            gan_status status = gan_safetensors_parse(file, n, "flipped", &st);
            if (status == GAN_OK) {
                flips_ok++;
                for (int t = 0; t < st.tensor_count; t++) {
                    const unsigned char *p = st.tensors[t].data;
                    CHECK(p >= st.bytes && p + st.tensors[t].nbytes <= st.bytes + st.size);
                }
                gan_safetensors_close(&st);
            } else if (status == GAN_ERR_FORMAT) {
                flips_refused++;
            } else {
                flips_other++;
            }
            file[i] = saved;
        }
    CHECK_MSG(flips_other == 0, "%d byte flips gave a status other than OK or FORMAT", flips_other);
    CHECK(flips_refused > 0 && flips_ok > 0);
    free(file);
}

int main(void)
{
    dir = test_temp_dir("test_safetensors");
    round_trip();
    reference_vectors();
    atomic_replace();
    malformed();
    hostile_bytes();
    return test_finish();
}
