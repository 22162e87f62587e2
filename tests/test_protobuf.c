/* The protobuf encoder against encodings worked out from the wire-format specification
 * (protobuf.dev/programming-guides/encoding): varints, negative int64, fixed32/fixed64, strings
 * and nested messages. */
#include <string.h>

#include "gan/protobuf.h"
#include "test_util.h"

static void expect_bytes(const char *what, const gan_pb *pb, const unsigned char *want, size_t n)
{
    CHECK_MSG(pb->len == n && !memcmp(pb->data, want, n), "%s: %zu bytes, expected %zu", what, pb->len, n);
}

int main(void)
{
    gan_pb pb;
    gan_pb_init(&pb);
    gan_pb_varint(&pb, 1, 150); /* the specification's own example: 08 96 01 */
    expect_bytes("field 1 = 150", &pb, (const unsigned char[]){0x08, 0x96, 0x01}, 3);
    gan_pb_free(&pb);

    gan_pb_int64(&pb, 2, -1); /* ten bytes: 0xFF x9, 0x01 */
    expect_bytes("field 2 = -1", &pb,
                 (const unsigned char[]){0x10, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01}, 11);
    gan_pb_free(&pb);

    gan_pb_float(&pb, 3, 1.0f); /* tag 0x1D, then 1.0f little-endian 00 00 80 3F */
    gan_pb_double(&pb, 1, 2.0); /* tag 0x09, then 2.0 = 00..00 40 */
    expect_bytes("float and double", &pb,
                 (const unsigned char[]){0x1D, 0x00, 0x00, 0x80, 0x3F, 0x09, 0, 0, 0, 0, 0, 0, 0, 0x40}, 14);
    gan_pb_free(&pb);

    gan_pb inner;
    gan_pb_init(&inner);
    gan_pb_string(&inner, 2, "testing"); /* 12 07 74 65 73 74 69 6e 67 */
    gan_pb_message(&pb, 3, &inner);      /* 1a 09 + inner */
    expect_bytes("nested message", &pb,
                 (const unsigned char[]){0x1a, 0x09, 0x12, 0x07, 't', 'e', 's', 't', 'i', 'n', 'g'}, 11);
    CHECK_OK(gan_pb_status(&pb, "test"));
    gan_pb_free(&inner);
    gan_pb_free(&pb);

    gan_pb_varint(&pb, 16, 1); /* field numbers >= 16 take a two-byte tag: 80 01 01 */
    expect_bytes("field 16", &pb, (const unsigned char[]){0x80, 0x01, 0x01}, 3);
    pb.failed = true; /* a failed append is reported once, naming what was encoded */
    CHECK_FAILS_WITH(gan_pb_status(&pb, "G.onnx"), GAN_ERR_NOMEM, "G.onnx");
    gan_pb_free(&pb);
    return test_finish();
}
