/* TensorBoard event files, written the way TensorFlow's and TensorBoard's own writers write them,
 * so `tensorboard --logdir runs` shows a run's scalars and sample grids.
 *
 * File: DIR/events.out.tfevents.<unix seconds, 10 digits>.<hostname> (TensorFlow's EventsWriter
 * naming; ".<n>" is appended when a file of that name already exists, e.g. a resume within the same
 * second). TensorBoard reads every *tfevents* file of a directory in name order and merges them.
 *
 * Records (TFRecord framing), every integer little endian:
 *   uint64 length | uint32 masked_crc32c(the 8 length bytes) | data[length] | uint32 masked_crc32c(data)
 * where masked_crc(c) = ((c >> 15) | (c << 17)) + 0xa282ead8 and crc32c is CRC-32C (Castagnoli,
 * reflected polynomial 0x82F63B78). `data` is a serialized tensorboard.Event; the field numbers,
 * checked against tensorboard/compat/proto/event.proto and summary.proto:
 *   Event         { double wall_time = 1; int64 step = 2; string file_version = 3; Summary summary = 5;
 *                   SessionLog session_log = 7; }
 *   SessionLog    { SessionStatus status = 1; }                               // START = 1
 *   Summary       { repeated Value value = 1; }
 *   Summary.Value { string tag = 1; float simple_value = 2; Image image = 4; }
 *   Summary.Image { int32 height = 1; int32 width = 2; int32 colorspace = 3;  // 1 gray, 3 RGB
 *                   bytes encoded_image_string = 4; }                         // PNG
 * The first record is Event{wall_time, file_version: "brain.Event:2"}. Every record is flushed
 * when written: TensorBoard reads the file while training runs. */
#ifndef GAN_TB_EVENTS_H
#define GAN_TB_EVENTS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "gan/crc32c.h"
#include "gan/error.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The TFRecord mask: ((crc >> 15) | (crc << 17)) + 0xa282ead8. */
uint32_t gan_tb_masked_crc(uint32_t crc);

/* Writes one framed record (length, its masked CRC, data, its masked CRC) to `f` and flushes it;
 * `name` names the file in messages. */
gan_status gan_tb_write_record(FILE *f, const char *name, const void *data, size_t size);

typedef struct gan_tb_writer gan_tb_writer;

/* Creates a new events file in `dir` (which must exist) and writes the file_version record. */
gan_status gan_tb_writer_open(const char *dir, gan_tb_writer **out);
/* The path of the events file. */
const char *gan_tb_writer_path(const gan_tb_writer *writer);

/* Event{step, session_log: SessionLog{status: START}}: the first step a resumed run makes.
 * TensorBoard then drops the events of earlier files at or after `step` (the steps made again). */
gan_status gan_tb_add_session_start(gan_tb_writer *writer, int64_t step);
/* One Event at `step` whose Summary holds `count` scalars (tags[i], values[i]). */
gan_status gan_tb_add_scalars(gan_tb_writer *writer, int64_t step, int count, const char *const *tags,
                              const float *values);
/* One Event at `step` holding an image: PNG bytes [png_size] of a width x height picture,
 * colorspace 1 (gray) or 3 (RGB). */
gan_status gan_tb_add_png(gan_tb_writer *writer, int64_t step, const char *tag, const uint8_t *png,
                          size_t png_size, int width, int height, int colorspace);

/* Closes the file (NULL is fine); returns an error if the last bytes could not be written. */
gan_status gan_tb_writer_close(gan_tb_writer *writer);

#ifdef __cplusplus
}
#endif
#endif
