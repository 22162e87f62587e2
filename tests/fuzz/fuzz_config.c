/* INI configs and the layer grammar: the input as a config (gan_config_load_text, NUL bytes
 * included), then its generator and discriminator as models on the CPU backend (shapes inferred,
 * memory planned, not allocated); and the input as one layer sequence of its own. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gan/backend_select.h"
#include "gan/config.h"
#include "gan/nn.h"
#include "gan/pool.h"

static gan_backend *cpu;

static void build(const char *name, const char *layers, gan_shape input)
{
    gan_layer_spec *specs = NULL;
    int count = 0;
    if (gan_layers_parse(layers, &specs, &count) == GAN_OK)
        free(specs);
    gan_model *model = NULL;
    if (gan_model_create(name, layers, input, 2, cpu, &model) == GAN_OK) {
        gan_pool pool;
        gan_pool_init(&pool, cpu);
        (void)gan_model_plan(model, &pool); /* requests only: nothing is allocated */
        gan_pool_release(&pool);
    }
    gan_model_destroy(model);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!cpu && gan_backend_open("cpu", NULL, &cpu, NULL, 0) != GAN_OK)
        abort();
    gan_config cfg;
    gan_config_defaults(&cfg);
    if (gan_config_load_text(&cfg, (const char *)data, size, "fuzz.ini") == GAN_OK) {
        (void)gan_config_validate(&cfg);
        build("G", cfg.generator, (gan_shape){cfg.nz, 1, 1});
        build("D", cfg.discriminator, (gan_shape){cfg.channels, cfg.image_size, cfg.image_size});
    }
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    build("L", text, (gan_shape){3, 8, 8});
    free(text);
    return 0;
}
