/* The CUDA backend's convolution algorithm choices across runs: the user's cache, the run
 * directory's conv_algorithms.txt and the checkpoints' metadata (conv_algorithms.h). */
#include <stdlib.h>
#include <string.h>

#include "gan/checkpoint.h"
#include "gan/conv_choices.h"
#include "gan/file_atomic.h"
#include "train/conv_algorithms.h"

gan_status conv_algorithms_reuse(gan_backend *be, const char *resume_checkpoint, FILE *log)
{
    if (!be->conv_choices_import)
        return GAN_OK;
    gan_conv_choices_reuse_cache(be, log);
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
    char *text = NULL, path[4200];
    gan_status status = GAN_OK;
    GAN_CHECK(be->conv_choices_export(be, &text));
    snprintf(path, sizeof path, "%s/conv_algorithms.txt", run_dir);
    gan_file_piece piece = {text, strlen(text)};
    GAN_CHECK(gan_file_write_atomic(path, &piece, 1));
    gan_conv_choices_update_cache(be, log);
cleanup:
    free(text);
    return status;
}
