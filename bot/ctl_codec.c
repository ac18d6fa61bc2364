/* ctl_codec: parleyctl's export formats — CSV (RFC 4180) and a JSON array
 * written one object at a time (json-c). */
#include "bot/ctl_codec.h"

#include <inttypes.h>
#include <json-c/json.h>
#include <string.h>

int
ctl_format_parse(const char *s, enum ctl_format *f)
{
    if (strcmp(s, "csv") == 0)
        *f = CTL_CSV;
    else if (strcmp(s, "json") == 0)
        *f = CTL_JSON;
    else
        return -1;
    return 0;
}

void
ctl_csv_field(FILE *out, const char *s)
{
    size_t n;

    if (s == NULL)
        return;
    n = strlen(s);
    /* spreadsheets trim unquoted blanks at the ends: quote those too */
    if (strpbrk(s, ",\"\r\n") == NULL &&
        (n == 0 || (s[0] != ' ' && s[n - 1] != ' '))) {
        fputs(s, out);
        return;
    }
    fputc('"', out);
    for (; *s != '\0'; s++) {
        if (*s == '"')
            fputc('"', out);
        fputc(*s, out);
    }
    fputc('"', out);
}

int
ctl_export_begin(FILE *out, enum ctl_format f, const struct ctl_field *row,
                 size_t n)
{
    if (f == CTL_JSON) {
        fputs("[", out);
    } else {
        for (size_t i = 0; i < n; i++) {
            if (i > 0)
                fputc(',', out);
            ctl_csv_field(out, row[i].name);
        }
        fputs("\r\n", out);
    }
    return ferror(out) ? -1 : 0;
}

int
ctl_export_row(FILE *out, enum ctl_format f, const struct ctl_field *row,
               size_t n, long index)
{
    json_object *o;
    int rc = 0;

    if (f == CTL_CSV) {
        for (size_t i = 0; i < n; i++) {
            if (i > 0)
                fputc(',', out);
            if (row[i].type == CTL_INT)
                fprintf(out, "%" PRId64, row[i].i);
            else
                ctl_csv_field(out, row[i].s);
        }
        fputs("\r\n", out);
        return ferror(out) ? -1 : 0;
    }
    if ((o = json_object_new_object()) == NULL)
        return -1;
    for (size_t i = 0; i < n; i++) {
        json_object *v;

        if (row[i].type == CTL_INT)
            v = json_object_new_int64(row[i].i);
        else
            v = row[i].s != NULL ? json_object_new_string(row[i].s) : NULL;
        if (row[i].type == CTL_INT || row[i].s != NULL) {
            if (v == NULL) {
                rc = -1;
                break;
            }
        }
        json_object_object_add(o, row[i].name, v);
    }
    if (rc == 0) {
        fprintf(
            out, "%s\n  %s", index > 0 ? "," : "",
            json_object_to_json_string_ext(
                o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
        rc = ferror(out) ? -1 : 0;
    }
    json_object_put(o);
    return rc;
}

int
ctl_export_end(FILE *out, enum ctl_format f, long rows)
{
    if (f == CTL_JSON)
        fputs(rows > 0 ? "\n]\n" : "]\n", out);
    fflush(out);
    return ferror(out) ? -1 : 0;
}
