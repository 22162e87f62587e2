/* Strict option values (see args.h). */
#include "cli/args.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

bool gan_parse_u64(const char *text, uint64_t *out)
{
    if (!text || !*text)
        return false;
    uint64_t v = 0;
    for (const char *p = text; *p; p++) {
        if (*p < '0' || *p > '9')
            return false;
        unsigned digit = (unsigned)(*p - '0');
        if (v > (UINT64_MAX - digit) / 10)
            return false; /* past 18446744073709551615 */
        v = v * 10 + digit;
    }
    *out = v;
    return true;
}

bool gan_parse_int64(const char *text, int64_t min, int64_t max, int64_t *out)
{
    if (!text)
        return false;
    bool negative = text[0] == '-';
    if (negative && min >= 0)
        return false;
    uint64_t magnitude;
    if (!gan_parse_u64(text + negative, &magnitude))
        return false;
    int64_t v;
    if (negative) {
        if (magnitude > (uint64_t)INT64_MAX + 1)
            return false;
        v = magnitude == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)magnitude;
    } else {
        if (magnitude > (uint64_t)INT64_MAX)
            return false;
        v = (int64_t)magnitude;
    }
    if (v < min || v > max)
        return false;
    *out = v;
    return true;
}

static void refuse(const char *command, const char *option, const char *text, const char *why)
{
    bool empty = !text || !*text;
    fprintf(stderr, "gan %s: %s %s: %s\n", command, option, empty ? "''" : text, why);
}

bool gan_arg_int(const char *command, const char *option, const char *text, int min, int max, int *out)
{
    int64_t v;
    if (gan_parse_int64(text, min, max, &v)) {
        *out = (int)v;
        return true;
    }
    char why[128];
    snprintf(why, sizeof why, "expected %s integer from %d to %d (digits only)",
             min < 0 ? "an" : "a whole", min, max);
    refuse(command, option, text, why);
    return false;
}

bool gan_arg_u64(const char *command, const char *option, const char *text, uint64_t *out)
{
    if (gan_parse_u64(text, out))
        return true;
    refuse(command, option, text,
           "expected an unsigned 64-bit integer from 0 to 18446744073709551615 (digits only)");
    return false;
}

bool gan_parse_double(const char *text, double min, double max, double *out)
{
    char *end = NULL;
    errno = 0;
    double v = text && *text ? strtod(text, &end) : NAN;
    bool ok = text && *text && end && !*end && errno == 0 && isfinite(v) && v >= min && v <= max &&
              strspn(text, " \t\n") == 0;
    if (ok)
        *out = v;
    return ok;
}

bool gan_arg_double(const char *command, const char *option, const char *text, double min, double max,
                    double *out)
{
    if (gan_parse_double(text, min, max, out))
        return true;
    char why[128];
    snprintf(why, sizeof why, "expected a number from %g to %g", min, max);
    refuse(command, option, text, why);
    return false;
}

bool gan_arg_path(const char *command, const char *option, const char *text)
{
    if (text && *text)
        return true;
    fprintf(stderr, "gan %s: %s needs a path; the value given is empty\n", command, option);
    return false;
}

bool gan_args_want_help(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h"))
            return true;
    return false;
}

bool gan_args_output_not_input(const char *command, const char *output, const char *const *inputs, int count)
{
    struct stat out_st, st;
    if (!output || stat(output, &out_st) != 0)
        return true;
    for (int i = 0; i < count; i++)
        if (inputs[i] && stat(inputs[i], &st) == 0 && st.st_dev == out_st.st_dev && st.st_ino == out_st.st_ino) {
            fprintf(stderr, "gan %s: the output %s is the input %s: writing it would replace what is being read\n",
                    command, output, inputs[i]);
            return false;
        }
    return true;
}

FILE *gan_args_report_stream(const char *const *outputs, int count)
{
    struct stat out_st, st;
    if (fstat(STDOUT_FILENO, &out_st) != 0)
        return stdout;
    for (int i = 0; i < count; i++)
        if (outputs[i] && stat(outputs[i], &st) == 0 && st.st_dev == out_st.st_dev && st.st_ino == out_st.st_ino)
            return stderr;
    return stdout;
}
