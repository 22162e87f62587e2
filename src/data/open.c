/* The data source a config names ([data] format, path, split, split_file, image_size, channels,
 * max_bad_fraction; [train] batch_size and seed). */
#include <string.h>

#include "gan/data.h"

/* The 8-Gaussian ring the toy configs train on: radius 2, std 0.1, 64k samples an epoch. */
static const double TOY_RADIUS = 2.0, TOY_STD = 0.1;
enum { TOY_SAMPLES_PER_EPOCH = 1 << 16 };

gan_status gan_data_source_open_for_config(const gan_config *cfg, gan_data_source **out)
{
    return gan_data_source_open_part(cfg, 0, 1, out);
}

gan_status gan_data_source_open_part(const gan_config *cfg, int part, int parts, gan_data_source **out)
{
    *out = NULL;
    if (parts < 1 || part < 0 || part >= parts || cfg->batch_size % parts)
        return gan_error(GAN_ERR_ARG, "part %d of %d of a batch of %d", part, parts, cfg->batch_size);
    const char *format = cfg->data_format[0] ? cfg->data_format : "auto";
    if (!strcmp(format, "toy"))
        return gan_toy_ring_source_open_part(cfg->batch_size, part, parts, cfg->seed, TOY_RADIUS, TOY_STD,
                                             TOY_SAMPLES_PER_EPOCH, out);
    if (!cfg->data_path[0])
        return gan_error(GAN_ERR_CONFIG, "data.path is empty: name the data set to train on");
    if (!strcmp(format, "auto"))
        GAN_TRY(gan_dataset_detect_format(cfg->data_path, &format));
    gan_dataset_options data = {
        .path = cfg->data_path,
        .format = format,
        /* a cache was cut to its split by gan prepare already */
        .split = strcmp(format, "npy") ? cfg->data_split : "all",
        .split_file = cfg->data_split_file,
        .size = cfg->image_size,
        .channels = cfg->channels,
    };
    gan_dataset *ds;
    GAN_TRY(gan_dataset_open(&data, &ds));
    gan_loader_options options;
    gan_loader_options_default(&options);
    options.batch_size = cfg->batch_size;
    options.seed = cfg->seed;
    options.max_bad_fraction = cfg->max_bad_fraction;
    options.part = part;
    options.parts = parts;
    return gan_loader_open(ds, &options, out);
}
