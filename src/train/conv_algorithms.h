/* The CUDA backend's convolution algorithm choices across runs (private to src/train; the text
 * and the cache are gan/conv_choices.h's). A backend without choices (the CPU's) makes these
 * no-ops. */
#ifndef GAN_TRAIN_CONV_ALGORITHMS_H
#define GAN_TRAIN_CONV_ALGORITHMS_H

#include <stdio.h>

#include "gan/backend.h"
#include "gan/error.h"

/* The checkpoint metadata key that holds them. */
#define GAN_CONV_ALGORITHMS_KEY "conv_algorithms"

/* Before the models are planned: gives the backend the user's cache's choices, then, on a
 * resume, those of the checkpoint it resumes from (which win on equal keys), so that the run
 * computes with the algorithms it had. A damaged cache is a warning on `log` (and ignored); a
 * checkpoint whose choices do not parse is refused naming it. */
gan_status conv_algorithms_reuse(gan_backend *be, const char *resume_checkpoint, FILE *log);

/* After the models are planned: writes the choices to `run_dir`/conv_algorithms.txt and merges
 * them into the cache (a cache that cannot be written is a warning). */
gan_status conv_algorithms_keep(gan_backend *be, const char *run_dir, FILE *log);

/* The backend's choices as checkpoint metadata into *text (malloc'd), or NULL where it has
 * none. */
gan_status conv_algorithms_text(gan_backend *be, char **text);

#endif
