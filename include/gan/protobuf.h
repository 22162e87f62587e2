/* A Protocol Buffers encoder, just enough to write TensorBoard event records and ONNX models
 * (both are protobuf messages). Writing only: fields are appended in the order the caller gives,
 * which the wire format allows; a nested message is built in its own gan_pb and appended whole,
 * since its length prefix must be known first.
 *
 * Wire types used: 0 varint (int32/int64/uint64/bool/enum; negative int64 as ten bytes of two's
 * complement, as protobuf does), 1 fixed64 (double), 2 length-delimited (bytes, string, nested
 * message, packed repeated), 5 fixed32 (float). Every append records an allocation failure in
 * the buffer instead of returning it, so a message is written straight through and checked once
 * with gan_pb_status(). */
#ifndef GAN_PROTOBUF_H
#define GAN_PROTOBUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gan/error.h"

typedef struct gan_pb {
    uint8_t *data; /* [len] encoded bytes, malloc'ed; NULL while empty */
    size_t len, capacity;
    bool failed;   /* an allocation failed: the contents are incomplete */
} gan_pb;

void gan_pb_init(gan_pb *pb);
void gan_pb_free(gan_pb *pb);
/* GAN_OK, or GAN_ERR_NOMEM (with a message naming `what`) if any append failed. */
gan_status gan_pb_status(const gan_pb *pb, const char *what);

void gan_pb_varint(gan_pb *pb, int field, uint64_t value);
void gan_pb_int64(gan_pb *pb, int field, int64_t value); /* int32/int64/enum, negative too */
void gan_pb_float(gan_pb *pb, int field, float value);
void gan_pb_double(gan_pb *pb, int field, double value);
void gan_pb_bytes(gan_pb *pb, int field, const void *bytes, size_t size);
void gan_pb_string(gan_pb *pb, int field, const char *text);
void gan_pb_message(gan_pb *pb, int field, const gan_pb *message);
/* Bytes without a tag (the raw encoding of a message, already framed by the caller). */
void gan_pb_raw(gan_pb *pb, const void *bytes, size_t size);

#endif
