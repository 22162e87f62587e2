/* TensorBoard event files (see gan/tb_events.h for the format and the field numbers). */
#include "gan/tb_events.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "gan/protobuf.h"

uint32_t gan_tb_masked_crc(uint32_t crc) { return ((crc >> 15) | (crc << 17)) + 0xa282ead8u; }

/* ---- records --------------------------------------------------------------------------------- */

static void put_le32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

gan_status gan_tb_write_record(FILE *f, const char *name, const void *data, size_t size)
{
    uint8_t header[12], footer[4];
    uint64_t length = size;
    for (int i = 0; i < 8; i++)
        header[i] = (uint8_t)(length >> (8 * i));
    put_le32(header + 8, gan_tb_masked_crc(gan_crc32c(header, 8)));
    put_le32(footer, gan_tb_masked_crc(gan_crc32c(data, size)));
    errno = 0;
    bool written = fwrite(header, 1, sizeof header, f) == sizeof header &&
                   (size == 0 || fwrite(data, 1, size, f) == size) &&
                   fwrite(footer, 1, sizeof footer, f) == sizeof footer;
    int write_errno = errno; /* the failing fwrite's reason, before fflush can change it */
    bool flushed = fflush(f) == 0;
    if (!written || !flushed || ferror(f)) {
        int reason = !written && write_errno ? write_errno : errno;
        return gan_error(GAN_ERR_IO, "%s: cannot write a TensorBoard event: %s", name,
                         reason ? strerror(reason) : "the stream reports an error");
    }
    return GAN_OK;
}

/* ---- the writer ------------------------------------------------------------------------------ */

struct gan_tb_writer {
    FILE *file;
    char path[4200];
};

static double wall_time_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Encodes Event{wall_time, step, <body>} and writes it as one record. `body` holds the Event's
 * remaining fields, already encoded. */
static gan_status write_event(gan_tb_writer *w, const int64_t *step, const gan_pb *body)
{
    gan_pb event;
    gan_pb_init(&event);
    gan_pb_double(&event, 1, wall_time_s());
    if (step)
        gan_pb_int64(&event, 2, *step);
    gan_pb_raw(&event, body->data, body->len);
    gan_status status = GAN_OK;
    GAN_CHECK(gan_pb_status(&event, w->path));
    GAN_CHECK(gan_tb_write_record(w->file, w->path, event.data, event.len));
cleanup:
    gan_pb_free(&event);
    return status;
}

/* Event field 5: Summary{value: [values]}; `values` holds the encoded Summary.Value fields. */
static gan_status write_summary(gan_tb_writer *w, int64_t step, const gan_pb *values)
{
    gan_pb body;
    gan_pb_init(&body);
    gan_pb_message(&body, 5, values);
    gan_status status = GAN_OK;
    GAN_CHECK(gan_pb_status(&body, w->path));
    GAN_CHECK(write_event(w, &step, &body));
cleanup:
    gan_pb_free(&body);
    return status;
}

/* The first event of a file: Event{wall_time, file_version "brain.Event:2"}. */
static gan_status write_file_version(gan_tb_writer *w)
{
    gan_pb body;
    gan_pb_init(&body);
    gan_pb_string(&body, 3, "brain.Event:2");
    gan_status status = GAN_OK;
    GAN_CHECK(gan_pb_status(&body, w->path));
    GAN_CHECK(write_event(w, NULL, &body));
cleanup:
    gan_pb_free(&body);
    return status;
}

gan_status gan_tb_writer_open(const char *dir, gan_tb_writer **out)
{
    *out = NULL;
    char host[256];
    if (gethostname(host, sizeof host) != 0 || !host[0])
        snprintf(host, sizeof host, "localhost");
    host[sizeof host - 1] = '\0';
    for (char *c = host; *c; c++)
        if (*c == '/')
            *c = '_';
    gan_tb_writer *w = calloc(1, sizeof *w);
    if (!w)
        return gan_error(GAN_ERR_NOMEM, "out of memory for a TensorBoard writer");
    long long seconds = (long long)wall_time_s();
    /* "x": never append to or truncate another writer's file; a name taken in the same second
     * gets a numbered suffix, which sorts after it as TensorBoard's loader expects. */
    for (int n = 0; n < 1000 && !w->file; n++) {
        if (n == 0)
            snprintf(w->path, sizeof w->path, "%s/events.out.tfevents.%010lld.%s", dir, seconds, host);
        else
            snprintf(w->path, sizeof w->path, "%s/events.out.tfevents.%010lld.%s.%d", dir, seconds, host, n);
        w->file = fopen(w->path, "wbx");
        if (!w->file && errno != EEXIST) {
            gan_status status = gan_error(GAN_ERR_IO, "%s: cannot create the TensorBoard events file: %s",
                                          w->path, strerror(errno));
            free(w);
            return status;
        }
    }
    if (!w->file) {
        gan_status status = gan_error(GAN_ERR_IO, "%s: cannot create a TensorBoard events file: "
                                      "1000 names taken", w->path);
        free(w);
        return status;
    }
    gan_status status = write_file_version(w);
    if (status != GAN_OK) {
        fclose(w->file);
        unlink(w->path);
        free(w);
        return status;
    }
    *out = w;
    return GAN_OK;
}

const char *gan_tb_writer_path(const gan_tb_writer *writer) { return writer->path; }

gan_status gan_tb_add_session_start(gan_tb_writer *w, int64_t step)
{
    gan_pb session, body;
    gan_pb_init(&session);
    gan_pb_init(&body);
    gan_pb_int64(&session, 1, 1); /* SessionLog.status = START */
    gan_pb_message(&body, 7, &session); /* Event.session_log */
    gan_status status = GAN_OK;
    GAN_CHECK(gan_pb_status(&body, w->path));
    GAN_CHECK(write_event(w, &step, &body));
cleanup:
    gan_pb_free(&session);
    gan_pb_free(&body);
    return status;
}

gan_status gan_tb_add_scalars(gan_tb_writer *w, int64_t step, int count, const char *const *tags,
                              const float *values)
{
    gan_pb summary, value;
    gan_pb_init(&summary);
    gan_pb_init(&value);
    for (int i = 0; i < count; i++) {
        gan_pb_string(&value, 1, tags[i]);
        gan_pb_float(&value, 2, values[i]);
        gan_pb_message(&summary, 1, &value);
        gan_pb_free(&value);
    }
    gan_status status = GAN_OK;
    GAN_CHECK(gan_pb_status(&summary, w->path));
    GAN_CHECK(write_summary(w, step, &summary));
cleanup:
    gan_pb_free(&summary);
    return status;
}

gan_status gan_tb_add_png(gan_tb_writer *w, int64_t step, const char *tag, const uint8_t *png,
                          size_t png_size, int width, int height, int colorspace)
{
    if (width < 1 || height < 1 || (colorspace != 1 && colorspace != 3) || !png || png_size == 0)
        return gan_error(GAN_ERR_ARG, "%s: cannot add a %dx%d image of colorspace %d (%zu bytes) as %s",
                         w->path, width, height, colorspace, png_size, tag);
    gan_pb image, value, summary;
    gan_pb_init(&image);
    gan_pb_init(&value);
    gan_pb_init(&summary);
    gan_pb_int64(&image, 1, height);
    gan_pb_int64(&image, 2, width);
    gan_pb_int64(&image, 3, colorspace);
    gan_pb_bytes(&image, 4, png, png_size);
    gan_pb_string(&value, 1, tag);
    gan_pb_message(&value, 4, &image);
    gan_pb_message(&summary, 1, &value);
    gan_status status = GAN_OK;
    GAN_CHECK(gan_pb_status(&summary, w->path)); /* a nested failure carries up */
    GAN_CHECK(write_summary(w, step, &summary));
cleanup:
    gan_pb_free(&image);
    gan_pb_free(&value);
    gan_pb_free(&summary);
    return status;
}

gan_status gan_tb_writer_close(gan_tb_writer *w)
{
    if (!w)
        return GAN_OK;
    gan_status status = GAN_OK;
    if (fclose(w->file) != 0)
        status = gan_error(GAN_ERR_IO, "%s: %s", w->path, strerror(errno));
    free(w);
    return status;
}
