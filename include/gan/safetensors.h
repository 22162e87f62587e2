/* safetensors files (the format of Hugging Face's safetensors library): an 8-byte little-endian
 * header length N, N bytes of UTF-8 JSON {name: {dtype, shape, data_offsets: [begin, end]},
 * "__metadata__": {str: str}} (padded with spaces), then the tensor bytes, offsets relative to
 * their start.
 *
 * The reader treats the file as hostile and applies the reference implementation's rules
 * (huggingface/safetensors, safetensors/src/tensor.rs): N at most 100,000,000; the header valid
 * UTF-8 starting with '{' and nothing but whitespace after the JSON object; every tensor with a
 * known dtype, a shape of non-negative integers whose byte size is end - begin; the tensors, sorted
 * by offset, tiling the data exactly (no holes, no overlaps, nothing after the last). The JSON is
 * held to what the reference's parser (serde_json) accepts: no control bytes inside strings, numbers
 * in JSON's grammar and within a double's range, sizes written as plain digits (not 2.0 or 2e0),
 * nesting at most 127 deep, no field of a tensor given twice. It also refuses what the reference
 * lets through: a tensor name or metadata key given twice, a leading space before '{' (the
 * format says the header begins with '{'), "\u0000" in a string, sizes above 2^53, more than 8
 * dimensions, dtypes outside the enum below (U16, U32, U64, F8_*, ...), each by name.
 * Every refusal is GAN_ERR_FORMAT with a message naming the file and the problem
 * (tests/test_safetensors_fuzz.c; tests/script_safetensors_official.sh checks it against the
 * official package). */
#ifndef GAN_SAFETENSORS_H
#define GAN_SAFETENSORS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gan/error.h"

#ifdef __cplusplus
extern "C" {
#endif

enum { GAN_ST_MAX_DIMS = 8 };

typedef enum gan_st_dtype {
    GAN_ST_F32, GAN_ST_F64, GAN_ST_F16, GAN_ST_BF16,
    GAN_ST_I64, GAN_ST_I32, GAN_ST_I16, GAN_ST_I8, GAN_ST_U8, GAN_ST_BOOL
} gan_st_dtype;

/* Bytes per element and the format's name ("F32"); 0 and "invalid" for a value outside the enum. */
size_t gan_st_dtype_bytes(gan_st_dtype dtype);
const char *gan_st_dtype_name(gan_st_dtype dtype);

typedef struct gan_st_tensor {
    char *name;
    gan_st_dtype dtype;
    int ndim;                          /* 0 for a scalar */
    int64_t shape[GAN_ST_MAX_DIMS];
    size_t count;                      /* elements (reader; ignored by the writer) */
    const void *data;                  /* into the file's bytes (reader) or the caller's (writer) */
    size_t nbytes;                     /* count * element bytes (reader; ignored by the writer) */
} gan_st_tensor;

typedef struct gan_st_metadata {
    char *key, *value;
} gan_st_metadata;

typedef struct gan_safetensors {
    char *path;                /* the file (or the `origin` given to parse), for messages */
    unsigned char *bytes;      /* the whole file [size]; the data section starts 64-byte aligned,
                                  so a tensor whose offset is a multiple of its element size (every
                                  tensor of files written by us or by the reference writer) can be
                                  read in place as its type */
    size_t size;
    gan_st_tensor *tensors;    /* [tensor_count] in header order */
    int tensor_count;
    gan_st_metadata *metadata; /* [metadata_count] sorted by key */
    int metadata_count;
    void *allocation;          /* what `bytes` lies in (freed by close) */
} gan_safetensors;

/* Reads and checks `path` (the whole file into memory). On failure nothing needs closing. */
gan_status gan_safetensors_open(const char *path, gan_safetensors *out);
/* The same checks on bytes already in memory (copied); `origin` names them in messages. */
gan_status gan_safetensors_parse(const void *bytes, size_t size, const char *origin,
                                 gan_safetensors *out);
/* Frees what open/parse allocated; safe on a zeroed struct and twice. */
void gan_safetensors_close(gan_safetensors *st);
/* The tensor called `name`, or NULL. */
const gan_st_tensor *gan_safetensors_find(const gan_safetensors *st, const char *name);
/* The metadata value of `key`, or NULL. */
const char *gan_safetensors_metadata(const gan_safetensors *st, const char *key);

/* Writes `tensors` (name, dtype, ndim, shape and data read from each; data is host memory) and
 * `metadata` to `path` through `path`.tmp, fsync and rename, then fsyncs the directory: `path`
 * is either untouched or replaced by a complete file, and no .tmp is left behind on failure.
 * As the reference writer does, the header is padded with spaces to a multiple of 8 bytes and
 * the data is laid out by decreasing element size (8, 4, 2, 1 bytes; given order within a size),
 * so every tensor is aligned for its type. Refused with GAN_ERR_ARG: a missing or repeated name,
 * "__metadata__" as a tensor name, a dtype outside the enum, ndim outside 0..8, a negative
 * dimension, missing data, a repeated metadata key, text that is not UTF-8. */
gan_status gan_safetensors_write(const char *path, const gan_st_tensor *tensors, int tensor_count,
                                 const gan_st_metadata *metadata, int metadata_count);
/* The metadata key of the header's checksum (written with every data checksum). */
#define GAN_ST_HEADER_CRC_KEY "header_crc32c"

/* The same, with two more metadata entries: `crc_key` -> the CRC-32C of the whole data section
 * (the tensor bytes as laid out in the file) and GAN_ST_HEADER_CRC_KEY -> the CRC-32C of the
 * header's content (every tensor's name, dtype, shape and data offsets in name order, then every
 * other metadata pair in key order, each as a NUL-ended text), both 8 lowercase hex digits. */
gan_status gan_safetensors_write_with_crc(const char *path, const gan_st_tensor *tensors, int tensor_count,
                                          const gan_st_metadata *metadata, int metadata_count,
                                          const char *crc_key);
/* Checks the data section against the metadata value of `crc_key`, and the header against
 * GAN_ST_HEADER_CRC_KEY's where the file has one (files written before it existed have not):
 * GAN_OK when they agree, GAN_ERR_FORMAT naming the file when one does not or a value is not 8 hex
 * digits; *present says whether `crc_key` was there at all (absent: GAN_OK, nothing checked). */
gan_status gan_safetensors_check_crc(const gan_safetensors *st, const char *crc_key, bool *present);

#ifdef __cplusplus
}
#endif
#endif
