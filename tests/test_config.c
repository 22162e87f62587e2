/* Configs: every shipped config loads and builds G and D whose shapes fit each other; keys,
 * overrides, continuation lines and every kind of bad input are handled as docs/DESIGN.md says. */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gan/config.h"
#include "gan/nn.h"
#include "nn/layer.h"
#include "test_util.h"

static void check_shipped_config(const char *name, gan_shape g_out_want, int d_params_min)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/configs/%s.ini", test_source_dir(), name);
    gan_config cfg;
    gan_config_defaults(&cfg);
    CHECK_OK(gan_config_load(&cfg, path));
    CHECK_OK(gan_config_validate(&cfg));
    CHECK_OK(gan_config_check_storable(&cfg));
    CHECK_MSG(!strcmp(cfg.name, name), "config name '%s' != '%s'", cfg.name, name);
    gan_model *g = NULL, *d = NULL;
    gan_shape z = {cfg.nz, 1, 1};
    gan_shape image = {cfg.channels, cfg.image_size, cfg.image_size};
    CHECK_OK(gan_model_create("G", cfg.generator, z, 4, NULL, &g));
    CHECK_OK(gan_model_create("D", cfg.discriminator, image, 4, NULL, &d));
    if (g && d) {
        CHECK_MSG(g->output_shape.c == g_out_want.c && g->output_shape.h == g_out_want.h &&
                      g->output_shape.w == g_out_want.w,
                  "%s: G output [%d,%d,%d]", name, g->output_shape.c, g->output_shape.h,
                  g->output_shape.w);
        CHECK_MSG(g->output_shape.c == image.c && g->output_shape.h == image.h &&
                      g->output_shape.w == image.w,
                  "%s: G output does not fit D input", name);
        CHECK_MSG(gan_shape_count(d->output_shape) == 1, "%s: D gives %zu values per sample", name,
                  gan_shape_count(d->output_shape));
        CHECK_MSG(d->layers[d->layer_count - 1]->spec.kind == GAN_LAYER_SIGMOID,
                  "%s: D does not end in sigmoid", name);
        CHECK_MSG((int)d->trainable_count >= d_params_min, "%s: D has %zu parameters", name,
                  d->trainable_count);
    }
    gan_model_destroy(g);
    gan_model_destroy(d);
}

/* A value the stored config (config.ini, every checkpoint) cannot carry is refused by
 * gan_config_check_storable, naming the key and why; a value that can, and the shipped configs,
 * pass. */
static void check_storable_values(void)
{
    gan_config cfg;
    char path[300];
    snprintf(path, sizeof path, "%s/configs/dcgan_fmnist32.ini", test_source_dir());
    gan_config_defaults(&cfg);
    CHECK_OK(gan_config_load(&cfg, path));
    CHECK_OK(gan_config_override(&cfg, "data.path=/data/with spaces/and;semicolons;"));
    CHECK_OK(gan_config_check_storable(&cfg));
    /* a layer sequence's line breaks and runs of spaces separate layers: kept as single spaces,
     * which its stored lines read back as */
    CHECK_OK(gan_config_override(&cfg, "model.generator=convt(64,4,1,0) bn relu\n   convt(1,4,2,1)\t tanh "));
    CHECK_MSG(!strcmp(cfg.generator, "convt(64,4,1,0) bn relu convt(1,4,2,1) tanh"), "generator '%s'",
              cfg.generator);
    CHECK_OK(gan_config_check_storable(&cfg));
    char long_path[260] = "data.path=/x/";
    memset(long_path + strlen(long_path), 'a', 246);
    long_path[sizeof long_path - 1] = '\0';
    struct { const char *override, *needle; } bad[] = {
        {long_path, "too long for one line"},
        {"data.path=/x/my ;set", "' ;'"},
        {"data.split_file= /x/split.txt", "starts or ends with a space"},
        {"model.export_prefix=main ", "starts or ends with a space"},
        {"data.path=/x/a\nb", "line break"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        gan_config_defaults(&cfg);
        CHECK_OK(gan_config_load(&cfg, path));
        CHECK_OK(gan_config_override(&cfg, bad[i].override));
        CHECK_FAILS_WITH(gan_config_check_storable(&cfg), GAN_ERR_CONFIG, bad[i].needle);
        char key[32];
        snprintf(key, sizeof key, "%.*s", (int)strcspn(bad[i].override, "="), bad[i].override);
        CHECK_FAILS_WITH(gan_config_check_storable(&cfg), GAN_ERR_CONFIG, key);
    }
}

/* Integers start with a digit (a signed key's after an optional sign): strtoull would take " -1"
 * as 2^64 - 1. */
static void check_integer_text(void)
{
    gan_config cfg;
    gan_config_defaults(&cfg);
    const char *bad[] = {"train.seed= -1", "train.seed=-1", "train.seed=+1", "train.seed= 1",
                         "train.batch_size= 4", "train.iterations= -0", "log.every=\t5", "train.seed="};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK_FAILS_WITH(gan_config_override(&cfg, bad[i]), GAN_ERR_CONFIG, "must be an integer");
    CHECK_OK(gan_config_override(&cfg, "train.seed=18000000000000000000"));
    CHECK(cfg.seed == 18000000000000000000ull);
    CHECK_OK(gan_config_override(&cfg, "train.iterations=+7"));
    CHECK(cfg.iterations == 7);
}

/* The run name comes from the file name; one that is no directory of its own becomes "run". A
 * config that is not a regular file (a FIFO: reading it would wait forever) is refused. */
static void check_names_and_fifo(void)
{
    const char *dir = test_temp_dir("test_config");
    const char *names[][2] = {{"...ini", "run"}, {".ini", "run"}, {"..ini", "."}, {"my.run.ini", "my.run"}};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char path[4200];
        snprintf(path, sizeof path, "%s/%s", dir, names[i][0]);
        FILE *f = fopen(path, "w");
        CHECK(f != NULL);
        if (!f)
            continue;
        fputs("[train]\nseed = 1\n", f);
        fclose(f);
        gan_config cfg;
        gan_config_defaults(&cfg);
        CHECK_OK(gan_config_load(&cfg, path));
        const char *want = !strcmp(names[i][1], ".") ? "run" : names[i][1];
        CHECK_MSG(!strcmp(cfg.name, want), "%s: name '%s', want '%s'", names[i][0], cfg.name, want);
    }
    char fifo[4200];
    snprintf(fifo, sizeof fifo, "%s/fifo.ini", dir);
    unlink(fifo);
    CHECK(mkfifo(fifo, 0600) == 0);
    alarm(20); /* a reader that waits on the FIFO fails the test instead of hanging it */
    gan_config cfg;
    gan_config_defaults(&cfg);
    CHECK_FAILS_WITH(gan_config_load(&cfg, fifo), GAN_ERR_IO, "not a regular file");
    CHECK_FAILS_WITH(gan_config_load(&cfg, dir), GAN_ERR_IO, "not a regular file");
    alarm(0);
}

int main(void)
{
    check_storable_values();
    check_integer_text();
    check_names_and_fifo();
    /* The shipped configs. */
    check_shipped_config("dcgan_celeba64", (gan_shape){3, 64, 64}, 2765568);
    check_shipped_config("dcgan_fmnist32", (gan_shape){1, 32, 32}, 660000);
    check_shipped_config("dcgan_cifar32", (gan_shape){3, 32, 32}, 660000);
    check_shipped_config("mlp_mnist", (gan_shape){1, 28, 28}, 1460000);
    check_shipped_config("mlp_cifar32", (gan_shape){3, 32, 32}, 3000000);

    /* The tutorial's D has exactly 2,765,568 parameters; G 3,576,704. */
    {
        char path[4096];
        snprintf(path, sizeof path, "%s/configs/dcgan_celeba64.ini", test_source_dir());
        gan_config cfg;
        gan_config_defaults(&cfg);
        CHECK_OK(gan_config_load(&cfg, path));
        gan_model *g = NULL, *d = NULL;
        CHECK_OK(gan_model_create("G", cfg.generator, (gan_shape){100, 1, 1}, 2, NULL, &g));
        CHECK_OK(gan_model_create("D", cfg.discriminator, (gan_shape){3, 64, 64}, 2, NULL, &d));
        CHECK(g && g->trainable_count == 3576704);
        CHECK(d && d->trainable_count == 2765568);
        CHECK(cfg.adam_g.beta1 == 0.5 && cfg.adam_d.lr == 0.0002 && cfg.seed == 999);
        gan_model_destroy(g);
        gan_model_destroy(d);
    }

    /* Defaults, overrides and the text round trip through gan_config_write. */
    gan_config cfg;
    gan_config_defaults(&cfg);
    CHECK(cfg.batch_size == 128 && cfg.nz == 100 && cfg.noise == GAN_NOISE_NORMAL);
    CHECK_OK(gan_config_override(&cfg, "train.batch_size=64"));
    CHECK_OK(gan_config_override(&cfg, "model.noise=uniform"));
    CHECK_OK(gan_config_override(&cfg, "train.iterations=200"));
    CHECK(cfg.batch_size == 64 && cfg.noise == GAN_NOISE_UNIFORM && cfg.iterations == 200);
    CHECK_FAILS_WITH(gan_config_override(&cfg, "train.batchsize=64"), GAN_ERR_CONFIG, "train.batchsize");
    CHECK_FAILS_WITH(gan_config_override(&cfg, "train.batch_size=abc"), GAN_ERR_CONFIG, "train.batch_size");
    CHECK_FAILS_WITH(gan_config_override(&cfg, "train.batch_size=1"), GAN_ERR_CONFIG, "train.batch_size");
    CHECK_FAILS_WITH(gan_config_override(&cfg, "train.lr_g=-1"), GAN_ERR_CONFIG, "train.lr_g");
    CHECK_FAILS_WITH(gan_config_override(&cfg, "model.noise=gaussian"), GAN_ERR_CONFIG, "normal|uniform");
    CHECK_FAILS_WITH(gan_config_override(&cfg, "batch_size=3"), GAN_ERR_CONFIG, "section.key=value");
    CHECK_FAILS_WITH(gan_config_override(&cfg, "train.seed=-5"), GAN_ERR_CONFIG, "train.seed");

    /* Continuation lines append with a space; inline comments are dropped. */
    gan_config_defaults(&cfg);
    CHECK_OK(gan_config_load_string(&cfg,
                                    "[model]\n"
                                    "generator = convt(8,4,1,0) bn  ; first part\n"
                                    "    relu convt(1,4,2,1) tanh\n"
                                    "discriminator = conv(8,4,2,1) sigmoid\n"
                                    "[train]\nseed = 7\n",
                                    "inline.ini"));
    CHECK_MSG(!strcmp(cfg.generator, "convt(8,4,1,0) bn relu convt(1,4,2,1) tanh"), "generator '%s'",
              cfg.generator);
    CHECK(cfg.seed == 7);

    /* Writing the resolved config and reading it back gives the same config. */
    {
        char text[65536];
        FILE *mem = fmemopen(text, sizeof text, "w");
        CHECK(mem != NULL);
        if (mem) {
            CHECK_OK(gan_config_write(&cfg, mem));
            fclose(mem);
            gan_config again;
            gan_config_defaults(&again);
            CHECK_OK(gan_config_load_string(&again, text, "resolved.ini"));
            CHECK(!strcmp(again.generator, cfg.generator));
            CHECK(again.seed == cfg.seed && again.adam_g.eps == cfg.adam_g.eps &&
                  again.noise == cfg.noise && again.init == cfg.init);
        }
    }

    /* Bad files: unknown key, bad value, bad line, missing file. Each names what is wrong. */
    gan_config_defaults(&cfg);
    CHECK_FAILS_WITH(gan_config_load_string(&cfg, "[train]\nbatch_sise = 4\n", "bad.ini"),
                     GAN_ERR_CONFIG, "train.batch_sise");
    CHECK_FAILS_WITH(gan_config_load_string(&cfg, "[train]\nbatch_size = four\n", "bad.ini"),
                     GAN_ERR_CONFIG, "line 2");
    CHECK_FAILS_WITH(gan_config_load_string(&cfg, "[model]\nthis is not ini\n", "bad.ini"),
                     GAN_ERR_CONFIG, "line 2");
    CHECK_FAILS_WITH(gan_config_load_string(&cfg, "[modle]\nnz = 4\n", "bad.ini"),
                     GAN_ERR_CONFIG, "modle.nz");
    CHECK_FAILS_WITH(gan_config_load(&cfg, "/nonexistent/x.ini"), GAN_ERR_IO, "/nonexistent/x.ini");
    gan_config_defaults(&cfg);
    CHECK_FAILS_WITH(gan_config_validate(&cfg), GAN_ERR_CONFIG, "model.generator");

    return test_finish();
}
