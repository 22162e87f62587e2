/* The benchmarks of `gan bench ops|train|data|fid` (src/bench/NAME.c, dispatched by
 * src/cli/cmd_bench.c) and what they share (util.c): statistics (time with gan_now_s), the machine's peak measured in
 * the same run, the machine description, configs by name, and the geometry and FLOP count of a
 * model's layers. The comparison scripts and recorded results stay in bench/ at the top. */
#ifndef GAN_BENCH_BENCH_H
#define GAN_BENCH_BENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "gan/backend.h"
#include "gan/clock.h"
#include "gan/config.h"
#include "gan/dist.h"
#include "gan/nn.h"
#include "gan/train.h"

/* Entry points; argv[0] is the name printed in the command that reproduces the run
 * ("gan bench train"). Each returns the process exit status. */
int gan_bench_ops(int argc, char **argv);
int gan_bench_train(int argc, char **argv);
int gan_bench_data(int argc, char **argv);
int gan_bench_fid(int argc, char **argv);

/* `gan bench train` under mpirun (train_dist.c): the data-parallel benchmark of CONFIG on the
 * process group `dist`, with gan bench train's options; returns the exit status (the caller ends
 * the group). */
int bench_train_dist(const char *prog, const gan_dist *dist, const char *config, const char *const *overrides,
                     int override_count, const char *device, int iterations, int warmup, int rounds, double seconds);
/* train.c's pieces train_dist.c shares: an in-memory source of random batches of `batch` samples
 * (closed with its close), and `count` steps timed with the backend synchronised at both ends. */
gan_status bench_synthetic_source_open(const gan_config *cfg, int batch, gan_data_source **out);
gan_status bench_timed_steps(gan_trainer *t, int count, double *seconds);

/* Sorts `values` in place; returns the median (mean of the middle two for an even count). */
double bench_median(double *values, int count);
double bench_min(const double *values, int count);
double bench_max(const double *values, int count);

/* The backend for `device` (auto|cpu|cuda|cuda:N) with the options `cfg` asks for
 * (train.precision, train.deterministic). Prints one line on stdout when auto fell back to the
 * CPU, saying why. */
gan_status bench_open_backend(const char *device, const gan_config *cfg, gan_backend **out);
/* One backend serves every config of a run: refuses a config that asks for other options. */
gan_status bench_check_options(const gan_backend *be, const gan_config *cfg);

/* The peak the percentages are relative to, measured now:
 *   cpu: gan_blas_measure_sgemm_gflops(2048, 3), as `gan info` does (BLAS threads: all cores);
 *   cuda: the backend's own gemm (cuBLAS SGEMM in the backend's precision) on 8192^3, best of 3.
 * `what` receives a short description ("sgemm 2048^3 (OpenBLAS Haswell, 2 threads)"). */
gan_status bench_measure_gemm_peak(gan_backend *be, double *gflops, char *what, size_t what_bytes);
/* The backend's copy op on 256 MiB, best of 5, counting read + write bytes: the reference for
 * the memory-bound ops' GB/s (cpu: memmove on one thread; cuda: cudaMemcpyAsync device to device). */
gan_status bench_measure_copy_gbps(gan_backend *be, double *gbps);

/* Prints the machine (CPU model, cores, OpenMP threads, the BLAS and its core; the GPU when the
 * backend is cuda), each line starting with `prefix`. */
void bench_print_machine(gan_backend *be, FILE *out, const char *prefix);

/* A config by path ("configs/dcgan_celeba64.ini") or by name ("dcgan_celeba64": looked up as
 * configs/NAME.ini under the working directory, then under the source tree). Loads it over the
 * defaults and applies the overrides (section.key=value). */
gan_status bench_load_config(const char *name_or_path, const char *const *overrides, int override_count,
                             gan_config *cfg, char *path, size_t path_bytes);

/* The convolution that computes a conv or convt layer (for convt, the convolution whose
 * backward-data it is: x = the layer's output, y = its input, see src/nn/convt.c). */
gan_conv_geom bench_layer_conv_geom(const gan_layer_info *layer);
/* FLOPs of one pass (forward, backward-data or backward-filter: the three cost the same) of a
 * conv, convt or linear layer: 2 N C_out H_out W_out C_in kH kW of its convolution, 2 N in out of
 * a linear; 0 for every other layer. */
double bench_layer_pass_flops(const gan_layer_info *layer);
/* The FLOPs of the conv/convt/linear passes one training iteration runs (see bench_train.c). */
double bench_iteration_flops(const gan_model *g, const gan_model *d, int d_steps);

#endif
