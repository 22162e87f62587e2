#include "gan/pool.h"

#include <stdlib.h>
#include <string.h>

void gan_pool_init(gan_pool *pool, gan_backend *backend)
{
    memset(pool, 0, sizeof *pool);
    pool->backend = backend;
}

gan_status gan_pool_request_bytes(gan_pool *pool, void **slot, size_t bytes, const char *what)
{
    if (pool->base)
        return gan_error(GAN_ERR_ARG, "pool: request for %s after the pool was committed", what);
    if (pool->request_count == pool->request_capacity) {
        size_t capacity = pool->request_capacity ? 2 * pool->request_capacity : 64;
        gan_pool_request *grown = realloc(pool->requests, capacity * sizeof *grown);
        if (!grown)
            return gan_error(GAN_ERR_NOMEM, "pool: out of host memory for the plan");
        pool->requests = grown;
        pool->request_capacity = capacity;
    }
    size_t aligned = (bytes + GAN_POOL_ALIGN_BYTES - 1) / GAN_POOL_ALIGN_BYTES * GAN_POOL_ALIGN_BYTES;
    gan_pool_request *request = &pool->requests[pool->request_count++];
    request->slot = slot;
    request->bytes = bytes;
    request->offset = pool->bytes;
    request->what = what;
    pool->bytes += aligned;
    *slot = NULL;
    return GAN_OK;
}

gan_status gan_pool_commit(gan_pool *pool)
{
    if (pool->base)
        return gan_error(GAN_ERR_ARG, "pool: committed twice");
    size_t bytes = pool->bytes ? pool->bytes : GAN_POOL_ALIGN_BYTES;
    gan_status status = pool->backend->alloc(pool->backend, bytes, &pool->base);
    if (status != GAN_OK)
        return gan_error_prefix(status, "pool of %zu bytes: ", bytes);
    for (size_t i = 0; i < pool->request_count; i++)
        *pool->requests[i].slot = (char *)pool->base + pool->requests[i].offset;
    return GAN_OK;
}

void gan_pool_report(const gan_pool *pool, FILE *out)
{
    /* Sum per `what`, in order of first appearance. */
    for (size_t i = 0; i < pool->request_count; i++) {
        const char *what = pool->requests[i].what;
        int seen = 0;
        for (size_t j = 0; j < i && !seen; j++)
            seen = !strcmp(pool->requests[j].what, what);
        if (seen)
            continue;
        size_t total = 0;
        for (size_t j = i; j < pool->request_count; j++)
            if (!strcmp(pool->requests[j].what, what))
                total += pool->requests[j].bytes;
        fprintf(out, "  %-24s %12zu bytes\n", what, total);
    }
    fprintf(out, "  %-24s %12zu bytes (%s, one allocation)\n", "peak", pool->bytes,
            pool->backend->name);
}

void gan_pool_release(gan_pool *pool)
{
    if (pool->base)
        pool->backend->free(pool->backend, pool->base);
    free(pool->requests);
    memset(pool, 0, sizeof *pool);
}
