/* The process group of a data-parallel run (docs/DESIGN.md "Data parallel"): `mpirun -np N gan train`
 * (or Slurm's srun with PMIx) starts N ranks that train one run together. This module is the only
 * code that calls MPI (src/dist/dist.c): it starts MPI when a launcher started the process, tells
 * the rest of gan the world size, its rank and its place on the machine, and offers the few host
 * collectives the run and the backends need. Started any other way, or built without MPI, the
 * group is one rank and nothing here calls MPI.
 *
 * The math's collectives go through the backend's op table (allreduce_sum, allreduce_sum_f64 in
 * gan/backend.h): the CPU backend calls the host all-reduces below, the CUDA backend NCCL on its
 * stream (NCCL's unique id broadcast with gan_dist_broadcast). */
#ifndef GAN_DIST_H
#define GAN_DIST_H

#include <stdbool.h>
#include <stddef.h>

#include "gan/error.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct gan_dist {
    int world_size;  /* ranks in the run: 1 unless a launcher started several */
    int rank;        /* this process, 0 .. world_size - 1; rank 0 writes the run's files */
    int local_size;  /* ranks on this machine (MPI_Comm_split_type SHARED) */
    int local_rank;  /* this rank among them: chooses its GPU */
    /* The data-parallel path runs: world_size > 1, or GAN_DIST_FORCE=1 with one rank (a test of
     * the collectives' path without a launcher: on CUDA a one-rank NCCL communicator). False:
     * the trainer makes no collective call at all, exactly as a build without MPI. */
    bool active;
    bool mpi;        /* MPI was started (a launcher started this process): end with
                        gan_dist_finalize or gan_dist_abort */
} gan_dist;

/* Whether this build has MPI (CMake's GAN_MPI). */
bool gan_dist_built_with_mpi(void);
/* One line for `gan info`: the MPI library ("built with Open MPI v4.1.4, ...: mpirun -np N gan
 * train"), or that this build has none. */
void gan_dist_library_version(char *text, size_t bytes);

/* The group this process belongs to: MPI's world when a launcher started it (the environment of
 * mpirun, srun with PMIx or MPICH's hydra says so), otherwise one rank. Refuses a process that a
 * launcher started as one of several when this build has no MPI (it would train alone, unaware of
 * the others). Call once, before any other thread starts. */
gan_status gan_dist_init(int *argc, char ***argv, gan_dist *out);
/* The one-rank group of a process not started by a launcher (what gan_dist_init gives then,
 * without looking at the environment). */
gan_dist gan_dist_single(void);
/* The end of a run that succeeded on every rank (MPI_Finalize; nothing without MPI). */
void gan_dist_finalize(gan_dist *dist);
/* The end of a failed run on several ranks: MPI_Abort, which makes mpirun stop every rank (a
 * rank that finalised instead would leave the others waiting in a collective forever). With
 * `wait_for_rank0`, this rank's failure is rank 0's too and rank 0 reports it: this rank waits a
 * few seconds for rank 0's abort to end it, so that the message is printed once, then aborts
 * anyway. Without MPI: exit(exit_code). */
void gan_dist_abort(const gan_dist *dist, int exit_code, bool wait_for_rank0)
#if defined(__GNUC__)
    __attribute__((noreturn))
#endif
    ;

/* Threads per rank (OpenMP and OpenBLAS): unless the user set OMP_NUM_THREADS, the cores of the
 * machine divided by the ranks on it (never below 1), and no more than the cores the launcher
 * bound this rank to. Sets them (omp_set_num_threads, OPENBLAS_NUM_THREADS) when MPI started the
 * process and describes the choice in `note` (for the log); does nothing otherwise. */
void gan_dist_set_threads(const gan_dist *dist, char *note, size_t note_bytes);

/* ---- collectives over the group, on host memory; every rank calls them in the same order ---- */
/* data[count] = the sum over ranks, in place; the same bits on every rank. */
gan_status gan_dist_allreduce_sum_float(const gan_dist *dist, float *data, size_t count);
gan_status gan_dist_allreduce_sum_double(const gan_dist *dist, double *data, size_t count);
/* data[bytes] = rank `root`'s */
gan_status gan_dist_broadcast(const gan_dist *dist, void *data, size_t bytes, int root);
/* all[world_size] = every rank's `mine`, in rank order */
gan_status gan_dist_allgather_double(const gan_dist *dist, double mine, double *all);
/* true on every rank when `mine` is true on any */
gan_status gan_dist_any(const gan_dist *dist, bool mine, bool *any);
gan_status gan_dist_barrier(const gan_dist *dist);
/* A barrier whose waiting ranks sleep (1 ms at a time) instead of spinning as MPI's do, so that
 * they leave the cores to a rank that measures alone (gan bench train's one-rank reference). */
gan_status gan_dist_barrier_sleeping(const gan_dist *dist);

/* Failure across the group. Every rank passes the status of the step it just ran (the same step
 * on every rank); all learn whether any failed. GAN_OK when none did. Otherwise every rank
 * returns a failure: a failed rank its own (message unchanged), the others one naming the rank
 * that failed. Exactly one group of ranks reports: rank 0 when it failed (the others' failures
 * are then its own: the same bad config or data path), else each failed rank; the rest stay
 * silent (gan_dist_should_report). With one rank: `mine` itself. */
gan_status gan_dist_agree(const gan_dist *dist, gan_status mine);
/* Marks the current failure as one every rank meets at the same point (a non-finite loss read
 * after the all-reduce): rank 0 reports it, the others stay silent. */
void gan_dist_note_shared_failure(const gan_dist *dist);
/* Whether this rank prints the current failure (see gan_dist_agree); with one rank always. */
bool gan_dist_should_report(const gan_dist *dist);
/* Whether every rank met the current failure (its message then need not name a rank). */
bool gan_dist_failure_shared(const gan_dist *dist);

#ifdef __cplusplus
}
#endif
#endif
