/* Stored convolution algorithm choices (gan/conv_choices.h): the text round-trips, a key matches
 * only itself, every malformed field is refused naming the source, line and field, and the
 * cache merges, makes its directory and leaves no temporary file. No GPU needed: this is the
 * part of the CUDA backend's algorithm choice that decides what is reused. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gan/conv_choices.h"
#include "test_util.h"

static gan_conv_choice sample_choice(void)
{
    gan_conv_choice c;
    memset(&c, 0, sizeof c);
    snprintf(c.gpu, sizeof c.gpu, "NVIDIA H200");
    c.cc_major = 9;
    c.cc_minor = 0;
    c.cudnn_version = 91002;
    c.precision = GAN_PRECISION_FP32;
    c.deterministic = true;
    c.geom = (gan_conv_geom){.n = 64, .c_in = 128, .h_in = 16, .w_in = 16, .c_out = 256,
                             .h_out = 8, .w_out = 8, .k_h = 4, .k_w = 4, .stride_h = 2,
                             .stride_w = 2, .pad_h = 1, .pad_w = 1};
    c.pass = GAN_CONV_BACKWARD_DATA;
    c.algo = 1;
    c.math = GAN_CONV_MATH_FMA;
    c.workspace_bytes = 4096;
    c.ms = 0.0213;
    return c;
}

static bool choices_equal(const gan_conv_choice *a, const gan_conv_choice *b)
{
    return !strcmp(a->gpu, b->gpu) && a->cc_major == b->cc_major && a->cc_minor == b->cc_minor &&
           a->cudnn_version == b->cudnn_version && a->precision == b->precision &&
           a->deterministic == b->deterministic && !memcmp(&a->geom, &b->geom, sizeof a->geom) &&
           a->pass == b->pass && a->stored == b->stored && a->algo == b->algo && a->math == b->math &&
           a->layout == b->layout && a->workspace_bytes == b->workspace_bytes && a->ms == b->ms;
}

static void test_round_trip(void)
{
    gan_conv_choices list = {0};
    gan_conv_choice a = sample_choice(), b = sample_choice(), c = sample_choice();
    b.pass = GAN_CONV_FORWARD;
    b.algo = 6;
    b.precision = GAN_PRECISION_TF32;
    b.deterministic = false;
    b.math = GAN_CONV_MATH_TENSOR_OP_ALLOW_CONVERSION;
    b.layout = GAN_CONV_LAYOUT_NHWC;
    b.stored = true; /* a geometry with a tensor stored NHWC: a key of its own */
    c.algo = GAN_CONV_ALGO_SUBPIXEL;
    c.geom.n = 128;
    c.ms = 1.5;
    gan_conv_choice d = sample_choice();
    d.pass = GAN_CONV_BACKWARD_FILTER;
    d.algo = GAN_CONV_ALGO_IM2COL;
    d.geom.c_in = 3;
    d.precision = GAN_PRECISION_BF16;
    d.math = GAN_CONV_MATH_TENSOR_OP;
    CHECK_OK(gan_conv_choices_put(&list, &a));
    CHECK_OK(gan_conv_choices_put(&list, &b));
    CHECK_OK(gan_conv_choices_put(&list, &c));
    CHECK_OK(gan_conv_choices_put(&list, &d));
    CHECK(list.count == 4);

    char *text = NULL;
    CHECK_OK(gan_conv_choices_format(&list, &text));
    CHECK(text && strstr(text, "gpu=\"NVIDIA H200\" cc=9.0 cudnn=91002 precision=fp32 "
                               "deterministic=true n=64 x=128x16x16 y=256x8x8 k=4x4 s=2x2 p=1x1 "
                               "pass=backward-data algo=1 math=fma layout=nchw workspace=4096 ms=0.0213\n"));
    CHECK(text && strstr(text, "precision=tf32 deterministic=false") &&
          strstr(text, "pass=forward stored=true algo=6 math=tensor-op-allow-conversion layout=nhwc workspace="));
    CHECK(text && !strstr(text, "stored=false")); /* written only where true */
    CHECK(text && strstr(text, "algo=subpixel"));
    CHECK(text && strstr(text, "precision=bf16"));
    CHECK(text && strstr(text, "pass=backward-filter algo=im2col math=tensor-op layout=nchw"));
    gan_conv_choices back = {0};
    CHECK_OK(gan_conv_choices_parse(text, "round trip", &back));
    CHECK(back.count == 4);
    for (int i = 0; i < back.count && i < 4; i++)
        CHECK_MSG(choices_equal(&back.items[i], &list.items[i]), "choice %d changed in the text", i);
    free(text);
    gan_conv_choices_free(&back);
    gan_conv_choices_free(&list);
}

static void test_keys(void)
{
    gan_conv_choices list = {0};
    gan_conv_choice a = sample_choice();
    CHECK_OK(gan_conv_choices_put(&list, &a));
    /* The choice fields are not part of the key: a new choice for the same key replaces. */
    gan_conv_choice again = a;
    again.algo = 0;
    again.ms = 9.0;
    CHECK(gan_conv_choices_find(&list, &again) == 0);
    CHECK_OK(gan_conv_choices_put(&list, &again));
    CHECK(list.count == 1 && list.items[0].algo == 0);

    /* Every key field on its own makes another key. */
    gan_conv_choice other[12];
    for (int i = 0; i < 12; i++)
        other[i] = a;
    snprintf(other[0].gpu, sizeof other[0].gpu, "NVIDIA H100 80GB HBM3");
    other[1].cc_major = 8;
    other[2].cc_minor = 6;
    other[3].cudnn_version = 90100;
    other[4].precision = GAN_PRECISION_TF32;
    other[5].deterministic = false;
    gan_conv_choice bf16 = a;
    bf16.precision = GAN_PRECISION_BF16;
    CHECK(gan_conv_choices_find(&list, &bf16) == -1);
    other[6].geom.n = 32;
    other[7].geom.c_in = 64;
    other[8].geom.pad_w = 0;
    other[9].geom.stride_h = 1;
    other[10].pass = GAN_CONV_BACKWARD_FILTER;
    other[11].stored = true;
    for (int i = 0; i < 12; i++)
        CHECK_MSG(gan_conv_choices_find(&list, &other[i]) == -1, "key variant %d matched", i);
    gan_conv_choices_free(&list);
}

/* The text of sample_choice() with `from` replaced by `to` parses with an error naming `field`. */
static void check_refused(const char *from, const char *to, const char *field)
{
    gan_conv_choices list = {0};
    gan_conv_choice a = sample_choice();
    CHECK_OK(gan_conv_choices_put(&list, &a));
    char *text = NULL;
    CHECK_OK(gan_conv_choices_format(&list, &text));
    gan_conv_choices_free(&list);
    if (!text)
        return;
    char *at = strstr(text, from);
    CHECK_MSG(at != NULL, "'%s' is not in the text", from);
    if (!at) {
        free(text);
        return;
    }
    size_t bytes = strlen(text) + strlen(to) + 1;
    char *bad = malloc(bytes);
    snprintf(bad, bytes, "%.*s%s%s", (int)(at - text), text, to, at + strlen(from));
    char needle[96];
    snprintf(needle, sizeof needle, "field %s", field);
    CHECK_FAILS_WITH(gan_conv_choices_parse(bad, "choices.txt", &list), GAN_ERR_FORMAT, needle);
    /* The source and the line number (the text has a two-line header). */
    CHECK_MSG(strstr(gan_error_message(), "choices.txt line 3") != NULL, "'%s' -> '%s': %s", from,
              to, gan_error_message());
    free(bad);
    free(text);
    gan_conv_choices_free(&list);
}

static void test_malformed(void)
{
    check_refused("gpu=\"NVIDIA H200\"", "gpu=NVIDIA", "gpu");
    check_refused("gpu=\"NVIDIA H200\"", "gpu=\"\"", "gpu");
    check_refused("NVIDIA H200", "NVIDIA\tH200", "gpu");
    check_refused("cc=9.0", "cc=9", "cc");
    check_refused("cc=9.0", "cc=9.x", "cc");
    check_refused("cudnn=91002", "cudnn=-1", "cudnn");
    check_refused("cudnn=91002", "cudnn=99999999999999999999999", "cudnn");
    check_refused("precision=fp32", "precision=fp16", "precision");
    check_refused("deterministic=true", "deterministic=yes", "deterministic");
    check_refused("n=64", "n=0", "n");
    check_refused("x=128x16x16", "x=128x16", "x");
    check_refused("x=128x16x16", "x=128x16x16x1", "x");
    check_refused("y=256x8x8", "y=256x8xx8", "y");
    check_refused("k=4x4", "k=4", "k");
    check_refused("s=2x2", "s=0x2", "s");
    check_refused("p=1x1", "p=-1x1", "p");
    check_refused("pass=backward-data", "pass=backward", "pass");
    check_refused("algo=1", "algo=64", "algo");
    check_refused("algo=1", "algo=one", "algo");
    check_refused("math=fma", "math=tf32", "math");
    check_refused("layout=nchw", "layout=nhcw", "layout");
    check_refused("layout=nchw", "layout=nhwc", "layout"); /* fp32 runs in NCHW */
    check_refused("precision=fp32", "precision=bf16", "layout"); /* bf16's cuDNN passes in NHWC */
    check_refused("algo=1 math=fma layout=nchw", "algo=subpixel math=fma layout=nhwc", "layout");
    check_refused(" layout=nchw", " layout=", "layout");
    check_refused("workspace=4096", "workspace=4k", "workspace");
    check_refused("ms=0.0213", "ms=nan", "ms");
    check_refused("ms=0.0213", "ms=0.0213 extra=1", "ms");
    check_refused(" cc=9.0", "  cc=9.0", "cc");            /* two spaces */
    check_refused(" cc=9.0 cudnn=91002", " cudnn=91002 cc=9.0", "cc"); /* order */
    check_refused(" pass=backward-data algo=1", " pass=forward algo=subpixel", "algo");
    check_refused(" pass=backward-data algo=1", " pass=backward-data algo=im2col", "algo");
    check_refused("algo=1", "algo=im2co", "algo");
    check_refused(" pass=backward-data", " pass=backward-data stored=false", "stored"); /* written only where true */
    check_refused(" pass=backward-data", " pass=backward-data stored=yes", "stored");
    check_refused(" pass=backward-data", " pass=backward-data stored=true", "stored"); /* with layout=nchw */
    check_refused(" pass=backward-data algo=1 math=fma layout=nchw",
                  " pass=backward-data stored=true algo=subpixel math=fma layout=nchw", "stored");

    /* Comments, empty lines and CRLF are fine; a NUL ends the text. */
    gan_conv_choices list = {0};
    CHECK_OK(gan_conv_choices_parse("# only a comment\n\n\r\n", "empty", &list));
    CHECK(list.count == 0);
    gan_conv_choices_free(&list);
}

/* Lines written before the layout field existed: bf16's cuDNN passes ran in NHWC, the rest
 * (forms of ours included) in NCHW. */
static void test_without_layout(void)
{
    static const char text[] =
        "gpu=\"NVIDIA H200\" cc=9.0 cudnn=91002 precision=bf16 deterministic=true n=64 x=3x64x64 "
        "y=64x32x32 k=4x4 s=2x2 p=1x1 pass=forward algo=1 math=default workspace=0 ms=0.01\n"
        "gpu=\"NVIDIA H200\" cc=9.0 cudnn=91002 precision=bf16 deterministic=true n=64 x=3x64x64 "
        "y=64x32x32 k=4x4 s=2x2 p=1x1 pass=backward-filter algo=im2col math=tensor-op workspace=0 ms=0.01\n"
        "gpu=\"NVIDIA H200\" cc=9.0 cudnn=91002 precision=tf32 deterministic=true n=64 x=3x64x64 "
        "y=64x32x32 k=4x4 s=2x2 p=1x1 pass=forward algo=1 math=tensor-op workspace=0 ms=0.01\n";
    gan_conv_choices list = {0};
    CHECK_OK(gan_conv_choices_parse(text, "old", &list));
    CHECK(list.count == 3);
    if (list.count == 3) {
        CHECK(list.items[0].layout == GAN_CONV_LAYOUT_NHWC);
        CHECK(list.items[1].layout == GAN_CONV_LAYOUT_NCHW);
        CHECK(list.items[2].layout == GAN_CONV_LAYOUT_NCHW);
    }
    gan_conv_choices_free(&list);
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

static void test_cache(void)
{
    const char *tmp = test_temp_dir("test_conv_choices");
    char dir[1024], path[1200], expect[1200];
    snprintf(dir, sizeof dir, "%s/cache", tmp);

    setenv("GAN_CACHE_DIR", dir, 1);
    CHECK(gan_conv_choices_cache_path(path, sizeof path));
    snprintf(expect, sizeof expect, "%s/conv_algorithms.txt", dir);
    CHECK(!strcmp(path, expect));
    setenv("GAN_CACHE_DIR", "off", 1);
    CHECK(!gan_conv_choices_cache_path(path, sizeof path));
    setenv("GAN_CACHE_DIR", "", 1);
    CHECK(!gan_conv_choices_cache_path(path, sizeof path));
    unsetenv("GAN_CACHE_DIR");
    setenv("XDG_CACHE_HOME", "/xdg", 1);
    CHECK(gan_conv_choices_cache_path(path, sizeof path) && !strcmp(path, "/xdg/gan/conv_algorithms.txt"));
    setenv("XDG_CACHE_HOME", "relative", 1); /* the XDG spec: relative paths are ignored */
    setenv("HOME", "/home/someone", 1);
    CHECK(gan_conv_choices_cache_path(path, sizeof path) &&
          !strcmp(path, "/home/someone/.cache/gan/conv_algorithms.txt"));
    char small[8];
    CHECK(!gan_conv_choices_cache_path(small, sizeof small));

    /* A missing file loads as nothing; store makes the directories (two levels). */
    snprintf(path, sizeof path, "%s/two/levels/conv_algorithms.txt", dir);
    gan_conv_choices list = {0}, loaded = {0};
    CHECK_OK(gan_conv_choices_load(path, &loaded));
    CHECK(loaded.count == 0);
    gan_conv_choice a = sample_choice(), b = sample_choice();
    CHECK_OK(gan_conv_choices_put(&list, &a));
    CHECK_OK(gan_conv_choices_store(path, &list));

    /* A second store merges: the file's other choices stay, equal keys take the new one. */
    gan_conv_choices second = {0};
    b.pass = GAN_CONV_FORWARD;
    a.algo = 0;
    CHECK_OK(gan_conv_choices_put(&second, &b));
    CHECK_OK(gan_conv_choices_put(&second, &a));
    CHECK_OK(gan_conv_choices_store(path, &second));
    CHECK_OK(gan_conv_choices_load(path, &loaded));
    CHECK(loaded.count == 2);
    int at = gan_conv_choices_find(&loaded, &a);
    CHECK(at >= 0 && loaded.items[at].algo == 0);
    CHECK(gan_conv_choices_find(&loaded, &b) >= 0);

    /* No temporary file is left beside it. */
    char tmp_path[1300];
    snprintf(tmp_path, sizeof tmp_path, "%s.tmp.%ld", path, (long)getpid());
    CHECK(access(tmp_path, F_OK) != 0);

    /* A damaged file is refused naming it, and store does not overwrite it blindly. */
    write_file(path, "gpu=\"x\" cc=oops\n");
    gan_conv_choices_free(&loaded);
    CHECK_FAILS_WITH(gan_conv_choices_load(path, &loaded), GAN_ERR_FORMAT, path);
    CHECK_FAILS_WITH(gan_conv_choices_store(path, &list), GAN_ERR_FORMAT, "line 1");
    /* A directory where the file should be. */
    char as_dir[1200];
    snprintf(as_dir, sizeof as_dir, "%s/a_directory", dir);
    mkdir(as_dir, 0777);
    CHECK_FAILS_WITH(gan_conv_choices_load(as_dir, &loaded), GAN_ERR_IO, "a_directory");
    gan_conv_choices_free(&loaded);
    gan_conv_choices_free(&second);
    gan_conv_choices_free(&list);
}

int main(void)
{
    test_round_trip();
    test_keys();
    test_malformed();
    test_without_layout();
    test_cache();
    return test_finish();
}
