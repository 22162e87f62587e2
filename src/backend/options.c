/* Backend options: the defaults, their names, and what a config asks for. */
#include "gan/backend.h"
#include "gan/backend_select.h"

gan_backend_options gan_backend_options_default(void)
{
    return (gan_backend_options){.precision = GAN_PRECISION_FP32, .deterministic = true,
                                 .workspace_bytes = 0, .device_index = 0};
}

const char *gan_precision_name(gan_precision precision)
{
    switch (precision) {
    case GAN_PRECISION_FP32: return "fp32";
    case GAN_PRECISION_TF32: return "tf32";
    case GAN_PRECISION_BF16: return "bf16";
    }
    return "unknown";
}

gan_backend_options gan_backend_options_for_config(const gan_config *cfg)
{
    gan_backend_options options = gan_backend_options_default();
    options.precision = cfg->precision;
    options.deterministic = cfg->deterministic;
    return options;
}
