/* The ONNX export read back with a small protobuf wire-format reader, field numbers as in
 * onnx/onnx.proto: the model header (ir_version 8, opset 17, producer "gan"), the nodes of every
 * layer kind in order with their attributes, the views as Flatten/Reshape (shape initializers
 * keeping the batch with 0), initializers holding the model's own bytes, the symbolic batch of
 * the input and output, the file written whole through a temporary name, and the refusals (no
 * prefix, a layer without an ONNX mapping, an unwritable path) that leave no file behind.
 * ONNX Runtime running the file is tests/script_export_onnx.sh. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "gan/backend.h"
#include "gan/nn.h"
#include "gan/onnx_export.h"
#include "gan/pool.h"
#include "nn/layer.h"
#include "test_util.h"

/* ---- a protobuf reader, just enough for these checks ---------------------------------------- */

typedef struct pb_view {
    const uint8_t *data;
    size_t len;
} pb_view;

typedef struct pb_field {
    int number, wire;
    uint64_t varint;   /* wire 0; wire 5 as the 4 raw bytes */
    pb_view bytes;     /* wire 2 */
} pb_field;

static bool read_varint(const uint8_t **p, const uint8_t *end, uint64_t *value)
{
    *value = 0;
    for (int shift = 0; *p < end && shift < 64; shift += 7) {
        uint8_t byte = *(*p)++;
        *value |= (uint64_t)(byte & 0x7F) << shift;
        if (!(byte & 0x80))
            return true;
    }
    return false;
}

/* The next field of `msg` from *pos; false at the end or on malformed input (*bad set). */
static bool pb_next(pb_view msg, size_t *pos, pb_field *f, bool *bad)
{
    const uint8_t *p = msg.data + *pos, *end = msg.data + msg.len;
    if (p >= end)
        return false;
    uint64_t tag, n;
    if (!read_varint(&p, end, &tag))
        return *bad = true, false;
    f->number = (int)(tag >> 3);
    f->wire = (int)(tag & 7);
    f->varint = 0;
    f->bytes = (pb_view){NULL, 0};
    switch (f->wire) {
    case 0:
        if (!read_varint(&p, end, &f->varint))
            return *bad = true, false;
        break;
    case 2:
        if (!read_varint(&p, end, &n) || n > (uint64_t)(end - p))
            return *bad = true, false;
        f->bytes = (pb_view){p, (size_t)n};
        p += n;
        break;
    case 5:
        if (end - p < 4)
            return *bad = true, false;
        memcpy(&f->varint, p, 4);
        p += 4;
        break;
    default:
        return *bad = true, false;
    }
    *pos = (size_t)(p - msg.data);
    return true;
}

/* Every occurrence of field `number` in `msg`, into out[max]; returns how many there are. */
static int pb_all(pb_view msg, int number, pb_field *out, int max)
{
    size_t pos = 0;
    bool bad = false;
    pb_field f;
    int count = 0;
    while (pb_next(msg, &pos, &f, &bad))
        if (f.number == number) {
            if (count < max)
                out[count] = f;
            count++;
        }
    CHECK_MSG(!bad, "malformed protobuf");
    return count;
}

static bool pb_one(pb_view msg, int number, pb_field *out)
{
    return pb_all(msg, number, out, 1) == 1;
}

static bool view_is(pb_view v, const char *want)
{
    return v.len == strlen(want) && !memcmp(v.data, want, v.len);
}

static bool pb_string_is(pb_view msg, int number, const char *want)
{
    pb_field f;
    return pb_one(msg, number, &f) && f.wire == 2 && view_is(f.bytes, want);
}

static int64_t pb_int(pb_view msg, int number, int64_t fallback)
{
    pb_field f;
    return pb_one(msg, number, &f) && f.wire == 0 ? (int64_t)f.varint : fallback;
}

/* ---- ONNX structure ------------------------------------------------------------------------- */

enum { MAX_FIELDS = 64 };

static pb_view graph_of(const gan_pb *model_pb)
{
    pb_view model = {model_pb->data, model_pb->len};
    pb_field graph;
    CHECK_MSG(pb_one(model, 7, &graph) && graph.wire == 2, "ModelProto.graph (7) missing");
    return graph.bytes;
}

/* The node's op_type (4) into `op`, and attribute `name` (5 -> AttributeProto{name 1}). */
static void node_op(pb_view node, char *op, size_t bytes)
{
    pb_field f;
    op[0] = '\0';
    if (pb_one(node, 4, &f))
        snprintf(op, bytes, "%.*s", (int)f.bytes.len, (const char *)f.bytes.data);
}

static bool node_attribute(pb_view node, const char *name, pb_view *out)
{
    pb_field attrs[8];
    int n = pb_all(node, 5, attrs, 8);
    for (int i = 0; i < n && i < 8; i++)
        if (pb_string_is(attrs[i].bytes, 1, name)) {
            *out = attrs[i].bytes;
            return true;
        }
    return false;
}

/* An INTS attribute (type 20 = 7, values in field 8) equals want[n]. */
static bool ints_attribute_is(pb_view node, const char *name, const int64_t *want, int n)
{
    pb_view a;
    if (!node_attribute(node, name, &a) || pb_int(a, 20, -1) != 7)
        return false;
    pb_field values[8];
    if (pb_all(a, 8, values, 8) != n)
        return false;
    for (int i = 0; i < n; i++)
        if ((int64_t)values[i].varint != want[i])
            return false;
    return true;
}

static bool float_attribute_is(pb_view node, const char *name, float want)
{
    pb_view a;
    pb_field f;
    if (!node_attribute(node, name, &a) || pb_int(a, 20, -1) != 1 || !pb_one(a, 2, &f) || f.wire != 5)
        return false;
    float value;
    uint32_t bits = (uint32_t)f.varint;
    memcpy(&value, &bits, 4);
    return value == want;
}

/* The initializer called `name` (GraphProto.initializer 5 -> TensorProto name 8). */
static bool find_initializer(pb_view graph, const char *name, pb_view *out)
{
    pb_field inits[MAX_FIELDS];
    int n = pb_all(graph, 5, inits, MAX_FIELDS);
    for (int i = 0; i < n && i < MAX_FIELDS; i++)
        if (pb_string_is(inits[i].bytes, 8, name)) {
            *out = inits[i].bytes;
            return true;
        }
    return false;
}

/* Initializer `name`: data_type, dims and raw_data equal to want[bytes]. */
static void check_initializer(pb_view graph, const char *name, int data_type, const int64_t *dims,
                              int ndim, const void *want, size_t bytes)
{
    pb_view t;
    if (!find_initializer(graph, name, &t)) {
        CHECK_MSG(false, "initializer %s missing", name);
        return;
    }
    CHECK_MSG(pb_int(t, 2, -1) == data_type, "%s: data_type %lld", name, (long long)pb_int(t, 2, -1));
    pb_field d[8], raw;
    int n = pb_all(t, 1, d, 8);
    bool same_dims = n == ndim;
    for (int i = 0; same_dims && i < n; i++)
        same_dims = (int64_t)d[i].varint == dims[i];
    CHECK_MSG(same_dims, "%s: dims differ (%d of them)", name, n);
    CHECK_MSG(pb_one(t, 9, &raw) && raw.bytes.len == bytes && !memcmp(raw.bytes.data, want, bytes),
              "%s: raw_data is not the model's %zu bytes", name, bytes);
}

/* GraphProto.input (11) or output (12): one value `name`, float, dims ["batch", rest...]. */
static void check_value_info(pb_view graph, int field, const char *name, const int64_t *rest, int n)
{
    pb_field v[2], type, tensor, shape, dim[8];
    CHECK_MSG(pb_all(graph, field, v, 2) == 1, "graph field %d: not exactly one value", field);
    CHECK_MSG(pb_string_is(v[0].bytes, 1, name), "graph field %d is not named %s", field, name);
    if (!pb_one(v[0].bytes, 2, &type) || !pb_one(type.bytes, 1, &tensor) || !pb_one(tensor.bytes, 2, &shape)) {
        CHECK_MSG(false, "%s: no TypeProto.tensor_type.shape", name);
        return;
    }
    CHECK_MSG(pb_int(tensor.bytes, 1, -1) == 1, "%s: elem_type is not FLOAT", name);
    int dims = pb_all(shape.bytes, 1, dim, 8);
    CHECK_MSG(dims == n + 1, "%s: rank %d, expected %d", name, dims, n + 1);
    if (dims != n + 1)
        return;
    CHECK_MSG(pb_string_is(dim[0].bytes, 2, "batch") && pb_int(dim[0].bytes, 1, -1) == -1,
              "%s: the batch dimension is not dim_param \"batch\"", name);
    for (int i = 0; i < n; i++)
        CHECK_MSG(pb_int(dim[i + 1].bytes, 1, -1) == rest[i], "%s: dim %d is %lld, expected %lld", name,
                  i + 1, (long long)pb_int(dim[i + 1].bytes, 1, -1), (long long)rest[i]);
}

/* The graph's nodes: op types in order, and the last one writes "images". */
static void check_ops(pb_view graph, const char *const *want, int n, pb_field *nodes)
{
    int count = pb_all(graph, 1, nodes, MAX_FIELDS);
    CHECK_MSG(count == n, "%d nodes, expected %d", count, n);
    for (int i = 0; i < n && i < count; i++) {
        char op[32];
        node_op(nodes[i].bytes, op, sizeof op);
        CHECK_MSG(!strcmp(op, want[i]), "node %d is %s, expected %s", i, op, want[i]);
    }
    if (count > 0)
        CHECK_MSG(pb_string_is(nodes[count - 1].bytes, 2, "images"), "the last node does not write images");
}

static void check_header(const gan_pb *pb)
{
    pb_view model = {pb->data, pb->len};
    pb_field opset;
    CHECK(pb_int(model, 1, -1) == 8);
    CHECK(pb_string_is(model, 2, "gan"));
    CHECK_MSG(pb_one(model, 8, &opset) && pb_int(opset.bytes, 2, -1) == 17 &&
              pb_string_is(opset.bytes, 1, ""), "opset_import is not {\"\", 17}");
}

static void param_bytes(gan_model *m, const char *name, float **host, size_t *bytes)
{
    gan_param *p = gan_model_find_param(m, name);
    *bytes = p ? p->count * sizeof(float) : 0;
    *host = malloc(*bytes ? *bytes : 1);
    if (p)
        CHECK_OK(m->backend->download(m->backend, *host, p->value, *bytes));
}

/* ---- the tests ------------------------------------------------------------------------------ */

/* A flat input (first module linear) and every layer kind: [N, 6] -> Gemm -> BN (1-d) -> Relu
 * -> reshape(3,2,2) -> Conv -> LeakyRelu -> dropout (no node) -> ConvTranspose -> Sigmoid ->
 * flatten, the output [N, 32, 1, 1] by a last Reshape. */
static void test_every_kind(gan_backend *be)
{
    gan_pool pool;
    gan_model *m = NULL;
    CHECK_OK(gan_model_create_allocated("G", "linear(12,bias) bn relu reshape(3,2,2) conv(4,3,1,1,bias) "
                                        "lrelu(0.2) dropout(0.5) convt(2,4,2,1) sigmoid flatten",
                                        (gan_shape){6, 1, 1}, 2, be, &pool, &m));
    if (!m)
        return;
    CHECK_OK(gan_model_init_weights(m, GAN_INIT_PYTORCH, 5));
    gan_pb pb;
    CHECK_OK(gan_onnx_encode(m, "main", &pb));
    check_header(&pb);
    pb_view graph = graph_of(&pb);
    static const char *const ops[] = {"Gemm", "BatchNormalization", "Relu", "Reshape", "Conv",
                                      "LeakyRelu", "ConvTranspose", "Sigmoid", "Reshape"};
    pb_field nodes[MAX_FIELDS];
    check_ops(graph, ops, 9, nodes);
    check_value_info(graph, 11, "z", (const int64_t[]){6}, 1);
    check_value_info(graph, 12, "images", (const int64_t[]){32, 1, 1}, 3);

    /* Gemm: z, main.0.weight, main.0.bias; transB 1 */
    pb_field in[6];
    CHECK(pb_all(nodes[0].bytes, 1, in, 6) == 3 && pb_string_is(nodes[0].bytes, 3, "main.0"));
    CHECK(view_is(in[0].bytes, "z") && view_is(in[1].bytes, "main.0.weight") &&
          view_is(in[2].bytes, "main.0.bias"));
    pb_view a;
    CHECK(node_attribute(nodes[0].bytes, "transB", &a) && pb_int(a, 20, -1) == 2 && pb_int(a, 3, -1) == 1);
    /* BN: five inputs, epsilon 1e-5; Conv: pads [1,1,1,1]; LeakyRelu: alpha 0.2 */
    CHECK(pb_all(nodes[1].bytes, 1, in, 6) == 5 && float_attribute_is(nodes[1].bytes, "epsilon", 1e-5f));
    CHECK(ints_attribute_is(nodes[4].bytes, "kernel_shape", (const int64_t[]){3, 3}, 2));
    CHECK(ints_attribute_is(nodes[4].bytes, "strides", (const int64_t[]){1, 1}, 2));
    CHECK(ints_attribute_is(nodes[4].bytes, "pads", (const int64_t[]){1, 1, 1, 1}, 4));
    CHECK(float_attribute_is(nodes[5].bytes, "alpha", 0.2f));
    CHECK(ints_attribute_is(nodes[6].bytes, "strides", (const int64_t[]){2, 2}, 2));
    CHECK(ints_attribute_is(nodes[6].bytes, "kernel_shape", (const int64_t[]){4, 4}, 2));
    CHECK(pb_all(nodes[6].bytes, 1, in, 6) == 2); /* convt without bias: X, W */
    /* the dropout left no trace: the ConvTranspose reads the LeakyRelu's output */
    pb_field lrelu_out;
    CHECK(pb_one(nodes[5].bytes, 2, &lrelu_out) && in[0].bytes.len == lrelu_out.bytes.len &&
          !memcmp(in[0].bytes.data, lrelu_out.bytes.data, in[0].bytes.len));

    /* initializers: the model's bytes under the export's names; views keep the batch with 0 */
    static const char *const names[] = {"0.weight", "0.bias", "1.weight", "1.bias", "1.running_mean",
                                        "1.running_var", "3.weight", "3.bias", "6.weight"};
    for (int i = 0; i < 9; i++) {
        float *host;
        size_t bytes;
        param_bytes(m, names[i], &host, &bytes);
        gan_param *p = gan_model_find_param(m, names[i]);
        char full[64];
        snprintf(full, sizeof full, "main.%s", names[i]);
        if (p)
            check_initializer(graph, full, 1, p->dims, p->ndim, host, bytes);
        free(host);
    }
    check_initializer(graph, "view0.reshape.shape", 7, (const int64_t[]){4}, 1,
                      (const int64_t[]){0, 3, 2, 2}, 32);
    check_initializer(graph, "view1.reshape.shape", 7, (const int64_t[]){4}, 1,
                      (const int64_t[]){0, 32, 1, 1}, 32);
    pb_field all[MAX_FIELDS];
    CHECK(pb_all(graph, 5, all, MAX_FIELDS) == 11);

    /* a layer kind without a mapping is refused, naming the layer (no parser makes one: forced) */
    gan_layer_kind kept = m->layers[2]->spec.kind;
    m->layers[2]->spec.kind = GAN_LAYER_FLATTEN;
    gan_pb refused;
    CHECK_FAILS_WITH(gan_onnx_encode(m, "main", &refused), GAN_ERR_UNSUPPORTED, "G layer 2 (flatten)");
    gan_pb_free(&refused);
    char path[4300];
    snprintf(path, sizeof path, "%s/refused.onnx", test_temp_dir("test_onnx_export_refused"));
    CHECK_FAILS_WITH(gan_onnx_export(m, "main", path), GAN_ERR_UNSUPPORTED, "no ONNX mapping");
    struct stat st;
    CHECK_MSG(stat(path, &st) != 0, "a refused export left %s", path);
    m->layers[2]->spec.kind = kept;
    CHECK_FAILS_WITH(gan_onnx_encode(m, "", &refused), GAN_ERR_ARG, "prefix");
    gan_pb_free(&refused);

    gan_pb_free(&pb);
    gan_model_destroy(m);
    gan_pool_release(&pool);
}

/* DCGAN's shape of generator: [N, 8, 1, 1] in, ConvTranspose (p0 s1, then p1 s2 with a bias), BN
 * (2-d), Relu, Tanh; written to a file whole, and not at all into a missing directory. */
static void test_dcgan_file(gan_backend *be)
{
    gan_pool pool;
    gan_model *m = NULL;
    CHECK_OK(gan_model_create_allocated("G", "convt(4,4,1,0) bn relu convt(1,4,2,1,bias) tanh",
                                        (gan_shape){8, 1, 1}, 2, be, &pool, &m));
    if (!m)
        return;
    CHECK_OK(gan_model_init_weights(m, GAN_INIT_DCGAN, 7));
    gan_pb pb;
    CHECK_OK(gan_onnx_encode(m, "net", &pb));
    check_header(&pb);
    pb_view graph = graph_of(&pb);
    static const char *const ops[] = {"ConvTranspose", "BatchNormalization", "Relu", "ConvTranspose", "Tanh"};
    pb_field nodes[MAX_FIELDS], in[4];
    check_ops(graph, ops, 5, nodes);
    check_value_info(graph, 11, "z", (const int64_t[]){8, 1, 1}, 3);
    check_value_info(graph, 12, "images", (const int64_t[]){1, 8, 8}, 3);
    CHECK(pb_string_is(nodes[0].bytes, 3, "net.0"));
    CHECK(ints_attribute_is(nodes[0].bytes, "pads", (const int64_t[]){0, 0, 0, 0}, 4));
    CHECK(ints_attribute_is(nodes[0].bytes, "strides", (const int64_t[]){1, 1}, 2));
    CHECK(ints_attribute_is(nodes[3].bytes, "pads", (const int64_t[]){1, 1, 1, 1}, 4));
    CHECK(pb_all(nodes[3].bytes, 1, in, 4) == 3); /* X, W, B */
    CHECK(pb_all(nodes[0].bytes, 1, in, 4) == 2 && view_is(in[0].bytes, "z") &&
          view_is(in[1].bytes, "net.0.weight"));
    float *host;
    size_t bytes;
    param_bytes(m, "0.weight", &host, &bytes);
    check_initializer(graph, "net.0.weight", 1, (const int64_t[]){8, 4, 4, 4}, 4, host, bytes);
    free(host);

    const char *dir = test_temp_dir("test_onnx_export");
    char path[4300], tmp[4400], missing[4400];
    snprintf(path, sizeof path, "%s/G.onnx", dir);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    CHECK_OK(gan_onnx_export(m, "net", path));
    FILE *f = fopen(path, "rb");
    uint8_t *file = malloc(pb.len + 1);
    size_t got = f && file ? fread(file, 1, pb.len + 1, f) : 0;
    if (f)
        fclose(f);
    CHECK_MSG(got == pb.len && !memcmp(file, pb.data, pb.len), "%s: %zu bytes, not the %zu encoded",
              path, got, pb.len);
    free(file);
    struct stat st;
    CHECK_MSG(stat(tmp, &st) != 0, "%s left behind", tmp);
    snprintf(missing, sizeof missing, "%s/no/such/G.onnx", dir);
    CHECK_FAILS_WITH(gan_onnx_export(m, "net", missing), GAN_ERR_IO, "no/such/G.onnx");

    gan_pb_free(&pb);
    gan_model_destroy(m);
    gan_pool_release(&pool);
}

int main(void)
{
    gan_backend *be = NULL;
    CHECK_OK(gan_cpu_backend_create(NULL, &be));
    if (!be)
        return test_finish();
    test_every_kind(be);
    test_dcgan_file(be);
    be->destroy(be);
    return test_finish();
}
