/* The CUDA backend's convolution algorithm choices across runs: the user's cache, the run
 * directory's conv_algorithms.txt and the checkpoints' metadata (conv_algorithms.h). */
#include <stdlib.h>
#include <string.h>

#include "gan/checkpoint.h"
#include "gan/conv_choices.h"
#include "gan/file_atomic.h"
#include "train/conv_algorithms.h"

/* The cache's choices into the backend; any trouble with the cache is only a warning. */
static void reuse_cache(gan_backend *be, FILE *log)
{
    char path[4096];
    if (!gan_conv_choices_cache_path(path, sizeof path))
        return;
    gan_conv_choices list = {0};
    char *text = NULL;
    gan_status status = gan_conv_choices_load(path, &list);
    if (status == GAN_OK && list.count > 0)
        status = gan_conv_choices_format(&list, &text);
    if (status == GAN_OK && list.count > 0)
        status = be->conv_choices_import(be, text, path);
    if (status != GAN_OK && log)
        fprintf(log, "warning: convolution algorithm cache not used: %s (delete it to let gan "
                     "rebuild it)\n",
                gan_error_message());
    free(text);
    gan_conv_choices_free(&list);
}

gan_status conv_algorithms_reuse(gan_backend *be, const char *resume_checkpoint, FILE *log)
{
    if (!be->conv_choices_import)
        return GAN_OK;
    reuse_cache(be, log);
    if (!resume_checkpoint || !resume_checkpoint[0])
        return GAN_OK;
    gan_checkpoint ck;
    GAN_TRY(gan_checkpoint_open(resume_checkpoint, &ck));
    const char *text = gan_checkpoint_text_of(&ck, GAN_CONV_ALGORITHMS_KEY);
    char source[4200];
    snprintf(source, sizeof source, "%s (metadata %s)", resume_checkpoint, GAN_CONV_ALGORITHMS_KEY);
    gan_status status = text ? be->conv_choices_import(be, text, source) : GAN_OK;
    gan_checkpoint_close(&ck);
    return status;
}

gan_status conv_algorithms_text(gan_backend *be, char **text)
{
    *text = NULL;
    return be->conv_choices_export ? be->conv_choices_export(be, text) : GAN_OK;
}

gan_status conv_algorithms_keep(gan_backend *be, const char *run_dir, FILE *log)
{
    if (!be->conv_choices_export)
        return GAN_OK;
    char *text = NULL, path[4200], cache[4096];
    gan_conv_choices list = {0};
    gan_status status = GAN_OK;
    GAN_CHECK(be->conv_choices_export(be, &text));
    GAN_CHECK(gan_conv_choices_parse(text, "the backend's choices", &list));
    snprintf(path, sizeof path, "%s/conv_algorithms.txt", run_dir);
    gan_file_piece piece = {text, strlen(text)};
    GAN_CHECK(gan_file_write_atomic(path, &piece, 1));
    if (list.count > 0 && gan_conv_choices_cache_path(cache, sizeof cache) &&
        gan_conv_choices_store(cache, &list) != GAN_OK && log)
        fprintf(log, "warning: convolution algorithm cache not updated: %s\n", gan_error_message());
cleanup:
    gan_conv_choices_free(&list);
    free(text);
    return status;
}
