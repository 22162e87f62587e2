/* Protocol Buffers encoding (see gan/protobuf.h). Little-endian hosts only, as the rest of gan's
 * file formats (safetensors, npy) assume. */
#include "gan/protobuf.h"

#include <stdlib.h>
#include <string.h>

enum { WIRE_VARINT = 0, WIRE_FIXED64 = 1, WIRE_LENGTH = 2, WIRE_FIXED32 = 5 };

void gan_pb_init(gan_pb *pb) { memset(pb, 0, sizeof *pb); }

void gan_pb_free(gan_pb *pb)
{
    free(pb->data);
    gan_pb_init(pb);
}

gan_status gan_pb_status(const gan_pb *pb, const char *what)
{
    if (pb->failed)
        return gan_error(GAN_ERR_NOMEM, "%s: out of memory while encoding", what);
    return GAN_OK;
}

static bool reserve(gan_pb *pb, size_t more)
{
    if (pb->failed)
        return false;
    if (more > SIZE_MAX / 2 - pb->len) {
        pb->failed = true;
        return false;
    }
    if (pb->len + more <= pb->capacity)
        return true;
    size_t capacity = pb->capacity ? pb->capacity : 256;
    while (capacity < pb->len + more)
        capacity *= 2;
    uint8_t *grown = realloc(pb->data, capacity);
    if (!grown) {
        pb->failed = true;
        return false;
    }
    pb->data = grown;
    pb->capacity = capacity;
    return true;
}

void gan_pb_raw(gan_pb *pb, const void *bytes, size_t size)
{
    if (size && reserve(pb, size)) {
        memcpy(pb->data + pb->len, bytes, size);
        pb->len += size;
    }
}

static void put_varint(gan_pb *pb, uint64_t value)
{
    uint8_t bytes[10];
    size_t n = 0;
    do {
        uint8_t byte = value & 0x7F;
        value >>= 7;
        bytes[n++] = (uint8_t)(byte | (value ? 0x80 : 0));
    } while (value);
    gan_pb_raw(pb, bytes, n);
}

static void put_tag(gan_pb *pb, int field, int wire) { put_varint(pb, ((uint64_t)field << 3) | (uint64_t)wire); }

void gan_pb_varint(gan_pb *pb, int field, uint64_t value)
{
    put_tag(pb, field, WIRE_VARINT);
    put_varint(pb, value);
}

void gan_pb_int64(gan_pb *pb, int field, int64_t value) { gan_pb_varint(pb, field, (uint64_t)value); }

void gan_pb_float(gan_pb *pb, int field, float value)
{
    put_tag(pb, field, WIRE_FIXED32);
    gan_pb_raw(pb, &value, sizeof value);
}

void gan_pb_double(gan_pb *pb, int field, double value)
{
    put_tag(pb, field, WIRE_FIXED64);
    gan_pb_raw(pb, &value, sizeof value);
}

void gan_pb_bytes(gan_pb *pb, int field, const void *bytes, size_t size)
{
    put_tag(pb, field, WIRE_LENGTH);
    put_varint(pb, size);
    gan_pb_raw(pb, bytes, size);
}

void gan_pb_string(gan_pb *pb, int field, const char *text) { gan_pb_bytes(pb, field, text, strlen(text)); }

void gan_pb_message(gan_pb *pb, int field, const gan_pb *message)
{
    if (message->failed)
        pb->failed = true;
    gan_pb_bytes(pb, field, message->data, message->len);
}
