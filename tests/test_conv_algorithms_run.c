/* The convolution algorithm choices across runs (src/train/conv_algorithms.c), on a CPU backend
 * given the CUDA backend's two choice ops: a run writes its choices to the run directory, the
 * user's cache and every checkpoint; a later run gets the cache's, a resume the checkpoint's
 * after the cache's; a damaged cache is a warning, damaged choices in a checkpoint an error that
 * names it; a backend without the ops (the CPU's) writes nothing. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gan/backend.h"
#include "gan/checkpoint.h"
#include "gan/conv_choices.h"
#include "gan/train.h"
#include "test_util.h"
#include "train/conv_algorithms.h"

static const char *CHOICE_A =
    "gpu=\"NVIDIA H200\" cc=9.0 cudnn=91002 precision=fp32 deterministic=true n=64 x=128x16x16 "
    "y=256x8x8 k=4x4 s=2x2 p=1x1 pass=backward-data algo=1 math=fma layout=nchw workspace=0 ms=0.02\n";
static const char *CHOICE_B =
    "gpu=\"NVIDIA H200\" cc=9.0 cudnn=91002 precision=fp32 deterministic=true n=64 x=128x16x16 "
    "y=256x8x8 k=4x4 s=2x2 p=1x1 pass=forward algo=6 math=fma layout=nchw workspace=1024 ms=0.01\n";

/* What the fake backend exports, and the texts imported into it with their sources. */
static const char *exported;
static char imported[4][4096], sources[4][4200];
static int import_count;

static gan_status fake_export(gan_backend *be, char **text)
{
    (void)be;
    *text = strdup(exported);
    return *text ? GAN_OK : gan_error(GAN_ERR_NOMEM, "out of memory");
}

/* As the CUDA backend's: the text must parse. */
static gan_status fake_import(gan_backend *be, const char *text, const char *source)
{
    (void)be;
    gan_conv_choices list = {0};
    gan_status status = gan_conv_choices_parse(text, source, &list);
    gan_conv_choices_free(&list);
    GAN_TRY(status);
    if (import_count < 4) {
        snprintf(imported[import_count], sizeof imported[0], "%s", text);
        snprintf(sources[import_count], sizeof sources[0], "%s", source);
    }
    import_count++;
    return GAN_OK;
}

static char *read_all(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = calloc(1, 1 << 16);
    size_t n = fread(buf, 1, (1 << 16) - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static const char *CONFIG =
    "[model]\nnz = 4\n"
    "generator = linear(8,bias) relu linear(2,bias) reshape(2,1,1)\n"
    "discriminator = flatten linear(8,bias) lrelu(0.2) linear(1,bias) sigmoid\n"
    "[data]\nformat = toy\nchannels = 2\nimage_size = 1\n"
    "[train]\nbatch_size = 8\nseed = 3\n";

int main(void)
{
    gan_backend *cpu = NULL;
    CHECK_OK(gan_cpu_backend_create(NULL, &cpu));
    if (!cpu)
        return test_finish();
    const char *dir = test_temp_dir("test_conv_algorithms_run");
    char cache_dir[4200], cache[4300], run_dir[4200], path[4400], ckpt[4400];
    snprintf(cache_dir, sizeof cache_dir, "%s/cache", dir);
    snprintf(cache, sizeof cache, "%s/conv_algorithms.txt", cache_dir);
    snprintf(run_dir, sizeof run_dir, "%s/run", dir);
    snprintf(ckpt, sizeof ckpt, "%s/ckpt.safetensors", run_dir);
    CHECK(mkdir(run_dir, 0777) == 0 || access(run_dir, F_OK) == 0);
    unlink(cache);
    setenv("GAN_CACHE_DIR", cache_dir, 1);

    /* The CPU backend has no choices: nothing is written, nothing read. */
    CHECK(!cpu->conv_choices_export && !cpu->conv_choices_import);
    CHECK_OK(conv_algorithms_keep(cpu, run_dir, stderr));
    snprintf(path, sizeof path, "%s/conv_algorithms.txt", run_dir);
    CHECK(access(path, F_OK) != 0 && access(cache, F_OK) != 0);
    char *text = (char *)"untouched";
    CHECK_OK(conv_algorithms_text(cpu, &text));
    CHECK(text == NULL);

    gan_backend fake = *cpu;
    fake.conv_choices_export = fake_export;
    fake.conv_choices_import = fake_import;

    /* A first run: an empty cache gives nothing; its choice goes to the run and the cache. */
    exported = CHOICE_A;
    CHECK_OK(conv_algorithms_reuse(&fake, NULL, stderr));
    CHECK(import_count == 0);
    CHECK_OK(conv_algorithms_keep(&fake, run_dir, stderr));
    char *in_run = read_all(path), *in_cache = read_all(cache);
    CHECK_MSG(in_run && strstr(in_run, CHOICE_A), "run dir conv_algorithms.txt: %s", in_run ? in_run : "(none)");
    CHECK_MSG(in_cache && strstr(in_cache, CHOICE_A), "cache: %s", in_cache ? in_cache : "(none)");
    free(in_run);
    free(in_cache);

    /* A rerun gets the cache's choices, named by the cache's path. */
    CHECK_OK(conv_algorithms_reuse(&fake, NULL, stderr));
    CHECK(import_count == 1 && strstr(imported[0], CHOICE_A) && !strcmp(sources[0], cache));

    /* A checkpoint carries the choices; a resume imports the cache's, then the checkpoint's. */
    gan_config cfg;
    gan_config_defaults(&cfg);
    CHECK_OK(gan_config_load_string(&cfg, CONFIG, "algorithms.ini"));
    gan_data_source *data = NULL;
    gan_trainer *t = NULL;
    CHECK_OK(gan_toy_ring_source_open(8, cfg.seed, 2.0, 0.1, 100, &data));
    CHECK_OK(gan_trainer_create(&cfg, &fake, data, NULL, &t));
    exported = CHOICE_B; /* what this run's backend chose differs from the cache */
    CHECK_OK(gan_trainer_save_checkpoint(t, data, 0, ckpt));
    gan_checkpoint ck;
    CHECK_OK(gan_checkpoint_open(ckpt, &ck));
    const char *stored = gan_checkpoint_text_of(&ck, GAN_CONV_ALGORITHMS_KEY);
    CHECK_MSG(stored && !strcmp(stored, CHOICE_B), "checkpoint metadata: %s", stored ? stored : "(none)");
    gan_checkpoint_close(&ck);
    import_count = 0;
    CHECK_OK(conv_algorithms_reuse(&fake, ckpt, stderr));
    CHECK(import_count == 2);
    CHECK(strstr(imported[0], CHOICE_A) && !strcmp(sources[0], cache));
    CHECK(strstr(imported[1], CHOICE_B) && strstr(sources[1], ckpt) &&
          strstr(sources[1], "conv_algorithms"));

    /* Damaged choices in a checkpoint: refused naming it. */
    gan_checkpoint_model models[1] = {{"G", t->g, false, NULL}};
    gan_checkpoint_counter counter = {"iteration", true, {0}};
    gan_checkpoint_text bad_text = {GAN_CONV_ALGORITHMS_KEY, "gpu=\"x\" cc=nine\n"};
    char bad_ckpt[4400];
    snprintf(bad_ckpt, sizeof bad_ckpt, "%s/bad.safetensors", run_dir);
    CHECK_OK(gan_checkpoint_write(bad_ckpt, &cfg, models, 1, &counter, 1, &bad_text, 1));
    CHECK_FAILS_WITH(conv_algorithms_reuse(&fake, bad_ckpt, stderr), GAN_ERR_FORMAT, bad_ckpt);

    /* A damaged cache: a warning naming it, and the run goes on without it. */
    FILE *f = fopen(cache, "w");
    CHECK(f != NULL);
    if (f) {
        fputs("not a choice\n", f);
        fclose(f);
    }
    char *log_text = NULL;
    size_t log_bytes = 0;
    FILE *log = open_memstream(&log_text, &log_bytes);
    import_count = 0;
    CHECK_OK(conv_algorithms_reuse(&fake, NULL, log));
    fclose(log);
    CHECK(import_count == 0);
    CHECK_MSG(log_text && strstr(log_text, "warning") && strstr(log_text, cache), "log: %s",
              log_text ? log_text : "(none)");
    free(log_text);

    gan_trainer_destroy(t);
    data->close(data);
    cpu->destroy(cpu);
    return test_finish();
}
