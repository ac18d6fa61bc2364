/* ctl_codec: parleyctl's export formats — CSV (RFC 4180) and a JSON array
 * written one object at a time (json-c), so an export needs no memory
 * proportional to its size. */
#ifndef PARLEY_CTL_CODEC_H
#define PARLEY_CTL_CODEC_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

enum ctl_format {
    CTL_CSV = 0,
    CTL_JSON,
};

enum ctl_type {
    CTL_STR = 0, /* s; NULL is an empty CSV field / JSON null */
    CTL_INT,     /* i */
};

struct ctl_field {
    const char *name;
    enum ctl_type type;
    const char *s;
    int64_t i;
};

/* "csv" / "json" into *f; -1 if neither. */
int ctl_format_parse(const char *s, enum ctl_format *f);

/* One CSV field: quoted (with "" for ") when it holds , " CR or LF, or
 * starts or ends with a blank. */
void ctl_csv_field(FILE *out, const char *s);

/*
 * An export: ctl_export_begin (the CSV header line from the field names of
 * the first row's layout, or "["), ctl_export_row per row, ctl_export_end
 * ("]").  CSV lines end in CRLF (RFC 4180).  Each returns 0, or -1 on a
 * write error.
 */
int ctl_export_begin(FILE *out, enum ctl_format f, const struct ctl_field *row,
                     size_t n);
int ctl_export_row(FILE *out, enum ctl_format f, const struct ctl_field *row,
                   size_t n, long index);
int ctl_export_end(FILE *out, enum ctl_format f, long rows);

#endif
