/* INI strictness: a key given twice in a section (adjacent or not, in one block of the section or
 * two) is refused naming both lines; two adjacent `generator =` lines are two keys, not a
 * continuation; indented continuation lines still append; a NUL byte anywhere (file or text with
 * a length) is refused naming its line; a line longer than inih's buffer is refused naming it. */
#include <stdio.h>
#include <string.h>

#include "gan/config.h"
#include "test_util.h"

static const char *dir;

static void write_file(const char *path, const char *bytes, size_t n)
{
    FILE *f = fopen(path, "wb");
    CHECK(f && fwrite(bytes, 1, n, f) == n);
    if (f)
        fclose(f);
}

static void duplicates(void)
{
    gan_config cfg;
    gan_config_defaults(&cfg);
    CHECK_FAILS_WITH(gan_config_load_string(&cfg, "[model]\nnz = 4\nnoise = normal\nnz = 8\n", "dup.ini"),
                     GAN_ERR_CONFIG, "model.nz is given twice: lines 2 and 4");
    gan_config_defaults(&cfg);
    CHECK_FAILS_WITH(gan_config_load_string(&cfg, "[train]\nseed = 1\nseed = 2\n", "dup.ini"),
                     GAN_ERR_CONFIG, "train.seed is given twice: lines 2 and 3");
    /* the same section in two blocks, names in other letter cases */
    gan_config_defaults(&cfg);
    CHECK_FAILS_WITH(gan_config_load_string(&cfg, "[model]\nnz = 4\n[train]\nseed = 1\n[Model]\nNZ = 5\n",
                                            "dup.ini"),
                     GAN_ERR_CONFIG, "lines 2 and 6");
    /* two adjacent generator = lines: not one stack */
    gan_config_defaults(&cfg);
    CHECK_FAILS_WITH(gan_config_load_string(&cfg,
                                            "[model]\n"
                                            "generator = convt(8,4,1,0) bn relu\n"
                                            "generator = convt(1,4,2,1) tanh\n",
                                            "dup.ini"),
                     GAN_ERR_CONFIG, "model.generator is given twice: lines 2 and 3");
    /* the same, with a continuation line in between */
    gan_config_defaults(&cfg);
    CHECK_FAILS_WITH(gan_config_load_string(&cfg,
                                            "[model]\n"
                                            "generator = convt(8,4,1,0) bn\n"
                                            "    relu\n"
                                            "discriminator = conv(8,4,2,1) sigmoid\n"
                                            "generator = convt(1,4,2,1) tanh\n",
                                            "dup.ini"),
                     GAN_ERR_CONFIG, "lines 2 and 5");
    /* a one-value key continued on an indented line */
    gan_config_defaults(&cfg);
    CHECK_FAILS_WITH(gan_config_load_string(&cfg, "[model]\nnz = 1\n    00\n", "cont.ini"), GAN_ERR_CONFIG,
                     "line 3");
    /* a key that is the same in two sections is two keys */
    gan_config_defaults(&cfg);
    CHECK_OK(gan_config_load_string(&cfg, "[train]\nlr_g = 0.1\nlr_d = 0.2\n[log]\nevery = 3\n", "ok.ini"));
}

static void continuations(void)
{
    gan_config cfg;
    gan_config_defaults(&cfg);
    CHECK_OK(gan_config_load_string(&cfg,
                                    "[model]\n"
                                    "generator = convt(8,4,1,0) bn\n"
                                    "    relu\n"
                                    "\tconvt(1,4,2,1)\n"
                                    "; a comment between\n"
                                    "\n"
                                    "    tanh\n"
                                    "discriminator = conv(8,4,2,1)\n"
                                    "  sigmoid\n",
                                    "cont.ini"));
    CHECK_MSG(!strcmp(cfg.generator, "convt(8,4,1,0) bn relu convt(1,4,2,1) tanh"), "generator '%s'",
              cfg.generator);
    CHECK_MSG(!strcmp(cfg.discriminator, "conv(8,4,2,1) sigmoid"), "discriminator '%s'", cfg.discriminator);
}

static void nul_bytes(void)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/nul.ini", dir);
    static const char text[] = "[model]\nnz = 1\0 00\n";
    write_file(path, text, sizeof text - 1);
    gan_config cfg;
    gan_config_defaults(&cfg);
    CHECK_FAILS_WITH(gan_config_load(&cfg, path), GAN_ERR_CONFIG, "line 2");
    CHECK(cfg.nz != 1);
    CHECK_FAILS_WITH(gan_config_load(&cfg, path), GAN_ERR_CONFIG, "NUL");
    CHECK_FAILS_WITH(gan_config_load(&cfg, path), GAN_ERR_CONFIG, path);
    static const char late[] = "[model]\nnz = 1\n\n[train]\nseed = 5\0\n";
    write_file(path, late, sizeof late - 1);
    CHECK_FAILS_WITH(gan_config_load(&cfg, path), GAN_ERR_CONFIG, "line 5");
    /* text with a length: the NUL is seen too */
    CHECK_FAILS_WITH(gan_config_load_text(&cfg, text, sizeof text - 1, "nul text"), GAN_ERR_CONFIG,
                     "line 2");
    CHECK_OK(gan_config_load_text(&cfg, "[model]\nnz = 7\n", 15, "text"));
    CHECK(cfg.nz == 7);
}

static void long_lines(void)
{
    char text[1024];
    int n = snprintf(text, sizeof text, "[model]\nnz = 4\ngenerator = ");
    while (n < 400)
        n += snprintf(text + n, sizeof text - (size_t)n, "relu ");
    snprintf(text + n, sizeof text - (size_t)n, "tanh\n");
    gan_config cfg;
    gan_config_defaults(&cfg);
    CHECK_FAILS_WITH(gan_config_load_string(&cfg, text, "long.ini"), GAN_ERR_CONFIG, "line 3");
}

int main(void)
{
    dir = test_temp_dir("test_config_strict");
    duplicates();
    continuations();
    nul_bytes();
    long_lines();
    return test_finish();
}
