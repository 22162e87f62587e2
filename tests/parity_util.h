/* Shared by the PyTorch parity tests: a fixture (tests/fixtures/NAME.safetensors, made by
 * tools/make_fixtures.py) replayed through a model. The tests run on the CPU backend; with
 * GAN_PARITY_DEVICE=cuda in the environment they run the same fixtures on the CUDA backend
 * (skipped, exit 77, where there is none). All model memory is reached through the backend's
 * upload/download, never dereferenced on the host. */
#ifndef GAN_PARITY_UTIL_H
#define GAN_PARITY_UTIL_H

#include "gan/nn.h"
#include "gan/safetensors.h"

/* The backend named by GAN_PARITY_DEVICE (cpu when unset); NULL after a failed check, or with
 * *skip set when CUDA was asked for and cannot be had (the reason printed). */
gan_backend *parity_backend(bool *skip);

/* Opens tests/fixtures/<name>.safetensors; false (and a failed check) if it cannot. */
bool parity_open(const char *name, gan_safetensors *st);
/* The F32 tensor `name`, checked to hold `count` values; NULL (and a failed check) otherwise. */
const float *parity_tensor(const gan_safetensors *st, const char *name, size_t count);
/* Integer metadata `key` (a failed check and `fallback` when missing or not a number). */
long parity_meta_long(const gan_safetensors *st, const char *key, long fallback);

/* Backend memory holding a copy of host[count] (NULL and a failed check on failure). */
float *parity_upload(gan_backend *be, const float *host, size_t count);
/* Copies host[count] into backend memory `dst`. */
void parity_upload_into(gan_backend *be, float *dst, const float *host, size_t count);
/* Host copy (malloc'ed) of backend memory src[count]. */
float *parity_download(gan_backend *be, const float *src, size_t count);
/* Downloads backend memory got[n] and checks |got - want| <= atol + rtol |want| elementwise,
 * naming `label` and the worst element on failure. */
void parity_check_close(gan_backend *be, const char *label, const float *got, const float *want, size_t n,
                        double rtol, double atol);

/* Every tensor of `st` called "<prefix><param name>" for one of `prefixes` names a parameter or
 * buffer of `m` (gan_model_find_param): no fixture tensor goes unchecked because the model lacks
 * it (a missing ",bias" in the layer text, a shifted module index). */
void parity_check_names(const gan_safetensors *st, gan_model *m, const char *const *prefixes, int prefix_count);

/* Values in [-1, 1) from an integer hash of (index, seed): the same as tools/make_fixtures.py's
 * hash_uniform, so large networks' starting weights need not be stored in fixtures. */
float parity_hash_uniform(uint64_t index, uint64_t seed);
/* DCGAN-like weights from parity_hash_uniform (seed = module index): conv/convt weights uniform
 * with std 0.02, BN weight 1 + the same, biases 0; uploaded into the model. */
void parity_hash_weights(gan_model *m);

#endif
