/* The process group (gan/dist.h): the only file that calls MPI. Without GAN_HAVE_MPI every
 * collective is the one-rank identity. */
#define _GNU_SOURCE /* sched_getaffinity, CPU_COUNT */
#include "gan/dist.h"

#include <limits.h>
#include <omp.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#ifdef GAN_HAVE_MPI
#include <mpi.h>
#endif

/* Whether this rank prints the current failure (gan_dist_agree, gan_dist_note_shared_failure);
 * only the main thread fails a run, and only it reads this. */
static bool report_failure = true;
/* ... and whether every rank met it (then no rank need be named). */
static bool failure_shared = false;

bool gan_dist_built_with_mpi(void)
{
#ifdef GAN_HAVE_MPI
    return true;
#else
    return false;
#endif
}

void gan_dist_library_version(char *text, size_t bytes)
{
#ifdef GAN_HAVE_MPI
    char version[MPI_MAX_LIBRARY_VERSION_STRING] = "";
    int length = 0;
    MPI_Get_library_version(version, &length); /* allowed before MPI_Init */
    version[strcspn(version, ",\n")] = '\0';
    snprintf(text, bytes, "built with %s: mpirun -np N gan train (data parallel)", version);
#else
    snprintf(text, bytes, "not built (configure with libopenmpi-dev present, or -DGAN_MPI=ON): one process");
#endif
}

gan_dist gan_dist_single(void)
{
    const char *force = getenv("GAN_DIST_FORCE");
    bool forced = force && !strcmp(force, "1");
    return (gan_dist){.world_size = 1, .rank = 0, .local_size = 1, .local_rank = 0, .active = forced,
                      .mpi = false};
}

/* The size of the job a launcher started this process in, from its environment: 0 when no
 * launcher started it, -1 when one did without saying how many. OpenMPI's mpirun sets
 * OMPI_COMM_WORLD_SIZE, MPICH's hydra and PMI-2 launchers PMI_SIZE, PMIx launchers (srun
 * --mpi=pmix, prterun) PMIX_RANK. */
static long launched_size(void)
{
    const char *names[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        const char *value = getenv(names[i]);
        if (value && value[0])
            return strtol(value, NULL, 10);
    }
    return getenv("PMIX_RANK") ? -1 : 0;
}

#ifdef GAN_HAVE_MPI
static gan_status mpi_failed(int code, const char *call)
{
    char text[MPI_MAX_ERROR_STRING] = "";
    int length = 0;
    MPI_Error_string(code, text, &length);
    return gan_error(GAN_ERR_BACKEND, "%s failed: %s", call, text);
}
#define MPI_TRY(call)                                  \
    do {                                               \
        int mpi_code_ = (call);                        \
        if (mpi_code_ != MPI_SUCCESS)                  \
            return mpi_failed(mpi_code_, #call);       \
    } while (0)

/* MPI counts are ints: larger arrays go in pieces. */
enum { MPI_CHUNK = 1 << 30 };

static bool uses_mpi(const gan_dist *dist) { return dist && dist->mpi && dist->world_size > 1; }
#endif

gan_status gan_dist_init(int *argc, char ***argv, gan_dist *out)
{
    *out = gan_dist_single();
    long size = launched_size();
    if (size == 0 || size == 1)
        return GAN_OK; /* not launched, or launched alone: the one-rank default */
#ifndef GAN_HAVE_MPI
    (void)argc;
    (void)argv;
    return gan_error(GAN_ERR_UNSUPPORTED,
                     "started by mpirun/srun as one of %ld processes, but this gan was built without "
                     "MPI (install libopenmpi-dev and rebuild with -DGAN_MPI=ON): each would train alone",
                     size);
#else
    int provided = 0;
    /* Only the main thread calls MPI (the loader's threads and OpenMP's never do). */
    MPI_TRY(MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided));
    out->mpi = true;
    /* Failures come back as codes, reported with our message, then MPI_Abort. */
    MPI_TRY(MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN));
    MPI_TRY(MPI_Comm_size(MPI_COMM_WORLD, &out->world_size));
    MPI_TRY(MPI_Comm_rank(MPI_COMM_WORLD, &out->rank));
    MPI_Comm local;
    MPI_TRY(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &local));
    MPI_TRY(MPI_Comm_size(local, &out->local_size));
    MPI_TRY(MPI_Comm_rank(local, &out->local_rank));
    MPI_Comm_free(&local);
    out->active = out->active || out->world_size > 1;
    return GAN_OK;
#endif
}

void gan_dist_finalize(gan_dist *dist)
{
#ifdef GAN_HAVE_MPI
    if (dist && dist->mpi) {
        MPI_Finalize();
        dist->mpi = false;
    }
#else
    (void)dist;
#endif
}

void gan_dist_abort(const gan_dist *dist, int exit_code, bool wait_for_rank0)
{
    fflush(stdout);
    fflush(stderr);
#ifdef GAN_HAVE_MPI
    if (dist && dist->mpi) {
        if (wait_for_rank0 && dist->rank != 0) {
            /* rank 0 prints the message and aborts the job, which ends this rank too */
            struct timespec pause = {0, 100 * 1000 * 1000};
            for (int i = 0; i < 100; i++)
                nanosleep(&pause, NULL);
        }
        MPI_Abort(MPI_COMM_WORLD, exit_code);
    }
#else
    (void)dist;
    (void)wait_for_rank0;
#endif
    exit(exit_code);
}

/* The cores this process may run on (sched_getaffinity), or 0 when unknown. */
static int affinity_cores(void)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof set, &set) != 0)
        return 0;
    return CPU_COUNT(&set);
}

void gan_dist_set_threads(const gan_dist *dist, char *note, size_t note_bytes)
{
    if (note_bytes)
        note[0] = '\0';
    if (!dist || !dist->mpi)
        return;
    const char *user = getenv("OMP_NUM_THREADS");
    if (user && user[0]) {
        snprintf(note, note_bytes, "threads per rank: %d (OMP_NUM_THREADS=%s, set by the user)",
                 omp_get_max_threads(), user);
        return;
    }
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    int local = dist->local_size > 0 ? dist->local_size : 1;
    int threads = cores > 0 ? (int)(cores / local) : 1;
    if (threads < 1)
        threads = 1;
    int bound = affinity_cores();
    char binding[200] = "";
    if (bound > 0 && bound < threads) {
        snprintf(binding, sizeof binding,
                 "; the launcher bound each rank to %d core%s (mpirun --bind-to none, or --map-by "
                 "slot:PE=%d, gives it %d)",
                 bound, bound == 1 ? "" : "s", threads, threads);
        threads = bound;
    }
    omp_set_num_threads(threads);
    char text[32];
    snprintf(text, sizeof text, "%d", threads);
    setenv("OPENBLAS_NUM_THREADS", text, 0); /* read when OpenBLAS is loaded (src/blas.c), later */
    snprintf(note, note_bytes,
             "threads per rank: %d (%ld cores on this machine / %d rank%s on it%s; OMP_NUM_THREADS "
             "overrides)",
             threads, cores, local, local == 1 ? "" : "s", binding);
}

/* ---- collectives ------------------------------------------------------------------------------ */

#ifdef GAN_HAVE_MPI
/* In place, in chunks MPI's int count can hold. */
static gan_status allreduce_sum(const gan_dist *dist, void *data, size_t count, size_t element_bytes,
                                MPI_Datatype type)
{
    if (!uses_mpi(dist))
        return GAN_OK;
    for (size_t done = 0; done < count; done += MPI_CHUNK) {
        size_t part = count - done < MPI_CHUNK ? count - done : MPI_CHUNK;
        MPI_TRY(MPI_Allreduce(MPI_IN_PLACE, (char *)data + done * element_bytes, (int)part, type,
                              MPI_SUM, MPI_COMM_WORLD));
    }
    return GAN_OK;
}
#endif

gan_status gan_dist_allreduce_sum_float(const gan_dist *dist, float *data, size_t count)
{
#ifdef GAN_HAVE_MPI
    return allreduce_sum(dist, data, count, sizeof *data, MPI_FLOAT);
#else
    (void)dist;
    (void)data;
    (void)count;
    return GAN_OK;
#endif
}

gan_status gan_dist_allreduce_sum_double(const gan_dist *dist, double *data, size_t count)
{
#ifdef GAN_HAVE_MPI
    return allreduce_sum(dist, data, count, sizeof *data, MPI_DOUBLE);
#else
    (void)dist;
    (void)data;
    (void)count;
    return GAN_OK;
#endif
}

gan_status gan_dist_broadcast(const gan_dist *dist, void *data, size_t bytes, int root)
{
#ifdef GAN_HAVE_MPI
    if (!uses_mpi(dist))
        return GAN_OK;
    for (size_t done = 0; done < bytes; done += MPI_CHUNK) {
        size_t part = bytes - done < MPI_CHUNK ? bytes - done : MPI_CHUNK;
        MPI_TRY(MPI_Bcast((char *)data + done, (int)part, MPI_BYTE, root, MPI_COMM_WORLD));
    }
#else
    (void)dist;
    (void)data;
    (void)bytes;
    (void)root;
#endif
    return GAN_OK;
}

gan_status gan_dist_allgather_double(const gan_dist *dist, double mine, double *all)
{
#ifdef GAN_HAVE_MPI
    if (uses_mpi(dist)) {
        MPI_TRY(MPI_Allgather(&mine, 1, MPI_DOUBLE, all, 1, MPI_DOUBLE, MPI_COMM_WORLD));
        return GAN_OK;
    }
#else
    (void)dist;
#endif
    all[0] = mine;
    return GAN_OK;
}

gan_status gan_dist_any(const gan_dist *dist, bool mine, bool *any)
{
    *any = mine;
#ifdef GAN_HAVE_MPI
    if (uses_mpi(dist)) {
        int value = mine ? 1 : 0;
        MPI_TRY(MPI_Allreduce(MPI_IN_PLACE, &value, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD));
        *any = value != 0;
    }
#else
    (void)dist;
#endif
    return GAN_OK;
}

gan_status gan_dist_barrier(const gan_dist *dist)
{
#ifdef GAN_HAVE_MPI
    if (uses_mpi(dist))
        MPI_TRY(MPI_Barrier(MPI_COMM_WORLD));
#else
    (void)dist;
#endif
    return GAN_OK;
}

gan_status gan_dist_barrier_sleeping(const gan_dist *dist)
{
#ifdef GAN_HAVE_MPI
    if (!uses_mpi(dist))
        return GAN_OK;
    MPI_Request request;
    MPI_TRY(MPI_Ibarrier(MPI_COMM_WORLD, &request));
    struct timespec pause = {0, 1000 * 1000};
    for (;;) {
        int done = 0;
        MPI_TRY(MPI_Test(&request, &done, MPI_STATUS_IGNORE));
        if (done)
            return GAN_OK;
        nanosleep(&pause, NULL);
    }
#else
    (void)dist;
    return GAN_OK;
#endif
}

/* ---- failure across the group ----------------------------------------------------------------- */

gan_status gan_dist_agree(const gan_dist *dist, gan_status mine)
{
    report_failure = true;
    failure_shared = false;
#ifdef GAN_HAVE_MPI
    if (!uses_mpi(dist))
        return mine;
    /* The lowest failed rank (MIN over failed ? rank : world) and how many failed (SUM). */
    int first = mine != GAN_OK ? dist->rank : dist->world_size, failed = mine != GAN_OK;
    int code = MPI_Allreduce(MPI_IN_PLACE, &first, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    if (code == MPI_SUCCESS)
        code = MPI_Allreduce(MPI_IN_PLACE, &failed, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
    if (code != MPI_SUCCESS) {
        if (mine != GAN_OK)
            return mine; /* our own failure says more than the collective's */
        return mpi_failed(code, "MPI_Allreduce (agreeing on failures)");
    }
    if (first == dist->world_size)
        return GAN_OK;
    failure_shared = failed == dist->world_size;
    /* rank 0 failed: it reports (the others met the same input); else each failed rank does */
    report_failure = mine != GAN_OK && (first != 0 || dist->rank == 0);
    if (mine != GAN_OK)
        return mine;
    return gan_error(GAN_ERR_ARG, "rank %d failed (its message is above)", first);
#else
    (void)dist;
    return mine;
#endif
}

void gan_dist_note_shared_failure(const gan_dist *dist)
{
    report_failure = !dist || !dist->mpi || dist->rank == 0;
    failure_shared = true;
}

bool gan_dist_failure_shared(const gan_dist *dist)
{
    return !dist || !dist->mpi || dist->world_size == 1 || failure_shared;
}

bool gan_dist_should_report(const gan_dist *dist)
{
    return !dist || !dist->mpi || dist->world_size == 1 || report_failure;
}
