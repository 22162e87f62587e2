/* One memory pool per backend: every buffer a run needs (weights, gradients, Adam state,
 * activations, workspaces) is requested while the models are planned, then allocated at once by
 * gan_pool_commit. Nothing is allocated inside the training loop; the peak is the pool's size. */
#ifndef GAN_POOL_H
#define GAN_POOL_H

#include <stddef.h>
#include <stdio.h>

#include "gan/backend.h"
#include "gan/error.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct gan_pool_request {
    void **slot;   /* receives the pointer at commit */
    size_t bytes;
    size_t offset;
    const char *what; /* for the memory report: "G activations", ... */
} gan_pool_request;

typedef struct gan_pool {
    gan_backend *backend;
    gan_pool_request *requests;
    size_t request_count, request_capacity;
    size_t bytes;      /* total, including alignment */
    void *base;        /* backend memory, NULL until commit */
} gan_pool;

/* Every buffer starts on this boundary (cuDNN and AVX-512 both like 256 B). */
enum { GAN_POOL_ALIGN_BYTES = 256 };

void gan_pool_init(gan_pool *pool, gan_backend *backend);
/* Asks for `bytes` bytes whose address is written to *slot by gan_pool_commit. */
gan_status gan_pool_request_bytes(gan_pool *pool, void **slot, size_t bytes, const char *what);
#define gan_pool_request_floats(pool, slot, count, what) \
    gan_pool_request_bytes((pool), (void **)(slot), (size_t)(count) * sizeof(float), (what))
/* Allocates every requested buffer in one backend allocation and fills the slots. */
gan_status gan_pool_commit(gan_pool *pool);
/* Bytes requested under each `what`, summed, printed one line each (for the start-up report). */
void gan_pool_report(const gan_pool *pool, FILE *out);
void gan_pool_release(gan_pool *pool);

#ifdef __cplusplus
}
#endif
#endif
