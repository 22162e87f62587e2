/* Checkpoints: the stored config (safetensors metadata, then INI), the trainer built from it on
 * the CPU backend, and the checkpoint loaded into it (every tensor's name, shape and dtype
 * checked, the counters read). Only public headers: gan_checkpoint_read_config,
 * gan_trainer_create, gan_checkpoint_load. A config whose models would need more than 32 MiB is
 * skipped (planned, not built): the fuzzer looks for reading bugs, not for big allocations. */
#include <stdint.h>
#include <stdlib.h>

#include "fuzz_util.h"
#include "gan/backend_select.h"
#include "gan/checkpoint.h"
#include "gan/pool.h"
#include "gan/train.h"

enum { MAX_PLANNED_BYTES = 32 << 20, SAMPLE_BATCH = 64 };

/* Bytes G (at the sample grid's batch and the training batch) and D would request. */
static size_t planned_bytes(const gan_config *cfg, gan_backend *backend)
{
    size_t bytes = 0;
    gan_shape image = {cfg->channels, cfg->image_size, cfg->image_size};
    const struct {
        const char *name, *layers;
        gan_shape input;
        int batch;
    } models[3] = {{"G", cfg->generator, {cfg->nz, 1, 1}, cfg->batch_size},
                   {"G", cfg->generator, {cfg->nz, 1, 1}, SAMPLE_BATCH},
                   {"D", cfg->discriminator, image, cfg->batch_size}};
    for (int i = 0; i < 3; i++) {
        gan_model *model = NULL;
        gan_pool pool;
        gan_pool_init(&pool, backend);
        if (gan_model_create(models[i].name, models[i].layers, models[i].input, models[i].batch, backend,
                             &model) != GAN_OK ||
            gan_model_plan(model, &pool) != GAN_OK)
            bytes = SIZE_MAX;
        else if (bytes != SIZE_MAX)
            bytes += pool.bytes;
        gan_pool_release(&pool);
        gan_model_destroy(model);
    }
    return bytes;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static gan_backend *cpu;
    if (!cpu && gan_backend_open("cpu", NULL, &cpu, NULL, 0) != GAN_OK)
        abort();
    const char *path = fuzz_write_file("checkpoint.safetensors", data, size);
    gan_config cfg;
    if (gan_checkpoint_read_config(path, &cfg) != GAN_OK)
        return 0;
    if (cfg.batch_size > 16)
        cfg.batch_size = 16; /* the checkpoint does not depend on it */
    if (planned_bytes(&cfg, cpu) > MAX_PLANNED_BYTES)
        return 0;
    gan_trainer *trainer = NULL;
    if (gan_trainer_create(&cfg, cpu, NULL, NULL, &trainer) == GAN_OK) {
        int64_t epoch = 0;
        (void)gan_trainer_load_checkpoint(trainer, NULL, path, &epoch);
    }
    gan_trainer_destroy(trainer);
    return 0;
}
