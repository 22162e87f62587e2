/* ONNX export of a model in eval mode (see gan/onnx_export.h for the mapping). Field numbers are
 * those of onnx/onnx.proto (checked against the onnx repository's file); repeated scalars are
 * written unpacked, as proto2 declares them. */
#include "gan/onnx_export.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gan/file_atomic.h"
#include "gan/nn.h"

/* onnx.proto field numbers */
enum {
    MODEL_IR_VERSION = 1, MODEL_PRODUCER_NAME = 2, MODEL_PRODUCER_VERSION = 3, MODEL_DOC_STRING = 6,
    MODEL_GRAPH = 7, MODEL_OPSET_IMPORT = 8,
    OPSET_DOMAIN = 1, OPSET_VERSION = 2,
    GRAPH_NODE = 1, GRAPH_NAME = 2, GRAPH_INITIALIZER = 5, GRAPH_INPUT = 11, GRAPH_OUTPUT = 12,
    NODE_INPUT = 1, NODE_OUTPUT = 2, NODE_NAME = 3, NODE_OP_TYPE = 4, NODE_ATTRIBUTE = 5,
    ATTR_NAME = 1, ATTR_F = 2, ATTR_I = 3, ATTR_INTS = 8, ATTR_TYPE = 20,
    ATTR_TYPE_FLOAT = 1, ATTR_TYPE_INT = 2, ATTR_TYPE_INTS = 7,
    TENSOR_DIMS = 1, TENSOR_DATA_TYPE = 2, TENSOR_NAME = 8, TENSOR_RAW_DATA = 9,
    DATA_TYPE_FLOAT = 1, DATA_TYPE_INT64 = 7,
    VALUE_INFO_NAME = 1, VALUE_INFO_TYPE = 2,
    TYPE_TENSOR_TYPE = 1, TYPE_TENSOR_ELEM_TYPE = 1, TYPE_TENSOR_SHAPE = 2,
    SHAPE_DIM = 1, DIM_VALUE = 1, DIM_PARAM = 2
};

enum { NAME_BYTES = 112, MAX_NODE_INPUTS = 5 };

/* A node kept until the graph is complete, so the last one's output can become "images". */
typedef struct onnx_node {
    const char *op_type;
    char name[NAME_BYTES];
    char inputs[MAX_NODE_INPUTS][NAME_BYTES];
    int input_count;
    char output[NAME_BYTES];
    gan_pb attributes; /* AttributeProto messages, each framed as NodeProto.attribute */
} onnx_node;

/* The value flowing between nodes: its name and shape, [batch, c] (rank 2, h = w = 1) or
 * [batch, c, h, w] (rank 4). */
typedef struct onnx_value {
    char name[NAME_BYTES];
    int rank;
    gan_shape shape;
} onnx_value;

typedef struct onnx_builder {
    gan_model *model;
    const char *prefix;
    onnx_node *nodes;
    int node_count, node_capacity;
    gan_pb initializers; /* TensorProto messages, each framed as GraphProto.initializer */
    int view_count;      /* Flatten/Reshape nodes so far (their names) */
    onnx_value value;
} onnx_builder;

/* ---- attributes ------------------------------------------------------------------------------ */

static void attribute_int(gan_pb *attributes, const char *name, int64_t value)
{
    gan_pb a;
    gan_pb_init(&a);
    gan_pb_string(&a, ATTR_NAME, name);
    gan_pb_int64(&a, ATTR_TYPE, ATTR_TYPE_INT);
    gan_pb_int64(&a, ATTR_I, value);
    gan_pb_message(attributes, NODE_ATTRIBUTE, &a);
    gan_pb_free(&a);
}

static void attribute_float(gan_pb *attributes, const char *name, float value)
{
    gan_pb a;
    gan_pb_init(&a);
    gan_pb_string(&a, ATTR_NAME, name);
    gan_pb_int64(&a, ATTR_TYPE, ATTR_TYPE_FLOAT);
    gan_pb_float(&a, ATTR_F, value);
    gan_pb_message(attributes, NODE_ATTRIBUTE, &a);
    gan_pb_free(&a);
}

static void attribute_ints(gan_pb *attributes, const char *name, const int64_t *values, int count)
{
    gan_pb a;
    gan_pb_init(&a);
    gan_pb_string(&a, ATTR_NAME, name);
    gan_pb_int64(&a, ATTR_TYPE, ATTR_TYPE_INTS);
    for (int i = 0; i < count; i++)
        gan_pb_int64(&a, ATTR_INTS, values[i]);
    gan_pb_message(attributes, NODE_ATTRIBUTE, &a);
    gan_pb_free(&a);
}

/* ---- initializers ---------------------------------------------------------------------------- */

static void add_initializer(onnx_builder *b, const char *name, int data_type, int ndim,
                            const int64_t *dims, const void *data, size_t bytes)
{
    gan_pb t;
    gan_pb_init(&t);
    for (int i = 0; i < ndim; i++)
        gan_pb_int64(&t, TENSOR_DIMS, dims[i]);
    gan_pb_int64(&t, TENSOR_DATA_TYPE, data_type);
    gan_pb_string(&t, TENSOR_NAME, name);
    gan_pb_bytes(&t, TENSOR_RAW_DATA, data, bytes);
    gan_pb_message(&b->initializers, GRAPH_INITIALIZER, &t);
    gan_pb_free(&t);
}

/* The model's parameter `suffix` of module `index` as an initializer; its name in `name`. */
static gan_status add_param(onnx_builder *b, int module_index, const char *suffix,
                            char name[NAME_BYTES])
{
    char local[48];
    snprintf(local, sizeof local, "%d.%s", module_index, suffix);
    gan_param *p = gan_model_find_param(b->model, local);
    if (!p || !p->value)
        return gan_error(GAN_ERR_ARG, "%s layer %d: parameter %s is missing or not allocated",
                         b->model->name, module_index, local);
    snprintf(name, NAME_BYTES, "%s.%s", b->prefix, local);
    size_t bytes = p->count * sizeof(float);
    float *host = malloc(bytes ? bytes : 1);
    if (!host)
        return gan_error(GAN_ERR_NOMEM, "out of memory for %s", name);
    gan_backend *be = b->model->backend;
    gan_status status = GAN_OK;
    GAN_CHECK(be->download(be, host, p->value, bytes));
    add_initializer(b, name, DATA_TYPE_FLOAT, p->ndim, p->dims, host, bytes);
cleanup:
    free(host);
    return status;
}

/* ---- nodes ----------------------------------------------------------------------------------- */

/* Appends a node reading the current value (plus `extra` inputs) and makes its output the
 * current value. */
static gan_status add_node(onnx_builder *b, const char *op_type, const char *name,
                           char (*extra)[NAME_BYTES], int extra_count, onnx_node **out)
{
    if (b->node_count == b->node_capacity) {
        int capacity = b->node_capacity ? 2 * b->node_capacity : 16;
        onnx_node *grown = realloc(b->nodes, (size_t)capacity * sizeof *grown);
        if (!grown)
            return gan_error(GAN_ERR_NOMEM, "out of memory for the ONNX graph");
        b->nodes = grown;
        b->node_capacity = capacity;
    }
    onnx_node *node = &b->nodes[b->node_count++];
    memset(node, 0, sizeof *node);
    gan_pb_init(&node->attributes);
    node->op_type = op_type;
    snprintf(node->name, sizeof node->name, "%s", name);
    snprintf(node->inputs[0], NAME_BYTES, "%s", b->value.name);
    node->input_count = 1 + extra_count;
    for (int i = 0; i < extra_count; i++)
        snprintf(node->inputs[1 + i], NAME_BYTES, "%s", extra[i]);
    snprintf(node->output, sizeof node->output, "%s.output", name);
    snprintf(b->value.name, sizeof b->value.name, "%s", node->output);
    if (out)
        *out = node;
    return GAN_OK;
}

/* Makes the current value [batch, want.c] (rank 2) or [batch, want] (rank 4) with Flatten or
 * Reshape when it is not already; `rank` 0 keeps the rank when the shape already matches. */
static gan_status conform(onnx_builder *b, int rank, gan_shape want)
{
    onnx_value *v = &b->value;
    bool same_shape = v->shape.c == want.c && v->shape.h == want.h && v->shape.w == want.w;
    if (same_shape && (rank == 0 || rank == v->rank))
        return GAN_OK;
    if (rank == 0)
        rank = 4;
    char name[NAME_BYTES];
    int view = b->view_count++;
    if (rank == 2) { /* a flat [batch, F] from [batch, c, h, w] with c*h*w = F */
        snprintf(name, sizeof name, "view%d.flatten", view);
        onnx_node *node;
        GAN_TRY(add_node(b, "Flatten", name, NULL, 0, &node));
        attribute_int(&node->attributes, "axis", 1);
    } else {
        char shape_name[1][NAME_BYTES];
        snprintf(name, sizeof name, "view%d.reshape", view);
        snprintf(shape_name[0], NAME_BYTES, "%s.shape", name);
        /* 0 copies the input's batch dimension (allowzero = 0, the default) */
        int64_t shape[4] = {0, want.c, want.h, want.w}, dims[1] = {4};
        add_initializer(b, shape_name[0], DATA_TYPE_INT64, 1, dims, shape, sizeof shape);
        GAN_TRY(add_node(b, "Reshape", name, shape_name, 1, NULL));
    }
    v->rank = rank;
    v->shape = want;
    return GAN_OK;
}

static gan_status add_conv(onnx_builder *b, const gan_layer_info *layer, const char *op_type,
                           const char *name)
{
    GAN_TRY(conform(b, 4, layer->in));
    char extra[2][NAME_BYTES];
    int extra_count = 1;
    GAN_TRY(add_param(b, layer->index, "weight", extra[0]));
    if (layer->spec.bias) {
        GAN_TRY(add_param(b, layer->index, "bias", extra[1]));
        extra_count = 2;
    }
    onnx_node *node;
    GAN_TRY(add_node(b, op_type, name, extra, extra_count, &node));
    int64_t k = layer->spec.kernel, s = layer->spec.stride, p = layer->spec.pad;
    int64_t kernel[2] = {k, k}, strides[2] = {s, s}, pads[4] = {p, p, p, p}; /* [top, left, bottom, right] */
    attribute_ints(&node->attributes, "kernel_shape", kernel, 2);
    attribute_ints(&node->attributes, "strides", strides, 2);
    attribute_ints(&node->attributes, "pads", pads, 4);
    return GAN_OK;
}

static gan_status add_layer(onnx_builder *b, const gan_layer_info *layer)
{
    char name[NAME_BYTES];
    snprintf(name, sizeof name, "%s.%d", b->prefix, layer->index);
    onnx_node *node = NULL;
    switch (layer->spec.kind) {
    case GAN_LAYER_CONVT:
        GAN_TRY(add_conv(b, layer, "ConvTranspose", name));
        break;
    case GAN_LAYER_CONV:
        GAN_TRY(add_conv(b, layer, "Conv", name));
        break;
    case GAN_LAYER_LINEAR: {
        GAN_TRY(conform(b, 2, layer->in));
        char extra[2][NAME_BYTES];
        int extra_count = 1;
        GAN_TRY(add_param(b, layer->index, "weight", extra[0]));
        if (layer->spec.bias) {
            GAN_TRY(add_param(b, layer->index, "bias", extra[1]));
            extra_count = 2;
        }
        GAN_TRY(add_node(b, "Gemm", name, extra, extra_count, &node));
        attribute_int(&node->attributes, "transB", 1);
        break;
    }
    case GAN_LAYER_BN: {
        GAN_TRY(conform(b, 0, layer->in));
        char extra[4][NAME_BYTES];
        GAN_TRY(add_param(b, layer->index, "weight", extra[0]));
        GAN_TRY(add_param(b, layer->index, "bias", extra[1]));
        GAN_TRY(add_param(b, layer->index, "running_mean", extra[2]));
        GAN_TRY(add_param(b, layer->index, "running_var", extra[3]));
        GAN_TRY(add_node(b, "BatchNormalization", name, extra, 4, &node));
        attribute_float(&node->attributes, "epsilon", layer->bn_epsilon);
        break;
    }
    case GAN_LAYER_RELU:
    case GAN_LAYER_LRELU:
    case GAN_LAYER_TANH:
    case GAN_LAYER_SIGMOID: {
        static const char *ops[] = {[GAN_LAYER_RELU] = "Relu", [GAN_LAYER_LRELU] = "LeakyRelu",
                                    [GAN_LAYER_TANH] = "Tanh", [GAN_LAYER_SIGMOID] = "Sigmoid"};
        GAN_TRY(conform(b, 0, layer->in));
        GAN_TRY(add_node(b, ops[layer->spec.kind], name, NULL, 0, &node));
        if (layer->spec.kind == GAN_LAYER_LRELU)
            attribute_float(&node->attributes, "alpha", layer->spec.slope);
        break;
    }
    case GAN_LAYER_DROPOUT: /* identity in eval mode */
        GAN_TRY(conform(b, 0, layer->in));
        break;
    default:
        return gan_error(GAN_ERR_UNSUPPORTED, "%s layer %d (%s): no ONNX mapping for this layer",
                         b->model->name, layer->index, gan_layer_kind_name(layer->spec.kind));
    }
    /* the value's shape after the layer (a rank-2 value stays rank 2: h = w = 1) */
    b->value.shape = layer->out;
    return GAN_OK;
}

/* ---- graph and model ------------------------------------------------------------------------- */

static void encode_node(gan_pb *graph, const onnx_node *node)
{
    gan_pb n;
    gan_pb_init(&n);
    for (int i = 0; i < node->input_count; i++)
        gan_pb_string(&n, NODE_INPUT, node->inputs[i]);
    gan_pb_string(&n, NODE_OUTPUT, node->output);
    gan_pb_string(&n, NODE_NAME, node->name);
    gan_pb_string(&n, NODE_OP_TYPE, node->op_type);
    gan_pb_raw(&n, node->attributes.data, node->attributes.len);
    if (node->attributes.failed)
        n.failed = true;
    gan_pb_message(graph, GRAPH_NODE, &n);
    gan_pb_free(&n);
}

/* ValueInfoProto of a float tensor [batch, dims...] with a symbolic batch. */
static void encode_value_info(gan_pb *graph, int field, const char *name, const int64_t *dims,
                              int ndim)
{
    gan_pb shape, tensor, type, info, dim;
    gan_pb_init(&shape);
    gan_pb_init(&tensor);
    gan_pb_init(&type);
    gan_pb_init(&info);
    gan_pb_init(&dim);
    gan_pb_string(&dim, DIM_PARAM, "batch");
    gan_pb_message(&shape, SHAPE_DIM, &dim);
    for (int i = 0; i < ndim; i++) {
        gan_pb_free(&dim);
        gan_pb_int64(&dim, DIM_VALUE, dims[i]);
        gan_pb_message(&shape, SHAPE_DIM, &dim);
    }
    gan_pb_int64(&tensor, TYPE_TENSOR_ELEM_TYPE, DATA_TYPE_FLOAT);
    gan_pb_message(&tensor, TYPE_TENSOR_SHAPE, &shape);
    gan_pb_message(&type, TYPE_TENSOR_TYPE, &tensor);
    gan_pb_string(&info, VALUE_INFO_NAME, name);
    gan_pb_message(&info, VALUE_INFO_TYPE, &type);
    gan_pb_message(graph, field, &info);
    gan_pb_free(&dim);
    gan_pb_free(&shape);
    gan_pb_free(&tensor);
    gan_pb_free(&type);
    gan_pb_free(&info);
}

static void builder_free(onnx_builder *b)
{
    for (int i = 0; i < b->node_count; i++)
        gan_pb_free(&b->nodes[i].attributes);
    free(b->nodes);
    gan_pb_free(&b->initializers);
}

/* The ModelProto around the builder's nodes and initializers: the graph with its input `in`
 * ([batch, nz] when `flat_input`) and output, the opset, the producer. */
static gan_status encode_model(const onnx_builder *b, gan_shape in, bool flat_input, gan_pb *out)
{
    gan_model *model = b->model;
    gan_pb graph;
    gan_pb_init(&graph);
    for (int i = 0; i < b->node_count; i++)
        encode_node(&graph, &b->nodes[i]);
    gan_pb_string(&graph, GRAPH_NAME, model->name);
    gan_pb_raw(&graph, b->initializers.data, b->initializers.len);
    if (b->initializers.failed)
        graph.failed = true;
    int64_t in_dims[3] = {in.c, in.h, in.w};
    encode_value_info(&graph, GRAPH_INPUT, "z", in_dims, flat_input ? 1 : 3);
    gan_shape o = model->output_shape;
    int64_t out_dims[3] = {o.c, o.h, o.w};
    encode_value_info(&graph, GRAPH_OUTPUT, "images", out_dims, 3);

    gan_pb opset;
    gan_pb_init(&opset);
    gan_pb_string(&opset, OPSET_DOMAIN, "");
    gan_pb_int64(&opset, OPSET_VERSION, GAN_ONNX_OPSET);

    char doc[160];
    snprintf(doc, sizeof doc, "%s of a gan model in eval mode (BN uses running statistics, "
                              "dropout is the identity)", model->name);
    gan_pb_int64(out, MODEL_IR_VERSION, GAN_ONNX_IR_VERSION);
    gan_pb_string(out, MODEL_PRODUCER_NAME, "gan");
    gan_pb_string(out, MODEL_PRODUCER_VERSION, GAN_VERSION);
    gan_pb_string(out, MODEL_DOC_STRING, doc);
    gan_pb_message(out, MODEL_GRAPH, &graph);
    gan_pb_message(out, MODEL_OPSET_IMPORT, &opset);
    gan_pb_free(&opset);
    gan_pb_free(&graph);
    return gan_pb_status(out, "ONNX export");
}

gan_status gan_onnx_encode(gan_model *model, const char *prefix, gan_pb *out)
{
    gan_pb_init(out);
    if (!model || !prefix || !*prefix)
        return gan_error(GAN_ERR_ARG, "ONNX export: no model or no name prefix");
    onnx_builder b;
    memset(&b, 0, sizeof b);
    b.model = model;
    b.prefix = prefix;
    gan_pb_init(&b.initializers);

    /* The input: [batch, nz] for a generator that starts with nn.Linear, else [batch, c, h, w]. */
    gan_shape in = model->input_shape;
    gan_layer_info first;
    bool flat_input = gan_model_layer_info(model, 0, &first) == GAN_OK &&
                      first.spec.kind == GAN_LAYER_LINEAR && in.h == 1 && in.w == 1;
    snprintf(b.value.name, sizeof b.value.name, "z");
    b.value.rank = flat_input ? 2 : 4;
    b.value.shape = in;

    gan_status status = GAN_OK;
    for (int i = 0; i < gan_model_layer_count(model); i++) {
        gan_layer_info layer;
        GAN_CHECK(gan_model_layer_info(model, i, &layer));
        GAN_CHECK(add_layer(&b, &layer));
    }
    GAN_CHECK(conform(&b, 4, model->output_shape));
    /* The last node's output is the graph's output (a graph of dropouts alone gets an Identity). */
    if (b.node_count == 0)
        GAN_CHECK(add_node(&b, "Identity", "identity", NULL, 0, NULL));
    snprintf(b.nodes[b.node_count - 1].output, NAME_BYTES, "images");
    GAN_CHECK(encode_model(&b, in, flat_input, out));
cleanup:
    builder_free(&b);
    return status;
}

gan_status gan_onnx_export(gan_model *model, const char *prefix, const char *path)
{
    gan_pb pb;
    gan_status status = gan_onnx_encode(model, prefix, &pb);
    if (status != GAN_OK) {
        gan_pb_free(&pb);
        return gan_error_prefix(status, "%s: ", path);
    }
    gan_file_piece piece = {pb.data, pb.len};
    status = gan_file_write_atomic(path, &piece, 1);
    gan_pb_free(&pb);
    return status;
}
