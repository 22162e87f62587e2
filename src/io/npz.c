/* .npz files: the zip container (PKWARE APPNOTE 6.3: local headers, the central directory, the
 * end records, ZIP64 extensions) around .npy members (see gan/npz.h). Reading goes through the
 * central directory, as Python's zipfile does; every offset and size is checked against the file
 * before it is used. */
#include "gan/npz.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "gan/file_atomic.h"

enum {
    SIG_LOCAL = 0x04034b50,
    SIG_CENTRAL = 0x02014b50,
    SIG_END = 0x06054b50,
    SIG_END64 = 0x06064b50,
    SIG_END64_LOCATOR = 0x07064b50,
    METHOD_STORED = 0,
    METHOD_DEFLATE = 8,
    LOCAL_HEADER_BYTES = 30,
    CENTRAL_HEADER_BYTES = 46,
    END_BYTES = 22,
    END64_BYTES = 56,
};

/* No member is inflated past this (a float64 sigma of 16384 features is 2 GiB). */
#define NPZ_MAX_MEMBER_BYTES ((uint64_t)4 << 30)
/* Room for a member's .npy header beside its values, in a read with a limit (numpy writes ~128
 * bytes and reads headers of at most 10000 by default). */
#define NPY_HEADER_ROOM_BYTES ((uint64_t)16384)
/* deflate's best ratio is 1032:1 */
#define DEFLATE_MAX_RATIO 1032u

static uint16_t le16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t le32(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }
static uint64_t le64(const uint8_t *p) { return (uint64_t)le32(p) | (uint64_t)le32(p + 4) << 32; }

/* ---- the zip container -------------------------------------------------------------------- */

typedef struct zip_file {
    const char *path;
    const uint8_t *bytes;
    size_t size;
    uint64_t cd_offset, cd_size, entries;
} zip_file;

typedef struct zip_member {
    const uint8_t *name;
    size_t name_len;
    uint16_t flags, method;
    uint32_t crc;
    uint64_t compressed, uncompressed, local_offset;
} zip_member;

static gan_status find_end(zip_file *z)
{
    if (z->size < END_BYTES)
        return gan_error(GAN_ERR_FORMAT, "%s: not a .npz file (%zu bytes: too short for a zip archive)", z->path,
                         z->size);
    /* the end record is the last 22 bytes plus a comment of up to 65535 */
    size_t lowest = z->size > END_BYTES + 65535 ? z->size - END_BYTES - 65535 : 0;
    size_t at = z->size - END_BYTES;
    for (;;) {
        if (le32(z->bytes + at) == SIG_END && at + END_BYTES + le16(z->bytes + at + 20) == z->size)
            break;
        if (at == lowest)
            return gan_error(GAN_ERR_FORMAT, "%s: not a .npz file (no zip end-of-central-directory record)",
                             z->path);
        at--;
    }
    const uint8_t *e = z->bytes + at;
    z->entries = le16(e + 10);
    z->cd_size = le32(e + 12);
    z->cd_offset = le32(e + 16);
    if (le16(e + 4) != 0 || le16(e + 6) != 0)
        return gan_error(GAN_ERR_FORMAT, "%s: a zip archive split over several disks is not supported", z->path);
    if (z->entries == 0xFFFF || z->cd_size == 0xFFFFFFFFu || z->cd_offset == 0xFFFFFFFFu) {
        /* ZIP64: the locator just before the end record points to the ZIP64 end record */
        if (at < 20 || le32(z->bytes + at - 20) != SIG_END64_LOCATOR)
            return gan_error(GAN_ERR_FORMAT, "%s: zip end record asks for ZIP64 but there is no ZIP64 locator",
                             z->path);
        /* (a file shorter than the ZIP64 end record must not make size - 56 wrap around) */
        uint64_t end64 = le64(z->bytes + at - 20 + 8);
        if (z->size < END64_BYTES || end64 > z->size - END64_BYTES || le32(z->bytes + end64) != SIG_END64)
            return gan_error(GAN_ERR_FORMAT, "%s: the ZIP64 end record is missing or out of the file", z->path);
        z->entries = le64(z->bytes + end64 + 32);
        z->cd_size = le64(z->bytes + end64 + 40);
        z->cd_offset = le64(z->bytes + end64 + 48);
    }
    if (z->cd_offset > z->size || z->cd_size > z->size - z->cd_offset)
        return gan_error(GAN_ERR_FORMAT, "%s: the zip central directory lies outside the file", z->path);
    return GAN_OK;
}

/* The ZIP64 extra field's 8-byte values, for those of the three that the header marks 0xFFFFFFFF. */
static gan_status read_zip64_extra(const zip_file *z, const uint8_t *extra, size_t len, zip_member *m,
                                   bool need_u, bool need_c, bool need_o)
{
    size_t pos = 0;
    while (pos + 4 <= len) {
        uint16_t id = le16(extra + pos), size = le16(extra + pos + 2);
        if (pos + 4 + size > len)
            break;
        if (id == 0x0001) {
            const uint8_t *v = extra + pos + 4;
            size_t need = 8u * (need_u + need_c + need_o), used = 0;
            if (size < need)
                break;
            if (need_u)
                m->uncompressed = le64(v + used), used += 8;
            if (need_c)
                m->compressed = le64(v + used), used += 8;
            if (need_o)
                m->local_offset = le64(v + used);
            return GAN_OK;
        }
        pos += 4 + (size_t)size;
    }
    return gan_error(GAN_ERR_FORMAT, "%s: member %.*s: its sizes need a ZIP64 extra field and have none", z->path,
                     (int)m->name_len, (const char *)m->name);
}

/* The central directory entry of `want` (e.g. "sigma.npy"); *found false when there is none, with
 * the names present listed into `names`. */
static gan_status find_member(const zip_file *z, const char *want, zip_member *out, bool *found, char *names,
                              size_t names_bytes)
{
    *found = false;
    names[0] = '\0';
    size_t used = 0, pos = (size_t)z->cd_offset, end = (size_t)(z->cd_offset + z->cd_size);
    for (uint64_t i = 0; i < z->entries; i++) {
        if (pos + CENTRAL_HEADER_BYTES > end || le32(z->bytes + pos) != SIG_CENTRAL)
            return gan_error(GAN_ERR_FORMAT, "%s: zip central directory entry %llu is damaged", z->path,
                             (unsigned long long)i);
        const uint8_t *h = z->bytes + pos;
        zip_member m = {0};
        m.flags = le16(h + 8);
        m.method = le16(h + 10);
        m.crc = le32(h + 16);
        m.compressed = le32(h + 20);
        m.uncompressed = le32(h + 24);
        size_t name_len = le16(h + 28), extra_len = le16(h + 30), comment_len = le16(h + 32);
        m.local_offset = le32(h + 42);
        if (pos + CENTRAL_HEADER_BYTES + name_len + extra_len + comment_len > end)
            return gan_error(GAN_ERR_FORMAT, "%s: zip central directory entry %llu runs past the directory",
                             z->path, (unsigned long long)i);
        m.name = h + CENTRAL_HEADER_BYTES;
        m.name_len = name_len;
        bool need_u = m.uncompressed == 0xFFFFFFFFu, need_c = m.compressed == 0xFFFFFFFFu,
             need_o = m.local_offset == 0xFFFFFFFFu;
        if (need_u || need_c || need_o)
            GAN_TRY(read_zip64_extra(z, m.name + name_len, extra_len, &m, need_u, need_c, need_o));
        if (used + name_len + 3 < names_bytes) {
            used += (size_t)snprintf(names + used, names_bytes - used, "%s%.*s", used ? ", " : "", (int)name_len,
                                     (const char *)m.name);
        }
        if (name_len == strlen(want) && !memcmp(m.name, want, name_len)) {
            *out = m;
            *found = true;
        }
        pos += CENTRAL_HEADER_BYTES + name_len + extra_len + comment_len;
    }
    return GAN_OK;
}

/* The member's uncompressed bytes: into the file's own bytes when stored (*owned NULL), else
 * inflated into *owned (malloc'ed). A member of more than max_bytes is refused before anything is
 * inflated or allocated. */
static gan_status member_bytes(const zip_file *z, const zip_member *m, const char *name, uint64_t max_values,
                               const uint8_t **data, uint8_t **owned)
{
    uint64_t max_bytes = max_values > (NPZ_MAX_MEMBER_BYTES - NPY_HEADER_ROOM_BYTES) / 8
                             ? NPZ_MAX_MEMBER_BYTES
                             : max_values * 8 + NPY_HEADER_ROOM_BYTES;
    *owned = NULL;
    if (m->flags & 1u)
        return gan_error(GAN_ERR_FORMAT, "%s: member %s is encrypted", z->path, name);
    if (z->size < LOCAL_HEADER_BYTES || m->local_offset > z->size - LOCAL_HEADER_BYTES ||
        le32(z->bytes + m->local_offset) != SIG_LOCAL)
        return gan_error(GAN_ERR_FORMAT, "%s: member %s: its local header is missing or out of the file", z->path,
                         name);
    const uint8_t *h = z->bytes + m->local_offset;
    uint64_t start = m->local_offset + LOCAL_HEADER_BYTES + le16(h + 26) + le16(h + 28);
    if (start > z->size || m->compressed > z->size - start)
        return gan_error(GAN_ERR_FORMAT, "%s: member %s: %llu bytes of data run past the end of the file", z->path,
                         name, (unsigned long long)m->compressed);
    if (m->uncompressed > NPZ_MAX_MEMBER_BYTES)
        return gan_error(GAN_ERR_FORMAT, "%s: member %s claims %llu bytes (more than the %llu read)", z->path, name,
                         (unsigned long long)m->uncompressed, (unsigned long long)NPZ_MAX_MEMBER_BYTES);
    if (m->uncompressed > max_bytes)
        return gan_error(GAN_ERR_FORMAT, "%s: member %s is %llu bytes, more than %llu values take (at most %llu "
                                         "bytes with the header): refused unread",
                         z->path, name, (unsigned long long)m->uncompressed, (unsigned long long)max_values,
                         (unsigned long long)max_bytes);
    const uint8_t *compressed = z->bytes + start;
    if (m->method == METHOD_STORED) {
        if (m->compressed != m->uncompressed)
            return gan_error(GAN_ERR_FORMAT, "%s: member %s is stored but its two sizes differ", z->path, name);
        *data = compressed;
    } else if (m->method == METHOD_DEFLATE) {
        if (m->uncompressed / DEFLATE_MAX_RATIO > m->compressed + 1)
            return gan_error(GAN_ERR_FORMAT, "%s: member %s: %llu bytes cannot inflate to %llu", z->path, name,
                             (unsigned long long)m->compressed, (unsigned long long)m->uncompressed);
        uint8_t *out = malloc(m->uncompressed ? (size_t)m->uncompressed : 1);
        if (!out)
            return gan_error(GAN_ERR_NOMEM, "%s: out of memory for member %s (%llu bytes)", z->path, name,
                             (unsigned long long)m->uncompressed);
        z_stream s;
        memset(&s, 0, sizeof s);
        if (inflateInit2(&s, -MAX_WBITS) != Z_OK) {
            free(out);
            return gan_error(GAN_ERR_NOMEM, "%s: zlib cannot start inflating", z->path);
        }
        uint64_t in_left = m->compressed, out_done = 0;
        int rc = Z_OK;
        while (rc == Z_OK) {
            s.next_in = (Bytef *)(uintptr_t)(compressed + (m->compressed - in_left));
            s.avail_in = in_left > UINT_MAX ? UINT_MAX : (uInt)in_left;
            s.next_out = out + out_done;
            uint64_t out_left = m->uncompressed - out_done;
            s.avail_out = out_left > UINT_MAX ? UINT_MAX : (uInt)out_left;
            uInt avail_in = s.avail_in, avail_out = s.avail_out;
            rc = inflate(&s, Z_NO_FLUSH);
            in_left -= avail_in - s.avail_in;
            out_done += avail_out - s.avail_out;
            if (rc == Z_OK && avail_in == s.avail_in && avail_out == s.avail_out)
                rc = Z_BUF_ERROR; /* no progress: the data ends early or the size is wrong */
        }
        inflateEnd(&s);
        if (rc != Z_STREAM_END || out_done != m->uncompressed) {
            free(out);
            return gan_error(GAN_ERR_FORMAT, "%s: member %s does not inflate to its %llu bytes (%s)", z->path, name,
                             (unsigned long long)m->uncompressed, rc == Z_STREAM_END ? "size differs" : "corrupt data");
        }
        *data = out;
        *owned = out;
    } else {
        return gan_error(GAN_ERR_FORMAT, "%s: member %s uses zip compression method %u (only stored and deflate, as "
                                         "numpy writes)",
                         z->path, name, m->method);
    }
    uLong crc = crc32(0L, Z_NULL, 0);
    for (uint64_t done = 0; done < m->uncompressed;) {
        uint64_t chunk = m->uncompressed - done > (1u << 30) ? (1u << 30) : m->uncompressed - done;
        crc = crc32(crc, *data + done, (uInt)chunk);
        done += chunk;
    }
    if ((uint32_t)crc != m->crc) {
        free(*owned);
        *owned = NULL;
        return gan_error(GAN_ERR_FORMAT, "%s: member %s fails its CRC-32 check (damaged)", z->path, name);
    }
    return GAN_OK;
}

/* ---- the .npy member ---------------------------------------------------------------------- */

typedef struct npy_text {
    const char *p, *end;
} npy_text;

static void skip_blank(npy_text *t)
{
    while (t->p < t->end && (*t->p == ' ' || *t->p == '\t' || *t->p == '\n' || *t->p == '\r'))
        t->p++;
}

static bool take_char(npy_text *t, char c)
{
    skip_blank(t);
    if (t->p < t->end && *t->p == c) {
        t->p++;
        return true;
    }
    return false;
}

static bool take_string(npy_text *t, char *out, size_t out_size)
{
    skip_blank(t);
    if (t->p >= t->end || (*t->p != '\'' && *t->p != '"'))
        return false;
    char quote = *t->p++;
    size_t n = 0;
    while (t->p < t->end && *t->p != quote) {
        if (*t->p == '\\' || n + 1 >= out_size)
            return false;
        out[n++] = *t->p++;
    }
    if (t->p >= t->end)
        return false;
    t->p++;
    out[n] = '\0';
    return true;
}

static bool take_word(npy_text *t, const char *word)
{
    skip_blank(t);
    size_t n = strlen(word);
    if ((size_t)(t->end - t->p) < n || memcmp(t->p, word, n))
        return false;
    t->p += n;
    return true;
}

typedef struct npy_member {
    bool f64, fortran;
    int ndim;
    int64_t shape[GAN_NPZ_MAX_DIMS];
    const uint8_t *data;
    uint64_t count;
} npy_member;

static gan_status parse_npy(const char *path, const char *name, const uint8_t *bytes, uint64_t size, npy_member *out)
{
    memset(out, 0, sizeof *out);
    if (size < 10 || memcmp(bytes, "\x93NUMPY", 6))
        return gan_error(GAN_ERR_FORMAT, "%s: member %s is not a .npy array", path, name);
    uint64_t header_len, prefix;
    if (bytes[6] == 1) {
        header_len = le16(bytes + 8);
        prefix = 10;
    } else if ((bytes[6] == 2 || bytes[6] == 3) && size >= 12) {
        header_len = le32(bytes + 8);
        prefix = 12;
    } else {
        return gan_error(GAN_ERR_FORMAT, "%s: member %s: .npy version %d.%d (1.0 to 3.0 are read)", path, name,
                         bytes[6], bytes[7]);
    }
    if (header_len > size - prefix)
        return gan_error(GAN_ERR_FORMAT, "%s: member %s: truncated .npy header", path, name);
    npy_text t = {(const char *)bytes + prefix, (const char *)bytes + prefix + header_len};
    bool have_descr = false, have_order = false, have_shape = false;
    if (!take_char(&t, '{'))
        return gan_error(GAN_ERR_FORMAT, "%s: member %s: the .npy header is not a dict", path, name);
    while (!take_char(&t, '}')) {
        char key[32], value[32];
        if (!take_string(&t, key, sizeof key) || !take_char(&t, ':'))
            return gan_error(GAN_ERR_FORMAT, "%s: member %s: malformed .npy header", path, name);
        if (!strcmp(key, "descr") && !have_descr) {
            have_descr = true;
            if (!take_string(&t, value, sizeof value))
                return gan_error(GAN_ERR_FORMAT, "%s: member %s: dtype is not a simple type (a structured array)",
                                 path, name);
            if (!strcmp(value, "<f8"))
                out->f64 = true;
            else if (strcmp(value, "<f4"))
                return gan_error(GAN_ERR_FORMAT, "%s: member %s has dtype '%s'; statistics are float64 ('<f8') or "
                                                 "float32 ('<f4')",
                                 path, name, value);
        } else if (!strcmp(key, "fortran_order") && !have_order) {
            have_order = true;
            if (take_word(&t, "True"))
                out->fortran = true;
            else if (!take_word(&t, "False"))
                return gan_error(GAN_ERR_FORMAT, "%s: member %s: 'fortran_order' is not True or False", path, name);
        } else if (!strcmp(key, "shape") && !have_shape) {
            have_shape = true;
            if (!take_char(&t, '('))
                return gan_error(GAN_ERR_FORMAT, "%s: member %s: 'shape' is not a tuple", path, name);
            while (!take_char(&t, ')')) {
                skip_blank(&t);
                if (t.p >= t.end || !isdigit((unsigned char)*t.p) || out->ndim == GAN_NPZ_MAX_DIMS)
                    return gan_error(GAN_ERR_FORMAT, "%s: member %s: malformed 'shape'", path, name);
                int64_t v = 0;
                while (t.p < t.end && isdigit((unsigned char)*t.p)) {
                    if (v > (INT64_MAX - 9) / 10)
                        return gan_error(GAN_ERR_FORMAT, "%s: member %s: a dimension is too large", path, name);
                    v = v * 10 + (*t.p++ - '0');
                }
                out->shape[out->ndim++] = v;
                if (!take_char(&t, ',')) {
                    if (take_char(&t, ')'))
                        break;
                    return gan_error(GAN_ERR_FORMAT, "%s: member %s: malformed 'shape'", path, name);
                }
            }
        } else {
            return gan_error(GAN_ERR_FORMAT, "%s: member %s: unexpected or repeated .npy header key '%s'", path, name,
                             key);
        }
        if (!take_char(&t, ',')) {
            if (take_char(&t, '}'))
                break;
            return gan_error(GAN_ERR_FORMAT, "%s: member %s: malformed .npy header", path, name);
        }
    }
    if (!have_descr || !have_order || !have_shape)
        return gan_error(GAN_ERR_FORMAT, "%s: member %s: the .npy header lacks '%s'", path, name,
                         !have_descr ? "descr" : !have_order ? "fortran_order" : "shape");
    uint64_t count = 1, item = out->f64 ? 8 : 4, data_bytes = size - prefix - header_len;
    for (int i = 0; i < out->ndim; i++) {
        if (out->shape[i] != 0 && count > data_bytes / (uint64_t)out->shape[i])
            count = UINT64_MAX / 16; /* more than the member holds: refused below */
        else
            count *= (uint64_t)out->shape[i];
    }
    if (count > data_bytes / item || count * item != data_bytes)
        return gan_error(GAN_ERR_FORMAT, "%s: member %s: its shape does not match its %llu bytes of data", path, name,
                         (unsigned long long)data_bytes);
    out->data = bytes + prefix + header_len;
    out->count = count;
    return GAN_OK;
}

/* Element i (C order) of the member as a double. */
static double member_value(const npy_member *m, uint64_t i)
{
    if (m->f64) {
        double v;
        memcpy(&v, m->data + i * 8, 8);
        return v;
    }
    float v;
    memcpy(&v, m->data + i * 4, 4);
    return v;
}

/* The member's values in C order into out[count]. */
static void member_to_c_order(const npy_member *m, double *out)
{
    if (!m->fortran || m->ndim < 2) {
        for (uint64_t i = 0; i < m->count; i++)
            out[i] = member_value(m, i);
        return;
    }
    /* Fortran order: the first index varies fastest. Walk the C-order index and its Fortran offset. */
    int64_t index[GAN_NPZ_MAX_DIMS] = {0};
    for (uint64_t i = 0; i < m->count; i++) {
        uint64_t offset = 0, stride = 1;
        for (int d = 0; d < m->ndim; d++) {
            offset += (uint64_t)index[d] * stride;
            stride *= (uint64_t)m->shape[d];
        }
        out[i] = member_value(m, offset);
        for (int d = m->ndim - 1; d >= 0; d--) {
            if (++index[d] < m->shape[d])
                break;
            index[d] = 0;
        }
    }
}

/* gan_npz_read with at most max_values values (UINT64_MAX: no limit but NPZ_MAX_MEMBER_BYTES). */
static gan_status read_member(const char *path, const char *name, uint64_t max_values, gan_npz_array *out)
{
    if (!path || !name || !out)
        return gan_error(GAN_ERR_ARG, "gan_npz_read: NULL argument");
    memset(out, 0, sizeof *out);
    out->name = name;
    int fd;
    size_t file_size;
    GAN_TRY(gan_input_open_regular(path, &fd, &file_size));
    zip_file z = {.path = path, .size = file_size};
    void *map = z.size ? mmap(NULL, z.size, PROT_READ, MAP_PRIVATE, fd, 0) : NULL;
    close(fd);
    if (z.size && map == MAP_FAILED)
        return gan_error(GAN_ERR_IO, "%s: mmap: %s", path, strerror(errno));
    z.bytes = map;
    gan_status status = GAN_OK;
    uint8_t *owned = NULL;
    char member[80], names[512];
    snprintf(member, sizeof member, "%s.npy", name);
    zip_member m = {0};
    bool found = false;
    const uint8_t *bytes = NULL;
    npy_member npy;
    GAN_CHECK(find_end(&z));
    GAN_CHECK(find_member(&z, member, &m, &found, names, sizeof names));
    if (!found) {
        status = gan_error(GAN_ERR_FORMAT, "%s: no array '%s' in this .npz (it holds: %s)", path, name,
                           names[0] ? names : "nothing");
        goto cleanup;
    }
    GAN_CHECK(member_bytes(&z, &m, member, max_values, &bytes, &owned));
    GAN_CHECK(parse_npy(path, member, bytes, m.uncompressed, &npy));
    if (npy.count > max_values) {
        char shape[160] = "";
        for (int d = 0, used = 0; d < npy.ndim && used < (int)sizeof shape; d++)
            used += snprintf(shape + used, sizeof shape - (size_t)used, "%s%lld", d ? ", " : "", (long long)npy.shape[d]);
        status = gan_error(GAN_ERR_FORMAT, "%s: member %s is [%s]: more than the %llu values expected", path, member,
                           shape, (unsigned long long)max_values);
        goto cleanup;
    }
    out->ndim = npy.ndim;
    memcpy(out->shape, npy.shape, sizeof out->shape);
    out->data = malloc(npy.count ? (size_t)npy.count * sizeof(double) : 1);
    if (!out->data) {
        status = gan_error(GAN_ERR_NOMEM, "%s: out of memory for %s", path, member);
        goto cleanup;
    }
    member_to_c_order(&npy, out->data);
cleanup:
    free(owned);
    if (map && map != MAP_FAILED)
        munmap(map, z.size);
    return status;
}

gan_status gan_npz_read(const char *path, const char *name, gan_npz_array *out)
{
    return read_member(path, name, UINT64_MAX, out);
}

gan_status gan_npz_read_at_most(const char *path, const char *name, uint64_t max_values, gan_npz_array *out)
{
    return read_member(path, name, max_values, out);
}

/* ---- writing ------------------------------------------------------------------------------ */

static void put16(uint8_t *p, uint32_t v) { p[0] = (uint8_t)v, p[1] = (uint8_t)(v >> 8); }
static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

enum { NPZ_MAX_WRITE = 16, NPY_HEADER_MAX = 256 };

gan_status gan_npz_write(const char *path, const gan_npz_array *arrays, int count)
{
    if (!path || !arrays || count < 1 || count > NPZ_MAX_WRITE)
        return gan_error(GAN_ERR_ARG, "gan_npz_write: 1 to %d arrays", NPZ_MAX_WRITE);
    /* per member: local header + name, the .npy header, the data; then the directory and its end */
    uint8_t local[NPZ_MAX_WRITE][LOCAL_HEADER_BYTES + 64], npy[NPZ_MAX_WRITE][NPY_HEADER_MAX];
    uint8_t central[NPZ_MAX_WRITE * (CENTRAL_HEADER_BYTES + 64)], end[END_BYTES];
    gan_file_piece pieces[3 * NPZ_MAX_WRITE + 2];
    size_t central_len = 0;
    uint64_t offset = 0;
    for (int i = 0; i < count; i++) {
        const gan_npz_array *a = &arrays[i];
        size_t name_len = a->name ? strlen(a->name) : 0;
        if (!name_len || name_len > 59 || a->ndim < 0 || a->ndim > GAN_NPZ_MAX_DIMS || !a->data)
            return gan_error(GAN_ERR_ARG, "gan_npz_write: array %d has no name, data or valid shape", i);
        char shape[160] = "";
        size_t used = 0;
        uint64_t values = 1;
        for (int d = 0; d < a->ndim; d++) {
            if (a->shape[d] < 0)
                return gan_error(GAN_ERR_ARG, "gan_npz_write: %s has a negative dimension", a->name);
            values *= (uint64_t)a->shape[d];
            used += (size_t)snprintf(shape + used, sizeof shape - used, "%lld,%s", (long long)a->shape[d],
                                     a->ndim > 1 && d < a->ndim - 1 ? " " : "");
        }
        if (a->ndim > 1)
            shape[used - 1] = '\0'; /* numpy writes (2, 3) but (4,) */
        char text[NPY_HEADER_MAX];
        int text_len = snprintf(text, sizeof text, "{'descr': '<f8', 'fortran_order': False, 'shape': (%s), }", shape);
        /* padded with spaces and a newline so the data starts on a 64-byte boundary, as numpy does */
        size_t header_total = ((size_t)10 + (size_t)text_len + 1 + 63) / 64 * 64;
        if (header_total > NPY_HEADER_MAX)
            return gan_error(GAN_ERR_ARG, "gan_npz_write: %s: shape too long", a->name);
        uint8_t *h = npy[i];
        memcpy(h, "\x93NUMPY\x01\x00", 8);
        put16(h + 8, (uint32_t)(header_total - 10));
        memset(h + 10, ' ', header_total - 10);
        memcpy(h + 10, text, (size_t)text_len);
        h[header_total - 1] = '\n';
        uint64_t data_bytes = values * sizeof(double), member_bytes = header_total + data_bytes;
        if (values > UINT64_MAX / 16 || member_bytes >= 0xFFFFFFFFu || offset + member_bytes + 200 >= 0xFFFFFFFFu)
            return gan_error(GAN_ERR_ARG, "%s: %s is too large for a .npz without ZIP64 (4 GiB)", path, a->name);
        uLong crc = crc32(0L, Z_NULL, 0);
        crc = crc32(crc, h, (uInt)header_total);
        for (uint64_t done = 0; done < data_bytes;) {
            uint64_t chunk = data_bytes - done > (1u << 30) ? (1u << 30) : data_bytes - done;
            crc = crc32(crc, (const Bytef *)a->data + done, (uInt)chunk);
            done += chunk;
        }
        char member[72];
        snprintf(member, sizeof member, "%s.npy", a->name);
        size_t member_len = strlen(member);
        uint8_t *l = local[i];
        memset(l, 0, LOCAL_HEADER_BYTES);
        put32(l, SIG_LOCAL);
        put16(l + 4, 20);     /* version needed: 2.0 */
        put16(l + 12, 0x21);  /* date 1980-01-01 */
        put32(l + 14, (uint32_t)crc);
        put32(l + 18, (uint32_t)member_bytes);
        put32(l + 22, (uint32_t)member_bytes);
        put16(l + 26, (uint32_t)member_len);
        memcpy(l + LOCAL_HEADER_BYTES, member, member_len);
        uint8_t *c = central + central_len;
        memset(c, 0, CENTRAL_HEADER_BYTES);
        put32(c, SIG_CENTRAL);
        put16(c + 4, 20);
        put16(c + 6, 20);
        put16(c + 14, 0x21);
        put32(c + 16, (uint32_t)crc);
        put32(c + 20, (uint32_t)member_bytes);
        put32(c + 24, (uint32_t)member_bytes);
        put16(c + 28, (uint32_t)member_len);
        put32(c + 38, 0600u << 16); /* external attributes: a regular file, rw------- */
        put32(c + 42, (uint32_t)offset);
        memcpy(c + CENTRAL_HEADER_BYTES, member, member_len);
        central_len += CENTRAL_HEADER_BYTES + member_len;
        pieces[3 * i] = (gan_file_piece){l, LOCAL_HEADER_BYTES + member_len};
        pieces[3 * i + 1] = (gan_file_piece){h, header_total};
        pieces[3 * i + 2] = (gan_file_piece){a->data, (size_t)data_bytes};
        offset += LOCAL_HEADER_BYTES + member_len + member_bytes;
    }
    memset(end, 0, sizeof end);
    put32(end, SIG_END);
    put16(end + 8, (uint32_t)count);
    put16(end + 10, (uint32_t)count);
    put32(end + 12, (uint32_t)central_len);
    put32(end + 16, (uint32_t)offset);
    pieces[3 * count] = (gan_file_piece){central, central_len};
    pieces[3 * count + 1] = (gan_file_piece){end, sizeof end};
    return gan_file_write_atomic(path, pieces, 3 * count + 2);
}
