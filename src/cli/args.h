/* Strict parsing of command-line option values, shared by the subcommands.
 *
 * Numbers are plain decimal digits: no sign where the range is unsigned (a '-' only where the range
 * allows negatives), no '+', no spaces, no exponent ("1e3"), no hex, nothing after the digits, and
 * a value inside the option's stated range. Paths must not be empty. Each helper prints one line,
 * `gan <command>: <option> <value>: <why>`, on stderr when the value is refused and returns false,
 * so a caller writes `if (!gan_arg_int(...)) return 2;`. */
#ifndef GAN_CLI_ARGS_H
#define GAN_CLI_ARGS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

/* Pure parsers (no message): true and *out set when `text` is a number of the grammar above. */
bool gan_parse_u64(const char *text, uint64_t *out);
bool gan_parse_int64(const char *text, int64_t min, int64_t max, int64_t *out);
/* A real number in [min, max]: strtod's grammar, finite, no leading space, nothing after it. */
bool gan_parse_double(const char *text, double min, double max, double *out);

/* An int option in [min, max]. */
bool gan_arg_int(const char *command, const char *option, const char *text, int min, int max, int *out);
/* An unsigned 64-bit option: 0..18446744073709551615 (a seed). */
bool gan_arg_u64(const char *command, const char *option, const char *text, uint64_t *out);
/* A real number in [min, max] (strtod's grammar, finite, nothing after it). */
bool gan_arg_double(const char *command, const char *option, const char *text, double min, double max,
                    double *out);
/* A path: refused when empty. */
bool gan_arg_path(const char *command, const char *option, const char *text);

/* True when argv[1..argc-1] holds --help or -h. */
bool gan_args_want_help(int argc, char **argv);

/* Refuses (false, one message on stderr naming both) an `output` that is the same file as one of
 * the `count` inputs (NULL entries skipped): `gan export CKPT -o CKPT` would replace the
 * checkpoint it reads. Files that do not exist yet are never the same. */
bool gan_args_output_not_input(const char *command, const char *output, const char *const *inputs, int count);

/* Where a command's closing summary goes: stdout, or stderr when one of the `count` outputs (NULL
 * entries skipped) is the file stdout writes to (`--npy /dev/stdout`), so the data stays clean. */
FILE *gan_args_report_stream(const char *const *outputs, int count);

#endif
