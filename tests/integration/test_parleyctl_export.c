/* test_parleyctl_export: parleyctl's CSV and JSON exports of tricky text,
 * parsed back with an RFC 4180 reader and json-c (SPEC §10). */
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "storage/store.h"
#include "tests/t.h"

#define OUT_MAX (4 * 1024 * 1024) /* bytes of one export kept */
#define CTL_SECONDS 20            /* a hung parleyctl is killed after it */
#define CSV_ROWS_MAX 1000
#define CSV_FIELDS_MAX 64

/* quotes, commas, CR/LF, CJK, a dash, a check mark, an emoji */
static const char Q[] = "He said \"hi\", then\r\nleft; 日本語 — ✓ 👍";
/* leading and trailing blanks, quotes, a comma, LF, a tab */
static const char A[] = " answer, with \"quotes\"\nand a second line\tand tab ";

static char dir[64], conf[128], db[128];

/* ---- an RFC 4180 reader ---------------------------------------------- */

struct csv {
    size_t nrows;
    size_t nfields[CSV_ROWS_MAX];
    char *field[CSV_ROWS_MAX][CSV_FIELDS_MAX];
    size_t bare_lf; /* records ended by LF alone, not CRLF */
};

static void
csv_free(struct csv *c)
{
    for (size_t r = 0; r < c->nrows; r++)
        for (size_t i = 0; i < c->nfields[r]; i++)
            free(c->field[r][i]);
    memset(c, 0, sizeof(*c));
}

/* Ends the field in buf[0..n) as field i of the current row. */
static int
csv_add(struct csv *c, const char *buf, size_t n)
{
    size_t r = c->nrows, i = c->nfields[r];
    char *s;

    if (i >= CSV_FIELDS_MAX || (s = malloc(n + 1)) == NULL)
        return -1;
    memcpy(s, buf, n);
    s[n] = '\0';
    c->field[r][i] = s;
    c->nfields[r]++;
    return 0;
}

/*
 * Records end in CRLF (a bare LF is accepted and counted); quoted fields
 * keep their bytes verbatim, CR and LF included, with "" for a quote.  A
 * quote inside an unquoted field, bytes after a closing quote or an
 * unterminated quote are errors.  0 or -1 (c is freed on error).
 */
static int
csv_parse(struct csv *c, const char *in, size_t len)
{
    char *buf = malloc(len + 1);
    size_t i = 0, n = 0;
    int rc = -1;

    memset(c, 0, sizeof(*c));
    if (buf == NULL)
        return -1;
    while (i < len) {
        int quoted = in[i] == '"';

        if (c->nrows >= CSV_ROWS_MAX)
            goto out;
        n = 0;
        if (quoted) {
            for (i++;; i++) {
                if (i >= len)
                    goto out; /* unterminated */
                if (in[i] == '"') {
                    if (i + 1 < len && in[i + 1] == '"') {
                        buf[n++] = '"';
                        i++;
                        continue;
                    }
                    i++;
                    break;
                }
                buf[n++] = in[i];
            }
        } else {
            for (; i < len && in[i] != ',' && in[i] != '\r' && in[i] != '\n';
                 i++) {
                if (in[i] == '"')
                    goto out;
                buf[n++] = in[i];
            }
        }
        if (csv_add(c, buf, n))
            goto out;
        if (i < len && in[i] == ',') {
            i++;
            if (i == len && csv_add(c, "", 0)) /* "a," at the very end */
                goto out;
            continue;
        }
        if (i < len && in[i] == '\r' && i + 1 < len && in[i + 1] == '\n') {
            i += 2;
        } else if (i < len && in[i] == '\n') {
            c->bare_lf++;
            i++;
        } else if (i < len) {
            goto out; /* after a closing quote, or a lone CR */
        }
        c->nrows++;
    }
    if (c->nrows < CSV_ROWS_MAX && c->nfields[c->nrows] > 0)
        c->nrows++; /* the last record had no line end */
    rc = 0;
out:
    free(buf);
    if (rc) {
        c->nrows += c->nrows < CSV_ROWS_MAX && c->nfields[c->nrows] > 0;
        csv_free(c);
    }
    return rc;
}

/* Field `col` (named by the header row) of data row i, or NULL. */
static const char *
csv_get(const struct csv *c, size_t i, const char *col)
{
    if (c->nrows == 0 || i + 1 >= c->nrows)
        return NULL;
    for (size_t k = 0; k < c->nfields[0]; k++)
        if (strcmp(c->field[0][k], col) == 0)
            return k < c->nfields[i + 1] ? c->field[i + 1][k] : NULL;
    return NULL;
}

/* The reader itself, on the cases the exports rely on. */
static void
test_csv_reader(void)
{
    static const struct {
        const char *in;
        int rc;
        size_t rows, bare_lf;
        const char *cells; /* every cell of every row, '|'-joined */
    } cases[] = {
        {"a,b\r\n1,2\r\n", 0, 2, 0, "a|b|1|2"},
        {"a,b\n1,2", 0, 2, 1, "a|b|1|2"},
        {"\"x \"\"y\"\"\",\r\n", 0, 1, 0, "x \"y\"|"},
        {"\"l1\r\nl2\",\" lead\"\r\n", 0, 1, 0, "l1\r\nl2| lead"},
        {"\"\"\r\n", 0, 1, 0, ""},
        {"a,\"b,c\",d\r\n", 0, 1, 0, "a|b,c|d"},
        {"\"open\r\n", -1, 0, 0, NULL},
        {"a\"b\r\n", -1, 0, 0, NULL},
        {"\"a\"b\r\n", -1, 0, 0, NULL},
        {"a\rb\r\n", -1, 0, 0, NULL},
    };

    for (size_t t = 0; t < sizeof(cases) / sizeof(cases[0]); t++) {
        struct csv *c = calloc(1, sizeof(*c));
        char joined[256] = "";
        int rc;

        if (c == NULL)
            return;
        rc = csv_parse(c, cases[t].in, strlen(cases[t].in));
        T_OKF(rc == cases[t].rc, "case %zu rc %d", t, rc);
        if (rc == 0) {
            T_OKF(c->nrows == cases[t].rows, "case %zu rows %zu", t, c->nrows);
            T_OKF(c->bare_lf == cases[t].bare_lf, "case %zu", t);
            for (size_t r = 0; r < c->nrows; r++)
                for (size_t i = 0; i < c->nfields[r]; i++) {
                    if (r + i > 0)
                        strncat(joined, "|",
                                sizeof(joined) - strlen(joined) - 1);
                    strncat(joined, c->field[r][i],
                            sizeof(joined) - strlen(joined) - 1);
                }
            T_OKF(strcmp(joined, cases[t].cells) == 0, "case %zu: \"%s\"", t,
                  joined);
        }
        csv_free(c);
        free(c);
    }
}

/* ---- the database and parleyctl --------------------------------------- */

static int
write_conf(void)
{
    FILE *fp = fopen(conf, "w");

    if (fp == NULL)
        return -1;
    fprintf(fp,
            "[bot]\nstate_dir = %s\nadmins = telegram:999\n"
            "metrics_listen =\n[llm]\nmodels = main\n[model.main]\n"
            "api = openai\nbase_url = http://127.0.0.1:9\napi_key = sk-test\n"
            "name = m\n",
            dir);
    return fclose(fp) == 0 ? 0 : -1;
}

/* The schema from store_open(), then the rows test_parleyctl.sh had. */
static int
fill_db(void)
{
    static const struct {
        const char *sql;
        const char *text; /* bound to ?1, or NULL */
    } rows[] = {
        {"INSERT INTO conversations (id, platform, chat_id, thread_id, "
         "created_ms) VALUES (1, 'telegram', '-100', '', 1)",
         NULL},
        {"INSERT INTO messages (id, conversation_id, role, user_id, text, "
         "tokens, created_ms) VALUES (10, 1, 'user', '11', ?1, 3, "
         "1731000000000)",
         Q},
        {"INSERT INTO messages (id, conversation_id, role, user_id, text, "
         "tokens, created_ms) VALUES (11, 1, 'assistant', NULL, ?1, 4, "
         "1731000000001)",
         A},
        {"INSERT INTO answers (id, conversation_id, message_id, platform, "
         "user_id, model, created_ms) VALUES (5, 1, 11, 'telegram', '11', "
         "'main', 1731000000001)",
         NULL},
        {"INSERT INTO feedback (answer_id, platform, user_id, vote, "
         "created_ms, updated_ms) VALUES (5, 'telegram', '12', -1, "
         "1731000000002, 1731000000002)",
         NULL},
        {"INSERT INTO feedback (answer_id, platform, user_id, vote, "
         "created_ms, updated_ms) VALUES (5, 'telegram', '13', 1, "
         "1600000000000, 1600000000000)",
         NULL},
        {"INSERT INTO messages (id, conversation_id, role, user_id, text, "
         "tokens, created_ms) VALUES (12, 1, 'user', '14', 'other', 1, "
         "1731000000003)",
         NULL},
        {"INSERT INTO usage (scope, platform, target, day, requests, limited, "
         "tokens_in, tokens_out, cost_micro_usd) VALUES ('user', 'telegram', "
         "'11', 20040, 3, 1, 30, 20, 1500)",
         NULL},
        {"INSERT INTO stats_daily (day, requests, answers) VALUES (20040, 3, "
         "2)",
         NULL},
    };
    char err[256];
    struct store *st = store_open(db, err, sizeof(err));
    sqlite3 *h = NULL;
    int rc = -1;

    if (st == NULL) {
        fprintf(stderr, "store_open: %s\n", err);
        return -1;
    }
    store_close(st);
    if (sqlite3_open(db, &h) != SQLITE_OK)
        goto out;
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        sqlite3_stmt *s = NULL;
        int step;

        if (sqlite3_prepare_v2(h, rows[i].sql, -1, &s, NULL) != SQLITE_OK) {
            fprintf(stderr, "%s: %s\n", rows[i].sql, sqlite3_errmsg(h));
            goto out;
        }
        if (rows[i].text)
            sqlite3_bind_text(s, 1, rows[i].text, -1, SQLITE_STATIC);
        step = sqlite3_step(s);
        sqlite3_finalize(s);
        if (step != SQLITE_DONE) {
            fprintf(stderr, "%s: %s\n", rows[i].sql, sqlite3_errmsg(h));
            goto out;
        }
    }
    rc = 0;
out:
    sqlite3_close(h);
    return rc;
}

/*
 * Runs parleyctl -c conf ARGS... with stdout into *out (NUL-terminated,
 * at most OUT_MAX bytes, the rest read and dropped); stderr stays ours.
 * Returns the exit code, or -1 (killed: CTL_SECONDS is its bound).
 */
static int
run_ctl(char **out, size_t *out_len, const char *const *args)
{
    const char *build = getenv("PARLEY_BUILD");
    const char *argv[16] = {"parleyctl", "-c", conf};
    char bin[512], chunk[65536];
    size_t argc = 3, len = 0;
    char *buf = malloc(OUT_MAX + 1);
    int fds[2] = {-1, -1}, st, rc = -1;
    pid_t pid;

    *out = NULL;
    *out_len = 0;
    if (buf == NULL)
        return -1;
    snprintf(bin, sizeof(bin), "%s/parleyctl", build ? build : "build");
    for (; *args && argc < sizeof(argv) / sizeof(argv[0]) - 1; args++)
        argv[argc++] = *args;
    argv[argc] = NULL;
    if (pipe(fds))
        goto out;
    pid = fork();
    if (pid < 0)
        goto out;
    if (pid == 0) {
        dup2(fds[1], 1);
        close(fds[0]);
        close(fds[1]);
        alarm(CTL_SECONDS); /* survives exec: SIGALRM ends a hung child */
        execv(bin, (char *const *)(uintptr_t)argv);
        _exit(127);
    }
    close(fds[1]);
    fds[1] = -1;
    for (;;) {
        ssize_t n = read(fds[0], chunk, sizeof(chunk));

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        if ((size_t)n > OUT_MAX - len)
            n = (ssize_t)(OUT_MAX - len);
        memcpy(buf + len, chunk, (size_t)n);
        len += (size_t)n;
    }
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    rc = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
out:
    if (fds[0] >= 0)
        close(fds[0]);
    if (fds[1] >= 0)
        close(fds[1]);
    buf[len] = '\0';
    *out = buf;
    *out_len = len;
    return rc;
}

/* ---- the exports ------------------------------------------------------ */

static const char *
jstr(json_object *o, const char *key)
{
    json_object *v;

    return json_object_object_get_ex(o, key, &v) &&
                   json_object_is_type(v, json_type_string)
               ? json_object_get_string(v)
               : NULL;
}

static int64_t
jint(json_object *o, const char *key)
{
    json_object *v;

    return json_object_object_get_ex(o, key, &v) &&
                   json_object_is_type(v, json_type_int)
               ? json_object_get_int64(v)
               : INT64_MIN;
}

static void
test_feedback_csv(void)
{
    static const char *const args[] = {"feedback", "export", NULL};
    struct csv *c = calloc(1, sizeof(*c));
    char *out;
    size_t len;
    int found = 0, rc = run_ctl(&out, &len, args);

    T_EQ_INT(rc, 0);
    T_OK(len >= 2 && memcmp(out + len - 2, "\r\n", 2) == 0);
    T_EQ_INT(csv_parse(c, out, len), 0);
    T_EQ_INT(c->bare_lf, 0);
    T_EQ_INT(c->nrows, 3); /* the header and both votes */
    for (size_t i = 0; i + 1 < c->nrows; i++) {
        const char *voter = csv_get(c, i, "voter");

        if (voter == NULL || strcmp(voter, "12") != 0)
            continue;
        T_EQ_STR(csv_get(c, i, "question"), Q);
        T_EQ_STR(csv_get(c, i, "answer"), A);
        T_EQ_STR(csv_get(c, i, "vote"), "-1");
        T_EQ_STR(csv_get(c, i, "model"), "main");
        T_EQ_STR(csv_get(c, i, "chat"), "-100");
        found++;
    }
    T_EQ_INT(found, 1); /* voter 12's row, once */
    csv_free(c);
    free(c);
    free(out);
}

static void
test_feedback_json(void)
{
    static const char *const args[] = {"feedback", "export",  "--format",
                                       "json",     "--since", "2024-01-01",
                                       NULL};
    char *out;
    size_t len;
    json_object *a, *e;
    int rc = run_ctl(&out, &len, args);

    T_EQ_INT(rc, 0);
    a = json_tokener_parse(out);
    T_OK(a != NULL && json_object_is_type(a, json_type_array));
    /* --since drops the 2020 vote */
    T_EQ_INT(a ? json_object_array_length(a) : 0, 1);
    e = a && json_object_array_length(a) > 0 ? json_object_array_get_idx(a, 0)
                                             : NULL;
    T_OK(e != NULL);
    if (e) {
        T_EQ_STR(jstr(e, "question"), Q);
        T_EQ_STR(jstr(e, "answer"), A);
        T_EQ_INT(jint(e, "vote"), -1);
        T_EQ_STR(jstr(e, "time"), "2024-11-07T17:20:00Z");
    }
    json_object_put(a);
    free(out);
}

static void
test_history_json(void)
{
    static const char *const args[] = {"history", "export", "--format=json",
                                       "telegram:11", NULL};
    char *out;
    size_t len;
    json_object *a, *m0 = NULL, *m1 = NULL, *user = NULL;
    int rc = run_ctl(&out, &len, args);

    T_EQ_INT(rc, 0);
    a = json_tokener_parse(out);
    T_OK(a != NULL && json_object_is_type(a, json_type_array));
    /* the user's message and the reply to them, not user 14's */
    T_EQ_INT(a ? json_object_array_length(a) : 0, 2);
    if (a && json_object_array_length(a) == 2) {
        m0 = json_object_array_get_idx(a, 0);
        m1 = json_object_array_get_idx(a, 1);
    }
    T_OK(m0 != NULL && m1 != NULL);
    if (m0 && m1) {
        T_EQ_INT(jint(m0, "id"), 10);
        T_EQ_INT(jint(m1, "id"), 11);
        T_EQ_STR(jstr(m0, "text"), Q);
        T_EQ_STR(jstr(m1, "text"), A);
        /* present, and null: the assistant has no user id */
        T_OK(json_object_object_get_ex(m1, "user", &user));
        T_OK(json_object_get_type(user) == json_type_null);
    }
    json_object_put(a);
    free(out);
}

static void
test_history_csv(void)
{
    static const char *const args[] = {"history", "export", NULL};
    static const char *const texts[] = {Q, A, "other"};
    struct csv *c = calloc(1, sizeof(*c));
    char *out;
    size_t len;
    int rc = run_ctl(&out, &len, args);

    T_EQ_INT(rc, 0);
    T_EQ_INT(csv_parse(c, out, len), 0);
    T_EQ_INT(c->bare_lf, 0);
    T_EQ_INT(c->nrows, 4);
    for (size_t i = 0; i < 3; i++)
        T_EQ_STR(csv_get(c, i, "text"), texts[i]);
    T_EQ_STR(csv_get(c, 0, "id"), "10");
    csv_free(c);
    free(c);
    free(out);
}

int
main(void)
{
    const char *build = getenv("PARLEY_BUILD");
    char bin[512];

    snprintf(bin, sizeof(bin), "%s/parleyctl", build ? build : "build");
    if (access(bin, X_OK) != 0) {
        printf("parleyctl not built\n");
        return 77;
    }
    test_csv_reader();

    snprintf(dir, sizeof(dir), "/tmp/parley-ctlx-XXXXXX");
    if (mkdtemp(dir) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    snprintf(conf, sizeof(conf), "%s/p.conf", dir);
    snprintf(db, sizeof(db), "%s/parley.db", dir);
    T_EQ_INT(write_conf(), 0);
    T_EQ_INT(fill_db(), 0);

    test_feedback_csv();
    test_feedback_json();
    test_history_json();
    test_history_csv();

    {
        char cmd[128];

        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", dir);
    }
    return t_done();
}
