/* .npy: round trips (read, memory-mapped, piecewise writer with dropped rows), the exact header numpy
 * writes, hostile headers refused with the file named, and numpy itself reading ours and writing
 * what we read (when /usr/bin/python3 has numpy). */
#include <stdlib.h>
#include <string.h>

#include "gan/npy.h"
#include "test_util.h"

static const char *dir;

static void write_bytes(const char *path, const void *bytes, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(bytes, 1, n, f) != n) {
        fprintf(stderr, "cannot write %s\n", path);
        exit(1);
    }
    fclose(f);
}

static int count_files(const char *prefix) { return test_count_entries(dir, prefix); }

static void check_round_trips(void)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/f32.npy", dir);
    float values[2 * 3 * 4];
    for (int i = 0; i < 24; i++)
        values[i] = (float)i * 0.5f - 3.25f;
    int64_t shape[3] = {2, 3, 4};
    CHECK_OK(gan_npy_write_f32(path, values, 3, shape));
    float *back = NULL;
    int ndim = 0;
    int64_t got[GAN_NPY_MAX_DIMS];
    CHECK_OK(gan_npy_read_f32(path, &back, &ndim, got));
    CHECK(ndim == 3 && got[0] == 2 && got[1] == 3 && got[2] == 4);
    CHECK(back && !memcmp(back, values, sizeof values));
    free(back);
    uint8_t *wrong = NULL;
    CHECK_FAILS_WITH(gan_npy_read_u8(path, &wrong, &ndim, got), GAN_ERR_FORMAT, "dtype is float32");

    gan_npy_array map;
    CHECK_OK(gan_npy_map(path, &map));
    CHECK(map.map_base != NULL && map.header.dtype == GAN_NPY_F32 && map.header.data_offset % 64 == 0);
    CHECK(map.data && !memcmp(map.data, values, sizeof values));
    gan_npy_release(&map);

    snprintf(path, sizeof path, "%s/u8.npy", dir);
    uint8_t pixels[5 * 2 * 2 * 3];
    for (int i = 0; i < 60; i++)
        pixels[i] = (uint8_t)(i * 7);
    int64_t nhwc[4] = {5, 2, 2, 3};
    CHECK_OK(gan_npy_write_u8(path, pixels, 4, nhwc));
    CHECK_OK(gan_npy_map(path, &map));
    CHECK(map.header.dtype == GAN_NPY_U8 && map.header.ndim == 4 && map.header.shape[0] == 5 &&
          map.header.shape[3] == 3 && map.header.data_bytes == 60);
    CHECK(!memcmp(map.data, pixels, 60));
    gan_npy_release(&map);

    /* numpy's header: dict, spaces, newline, data on a 64-byte boundary (here 128) */
    FILE *f = fopen(path, "rb");
    char head[129] = {0};
    CHECK(f && fread(head, 1, 128, f) == 128);
    if (f)
        fclose(f);
    const char *dict = "{'descr': '|u1', 'fortran_order': False, 'shape': (5, 2, 2, 3), }";
    CHECK(!memcmp(head, "\x93NUMPY\x01\x00", 8) && head[8] == 118 && head[9] == 0);
    CHECK(!memcmp(head + 10, dict, strlen(dict)) && head[127] == '\n' && head[126] == ' ');

    /* one dimension: (3,) */
    snprintf(path, sizeof path, "%s/one.npy", dir);
    int64_t one[1] = {3};
    CHECK_OK(gan_npy_write_u8(path, pixels, 1, one));
    f = fopen(path, "rb");
    memset(head, 0, sizeof head);
    CHECK(f && fread(head, 1, 128, f) == 128);
    if (f)
        fclose(f);
    CHECK(strstr(head + 10, "'shape': (3,), }") != NULL && head[127] == '\n');
    CHECK(count_files("u8.npy.tmp") == 0 && count_files("f32.npy.tmp") == 0);
}

static void check_writer(void)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/rows.npy", dir);
    gan_npy_writer w;
    int64_t shape[3] = {7, 2, 3}; /* rows of 6 bytes */
    CHECK_OK(gan_npy_writer_open(&w, path, GAN_NPY_U8, 3, shape));
    CHECK(count_files("rows.npy.tmp.") == 1);
    for (int r = 6; r >= 0; r--) { /* any order */
        uint8_t row[6];
        memset(row, r * 10, sizeof row);
        CHECK_OK(gan_npy_writer_write_rows(&w, r, 1, row));
    }
    uint8_t row[6] = {0};
    CHECK_FAILS_WITH(gan_npy_writer_write_rows(&w, 6, 2, row), GAN_ERR_ARG, "outside");
    bool keep[7] = {true, false, true, true, false, false, true};
    CHECK_OK(gan_npy_writer_drop_rows(&w, keep));
    CHECK(w.shape[0] == 4);
    CHECK_OK(gan_npy_writer_commit(&w));
    CHECK(count_files("rows.npy.tmp.") == 0);
    gan_npy_array a;
    CHECK_OK(gan_npy_map(path, &a));
    CHECK(a.header.shape[0] == 4 && a.header.shape[1] == 2 && a.header.shape[2] == 3 && a.header.data_offset == 128);
    const uint8_t want_rows[4] = {0, 20, 30, 60};
    bool same = a.data != NULL;
    for (int r = 0; same && r < 4; r++)
        for (int j = 0; j < 6; j++)
            same &= ((uint8_t *)a.data)[r * 6 + j] == want_rows[r];
    CHECK(same);
    CHECK(a.map_bytes == 128 + 24); /* truncated to the rows kept */
    gan_npy_release(&a);

    /* abort: no output, no temporary file */
    snprintf(path, sizeof path, "%s/aborted.npy", dir);
    CHECK_OK(gan_npy_writer_open(&w, path, GAN_NPY_F32, 3, shape));
    gan_npy_writer_abort(&w);
    gan_npy_writer_abort(&w); /* twice is harmless */
    CHECK(count_files("aborted.npy") == 0);
    char missing[4300];
    snprintf(missing, sizeof missing, "%s/no/such/dir/x.npy", dir);
    CHECK_FAILS_WITH(gan_npy_writer_open(&w, missing, GAN_NPY_U8, 3, shape), GAN_ERR_IO, "no/such/dir");
}

/* A file of a 10-byte v1.0 prefix + `header` padded to 64 + `data_bytes` zero bytes. */
static void write_npy_text(const char *path, const char *header, size_t data_bytes)
{
    uint8_t buf[4096] = {0};
    size_t len = strlen(header), total = (10 + len + 1 + 63) / 64 * 64;
    memcpy(buf, "\x93NUMPY\x01\x00", 8);
    buf[8] = (uint8_t)((total - 10) & 0xff);
    buf[9] = (uint8_t)((total - 10) >> 8);
    memcpy(buf + 10, header, len);
    memset(buf + 10 + len, ' ', total - 10 - len - 1);
    buf[total - 1] = '\n';
    write_bytes(path, buf, total + data_bytes);
}

static void check_refusals(void)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/bad.npy", dir);
    gan_npy_array a;
    struct {
        const char *header;
        size_t data;
        const char *needle;
    } cases[] = {
        {"{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }", 8, "'>f4' is not supported"},
        {"{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }", 16, "'<f8' is not supported"},
        {"{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }", 16, "Fortran"},
        {"{'descr': '<f4', 'shape': (2,), }", 8, "lacks 'fortran_order'"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'extra': 1, }", 8, "unexpected"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (-2,), }", 8, "non-negative"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (1,1,1,1,1,1,1,1,1), }", 4, "more than 8"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999, 99999999999), }", 4, "too large"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (4, 4), }", 60, "truncated"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2,) }junk", 8, "text after"},
        {"{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2,), }", 8, "structured"},
        {"not a dict", 0, "not a dict"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        write_npy_text(path, cases[i].header, cases[i].data);
        CHECK_FAILS_WITH(gan_npy_map(path, &a), GAN_ERR_FORMAT, cases[i].needle);
        CHECK_FAILS_WITH(gan_npy_read(path, &a), GAN_ERR_FORMAT, cases[i].needle);
    }
    /* byte-level damage */
    write_bytes(path, "\x93NUMPZ\x01\x00\x10\x00", 10);
    CHECK_FAILS_WITH(gan_npy_map(path, &a), GAN_ERR_FORMAT, "not a .npy file");
    write_bytes(path, "\x93NUMPY\x07\x00\x10\x00", 10);
    CHECK_FAILS_WITH(gan_npy_read(path, &a), GAN_ERR_FORMAT, "version 7.0");
    write_bytes(path, "\x93NUMPY\x01\x00\xff\x7f{'descr'", 18);
    CHECK_FAILS_WITH(gan_npy_map(path, &a), GAN_ERR_FORMAT, "truncated .npy header");
    write_bytes(path, "", 0);
    CHECK_FAILS_WITH(gan_npy_map(path, &a), GAN_ERR_FORMAT, "bad.npy");
    char missing[4300];
    snprintf(missing, sizeof missing, "%s/missing.npy", dir);
    CHECK_FAILS_WITH(gan_npy_map(missing, &a), GAN_ERR_IO, "missing.npy");
    /* accepted variants: double quotes, other key order, Python 2 longs, empty shape */
    write_npy_text(path, "{\"shape\": (3L, 1), \"fortran_order\": False, \"descr\": \"|u1\"}", 3);
    CHECK_OK(gan_npy_read(path, &a));
    CHECK(a.header.ndim == 2 && a.header.shape[0] == 3 && a.header.dtype == GAN_NPY_U8);
    gan_npy_release(&a);
    write_npy_text(path, "{'descr': '<f4', 'fortran_order': False, 'shape': (), }", 4);
    CHECK_OK(gan_npy_map(path, &a));
    CHECK(a.header.ndim == 0 && a.header.data_bytes == 4);
    gan_npy_release(&a);
}

/* numpy reads what we write and we read what numpy writes (versions 1.0 and 2.0). */
static void check_numpy(void)
{
    if (system("/usr/bin/python3 -c 'import numpy' 2>/dev/null") != 0) {
        printf("numpy not available: interoperability part skipped\n");
        return;
    }
    char ours[4200], cmd[16384];
    snprintf(ours, sizeof ours, "%s/ours.npy", dir);
    uint8_t pixels[3 * 4 * 5 * 3];
    for (int i = 0; i < 180; i++)
        pixels[i] = (uint8_t)(i * 31 + 7);
    int64_t shape[4] = {3, 4, 5, 3};
    CHECK_OK(gan_npy_write_u8(ours, pixels, 4, shape));
    snprintf(cmd, sizeof cmd,
             "/usr/bin/python3 -c \"import numpy as np\n"
             "a = np.load('%s', mmap_mode='r')\n"
             "assert a.shape == (3, 4, 5, 3) and a.dtype == np.uint8, (a.shape, a.dtype)\n"
             "assert (np.asarray(a).ravel() == (np.arange(180) * 31 + 7) %% 256).all()\n"
             "np.save('%s/np_f4.npy', np.arange(12, dtype='<f4').reshape(3, 4) / 4)\n"
             "np.save('%s/np_u1.npy', np.arange(24, dtype=np.uint8).reshape(2, 3, 4))\n"
             "f = open('%s/np_v2.npy', 'wb'); np.lib.format.write_array(f, np.full((5,), 2.5, '<f4'), version=(2, 0)); f.close()\n"
             "np.save('%s/np_fortran.npy', np.asfortranarray(np.ones((2, 3), '<f4')))\n"
             "np.save('%s/np_f8.npy', np.ones(3))\n\"",
             ours, dir, dir, dir, dir, dir);
    CHECK_MSG(system(cmd) == 0, "numpy could not load %s as uint8 [3, 4, 5, 3] with our values", ours);
    char path[4300];
    float *f = NULL;
    uint8_t *u = NULL;
    int ndim;
    int64_t got[GAN_NPY_MAX_DIMS];
    snprintf(path, sizeof path, "%s/np_f4.npy", dir);
    CHECK_OK(gan_npy_read_f32(path, &f, &ndim, got));
    CHECK(f && ndim == 2 && got[0] == 3 && got[1] == 4 && f[11] == 2.75f && f[1] == 0.25f);
    free(f);
    snprintf(path, sizeof path, "%s/np_u1.npy", dir);
    CHECK_OK(gan_npy_read_u8(path, &u, &ndim, got));
    CHECK(u && ndim == 3 && got[2] == 4 && u[23] == 23);
    free(u);
    snprintf(path, sizeof path, "%s/np_v2.npy", dir);
    gan_npy_array a;
    CHECK_OK(gan_npy_map(path, &a));
    CHECK(a.header.shape[0] == 5 && ((float *)a.data)[4] == 2.5f);
    gan_npy_release(&a);
    snprintf(path, sizeof path, "%s/np_fortran.npy", dir);
    CHECK_FAILS_WITH(gan_npy_map(path, &a), GAN_ERR_FORMAT, "Fortran");
    snprintf(path, sizeof path, "%s/np_f8.npy", dir);
    CHECK_FAILS_WITH(gan_npy_read(path, &a), GAN_ERR_FORMAT, "'<f8'");
}

int main(void)
{
    dir = test_temp_dir("test_data_npy");
    check_round_trips();
    check_writer();
    check_refusals();
    check_numpy();
    return test_finish();
}
