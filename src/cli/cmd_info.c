/* gan info: what this build is and what this machine gives it. */
#include <omp.h>
#include <stdio.h>
#include <string.h>

#include "cli/commands.h"
#include "gan/blas.h"
#include "gan/cuda_backend.h"
#include "gan/dist.h"

static void print_version(const char *what, size_t v)
{
    /* cudnnGetVersion (9.x): major * 10000 + minor * 100 + patch */
    printf("  %-22s %zu.%zu.%zu\n", what, v / 10000, (v / 100) % 100, v % 100);
}

int gan_cmd_info(int argc, char **argv)
{
    static const char usage[] = "usage: gan info [--no-bench]\n"
                                "  version, build, BLAS and its core, threads, sgemm GFLOP/s (skipped with\n"
                                "  --no-bench), CUDA runtime, driver, cuDNN, cuBLAS and device\n";
    bool fast = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            fputs(usage, stdout);
            return 0;
        } else if (!strcmp(argv[i], "--no-bench")) {
            fast = true;
        } else {
            fprintf(stderr, "gan info: unknown argument '%s'\n", argv[i]);
            fputs(usage, stderr);
            return 2;
        }
    }
    printf("gan %s\n", GAN_VERSION);
    printf("build\n");
    printf("  %-22s %s\n", "build type", GAN_BUILD_TYPE);
    printf("  %-22s %s\n", "compiler", __VERSION__);
#ifdef GAN_HAVE_CUDA
    printf("  %-22s %s\n", "CUDA backend", "built (cuDNN, cuBLAS, kernels/) as libgan_cuda.so, loaded on demand");
#else
    printf("  %-22s %s\n", "CUDA backend", "not built (configure with nvcc and cuDNN present)");
#endif
#ifdef GAN_SANITIZE_BUILD
    printf("  %-22s %s\n", "sanitizers", "address, undefined");
#endif
    char mpi[256];
    gan_dist_library_version(mpi, sizeof mpi);
    printf("  %-22s %s\n", "MPI", mpi);

    printf("cpu backend\n");
    printf("  %-22s %d\n", "OpenMP threads", omp_get_max_threads());
    gan_status status = gan_blas_init();
    gan_blas_info blas;
    if (status == GAN_OK)
        status = gan_blas_get_info(&blas);
    if (status != GAN_OK) {
        fprintf(stderr, "gan info: BLAS: %s\n", gan_error_message());
        return 1;
    }
    printf("  %-22s %s\n", "BLAS library", blas.library);
    printf("  %-22s %s\n", "BLAS config", blas.config);
    printf("  %-22s %s%s%s%s\n", "BLAS core", blas.core,
           blas.coretype_set[0] ? " (OPENBLAS_CORETYPE=" : "", blas.coretype_set,
           blas.coretype_set[0] ? " set by gan from the CPU's features)" : "");
    printf("  %-22s %d\n", "BLAS threads", blas.threads);
    if (blas.note[0])
        printf("  %-22s %s\n", "BLAS note", blas.note);
    if (!fast) {
        double gflops = 0.0;
        status = gan_blas_measure_sgemm_gflops(2048, 3, &gflops);
        if (status != GAN_OK) {
            fprintf(stderr, "gan info: sgemm: %s\n", gan_error_message());
            return 1;
        }
        printf("  %-22s %.1f GFLOP/s (2048^3, best of 3)\n", "sgemm measured", gflops);
    }

    printf("cuda backend\n");
    gan_cuda_versions cuda;
    if (gan_cuda_get_versions(&cuda) == GAN_OK && cuda.built_with_cuda && cuda.module_loaded) {
        printf("  %-22s %d.%d\n", "CUDA runtime", cuda.runtime_version / 1000,
               (cuda.runtime_version % 1000) / 10);
        if (cuda.driver_version)
            printf("  %-22s %d.%d\n", "CUDA driver", cuda.driver_version / 1000,
                   (cuda.driver_version % 1000) / 10);
        print_version("cuDNN (library)", cuda.cudnn_version);
        print_version("cuDNN (headers)", cuda.cudnn_header_version);
        if (cuda.cublas_version)
            printf("  %-22s %d.%d.%d\n", "cuBLAS", cuda.cublas_version / 10000,
                   (cuda.cublas_version / 100) % 100, cuda.cublas_version % 100);
        if (cuda.device_count > 0)
            printf("  %-22s %s (sm_%d%d, %.1f GiB)\n", "device 0", cuda.device_name,
                   cuda.compute_capability_major, cuda.compute_capability_minor,
                   (double)cuda.device_memory_bytes / (1024.0 * 1024.0 * 1024.0));
        if (cuda.note[0])
            printf("  %-22s %s\n", "note", cuda.note);
        printf("  %-22s %s\n", "precisions", "fp32 (default), tf32, bf16 (train.precision, bf16 on sm_80+); "
                                              "train.deterministic = true (default) or false");
    } else {
        printf("  %-22s %s\n", "status", cuda.note[0] ? cuda.note : "not built");
    }
#ifdef GAN_GPU_REPORT
    printf("  %-22s the last run on a GPU is %s (its date and commit: what changed after it is "
           "unverified on hardware)\n", "hardware check", GAN_GPU_REPORT);
#else
    printf("  %-22s unverified on hardware: no GPU report in this tree yet "
           "(tools/gpu-check.sh writes one)\n", "hardware check");
#endif
    return 0;
}
