/* The CUDA backend, loaded on demand: gan/cuda_backend.h's functions open libgan_cuda.so (the
 * only part of gan linked against cudart, cuBLAS and cuDNN) the first time they are called, so a
 * CPU run maps none of those libraries and gan starts on a machine that has none of them. The
 * module is the file $GAN_CUDA_MODULE names when it is set, else libgan_cuda.so beside the running
 * program, else where this build put it. */
#include "gan/cuda_backend.h"

#include <dlfcn.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef GAN_HAVE_CUDA
static const char NO_CUDA_BUILD[] =
    "this build has no CUDA backend (configured with GAN_CUDA=OFF, or nvcc/cuDNN were not found; "
    "rebuild with -DGAN_CUDA=ON)";
#else
static const char MODULE_NAME[] = "libgan_cuda.so";
#endif

typedef gan_status (*create_fn)(const gan_backend_options *options, gan_backend **out);
typedef gan_status (*versions_fn)(gan_cuda_versions *out);

static struct {
    pthread_once_t once;
    void *handle;
    create_fn create;
    versions_fn versions;
    char why[1024]; /* why it could not be loaded */
} module = {.once = PTHREAD_ONCE_INIT};

#ifdef GAN_HAVE_CUDA
/* dlopen of one candidate path; false (and the reason kept) when it fails. */
static bool try_open(const char *path)
{
    if (!path || !path[0] || access(path, F_OK) != 0)
        return false;
    module.handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!module.handle) {
        snprintf(module.why, sizeof module.why, "%s cannot be loaded: %s", path, dlerror());
        return false;
    }
    module.create = (create_fn)dlsym(module.handle, "gan_cuda_module_backend_create");
    module.versions = (versions_fn)dlsym(module.handle, "gan_cuda_module_get_versions");
    if (!module.create || !module.versions) {
        snprintf(module.why, sizeof module.why, "%s is not gan's CUDA module (entry points missing)", path);
        dlclose(module.handle);
        module.handle = NULL;
        return false;
    }
    return true;
}

static void load(void)
{
    snprintf(module.why, sizeof module.why, "%s was not found (set GAN_CUDA_MODULE to its path)", MODULE_NAME);
    const char *chosen = getenv("GAN_CUDA_MODULE");
    if (chosen && chosen[0]) { /* the user's choice, and nothing else */
        if (access(chosen, F_OK) != 0)
            snprintf(module.why, sizeof module.why, "GAN_CUDA_MODULE=%s: no such file", chosen);
        try_open(chosen);
        return;
    }
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = '\0';
        char *slash = strrchr(exe, '/');
        if (slash) {
            char path[PATH_MAX + 32];
            snprintf(path, sizeof path, "%.*s/%s", (int)(slash - exe), exe, MODULE_NAME);
            if (try_open(path))
                return;
        }
    }
#ifdef GAN_CUDA_MODULE_PATH
    try_open(GAN_CUDA_MODULE_PATH);
#endif
}

#endif

/* The module, or GAN_ERR_UNSUPPORTED saying why not. */
static gan_status loaded(void)
{
#ifndef GAN_HAVE_CUDA
    return gan_error(GAN_ERR_UNSUPPORTED, "%s", NO_CUDA_BUILD);
#else
    pthread_once(&module.once, load);
    if (!module.handle)
        return gan_error(GAN_ERR_UNSUPPORTED, "the CUDA backend is unavailable: %s", module.why);
    return GAN_OK;
#endif
}

gan_status gan_cuda_backend_create(const gan_backend_options *options, gan_backend **out)
{
    if (out)
        *out = NULL;
    GAN_TRY(loaded());
    return module.create(options, out);
}

gan_status gan_cuda_get_versions(gan_cuda_versions *out)
{
    if (!out)
        return gan_error(GAN_ERR_ARG, "gan_cuda_get_versions: no output pointer");
    memset(out, 0, sizeof *out);
#ifndef GAN_HAVE_CUDA
    snprintf(out->note, sizeof out->note, "%s", NO_CUDA_BUILD);
    return GAN_OK;
#else
    if (loaded() != GAN_OK) {
        out->built_with_cuda = true;
        snprintf(out->note, sizeof out->note, "%s", gan_error_message());
        gan_error_clear();
        return GAN_OK;
    }
    GAN_TRY(module.versions(out));
    out->module_loaded = true;
    return GAN_OK;
#endif
}

bool gan_cuda_module_loaded(void) { return module.handle != NULL; }
