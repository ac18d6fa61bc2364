/* test_config_value: value syntaxes and secret references of parley.conf. */
#include "config/secret.h"
#include "config/value.h"
#include "tests/t.h"

#include <stdlib.h>
#include <unistd.h>

static void
test_durations(void)
{
    static const struct {
        const char *in;
        int ok;
        int64_t ms;
        const char *why; /* substring of the reason when !ok */
    } cases[] = {
        {"0", 1, 0, NULL},
        {"0s", 1, 0, NULL},
        {"1500ms", 1, 1500, NULL},
        {"60s", 1, 60000, NULL},
        {"10m", 1, 600000, NULL},
        {"2h", 1, 7200000, NULL},
        {"1d", 1, 86400000, NULL},
        {"30d", 1, 2592000000LL, NULL},
        {"1m30s", 1, 90000, NULL},
        {"1h1ms", 1, 3600001, NULL},
        {"3650d", 1, 3650LL * 86400000, NULL},
        {"3651d", 0, 0, "too large"},
        {"99999999999999999999ms", 0, 0, "too large"},
        {"9223372036854775807ms", 0, 0, "too large"},
        {"-1s", 0, 0, "negative"},
        {"", 0, 0, "empty"},
        {"60", 0, 0, "missing unit"},
        {"10x", 0, 0, "unknown unit"},
        {"s", 0, 0, "expected a number"},
        {"1.5s", 0, 0, "unknown unit"},
        {"1 s", 0, 0, "unknown unit"},
        {"5sm", 0, 0, "expected a number"},
        {"1S", 0, 0, "unknown unit"},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int64_t ms = -7;
        const char *why = NULL;
        int rc = value_parse_duration(cases[i].in, &ms, &why);

        T_OKF(rc == (cases[i].ok ? 0 : -1), "duration \"%s\"", cases[i].in);
        if (cases[i].ok) {
            T_EQ_INT(ms, cases[i].ms);
        } else {
            T_EQ_INT(ms, -7);
            T_CONTAINS(why, cases[i].why);
        }
    }
}

static void
test_duration_format(void)
{
    static const struct {
        int64_t ms;
        const char *out;
    } cases[] = {
        {0, "0s"},
        {1, "1ms"},
        {1500, "1500ms"},
        {1000, "1s"},
        {60000, "1m"},
        {90000, "90s"},
        {3600000, "1h"},
        {86400000, "1d"},
        {2592000000LL, "30d"},
        {3600001, "3600001ms"},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char buf[VALUE_FORMAT_MAX];
        int64_t back = -1;
        const char *why;

        value_format_duration(cases[i].ms, buf, sizeof(buf));
        T_EQ_STR(buf, cases[i].out);
        T_EQ_INT(value_parse_duration(buf, &back, &why), 0);
        T_EQ_INT(back, cases[i].ms);
    }
}

static void
test_rates(void)
{
    static const struct {
        const char *in;
        int ok;
        int64_t n, window;
        const char *fmt; /* canonical form, or the reason */
    } cases[] = {
        {"off", 1, 0, 0, "off"},
        {"OFF", 1, 0, 0, "off"},
        {"30/60s", 1, 30, 60000, "30/1m"},
        {"1/1s", 1, 1, 1000, "1/1s"},
        {"200000/1d", 1, 200000, 86400000, "200000/1d"},
        {"20/m", 1, 20, 60000, "20/1m"},
        {"5/1500ms", 1, 5, 1500, "5/1500ms"},
        {"1000000000000/1s", 1, 1000000000000LL, 1000, "1000000000000/1s"},
        {"1000000000001/1s", 0, 0, 0, "out of range"},
        {"0/60s", 0, 0, 0, "write off"},
        {"-1/60s", 0, 0, 0, "out of range"},
        {"30", 0, 0, 0, "N/DURATION"},
        {"/60s", 0, 0, 0, "N/DURATION"},
        {"x/60s", 0, 0, 0, "integer"},
        {"30/", 0, 0, 0, "empty"},
        {"30/0s", 0, 0, 0, "longer than 0"},
        {"30/60", 0, 0, 0, "missing unit"},
        {"30/-5s", 0, 0, 0, "negative"},
        {"30/x", 0, 0, 0, "unknown unit"},
        {"30/60s/2", 0, 0, 0, "expected a number"},
        {"none", 0, 0, 0, "N/DURATION"},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct rate r = {-1, -1};
        const char *why = NULL;
        int rc = value_parse_rate(cases[i].in, &r, &why);

        T_OKF(rc == (cases[i].ok ? 0 : -1), "rate \"%s\"", cases[i].in);
        if (cases[i].ok) {
            char buf[VALUE_FORMAT_MAX];

            T_EQ_INT(r.n, cases[i].n);
            T_EQ_INT(r.window_ms, cases[i].window);
            value_format_rate(&r, buf, sizeof(buf));
            T_EQ_STR(buf, cases[i].fmt);
        } else {
            T_EQ_INT(r.n, -1);
            T_CONTAINS(why, cases[i].fmt);
        }
    }
}

static void
test_scalars(void)
{
    static const struct {
        const char *in;
        int ok;
        bool v;
    } bools[] = {
        {"true", 1, true},   {"TRUE", 1, true},   {"yes", 1, true},
        {"on", 1, true},     {"1", 1, true},      {"false", 1, false},
        {"No", 1, false},    {"off", 1, false},   {"0", 1, false},
        {"", 0, false},      {"maybe", 0, false}, {"2", 0, false},
        {"truee", 0, false},
    };
    static const struct {
        const char *in;
        int ok;
        int64_t v;
    } ints[] = {
        {"0", 1, 0},    {"42", 1, 42},
        {"-3", 1, -3},  {"100", 1, 100},
        {"101", 0, 0},  {"-101", 0, 0},
        {"", 0, 0},     {"-", 0, 0},
        {"1.0", 0, 0},  {"12a", 0, 0},
        {" 1", 0, 0},   {"+1", 0, 0},
        {"0x10", 0, 0}, {"99999999999999999999", 0, 0},
    };
    static const struct {
        const char *in;
        int ok;
        double v;
    } dbls[] = {
        {"0", 1, 0},       {"0.40", 1, 0.40}, {"1.60", 1, 1.60},
        {"1e-3", 1, 1e-3}, {"-1", 0, 0},      {"1001", 0, 0},
        {"nan", 0, 0},     {"inf", 0, 0},     {"0x1p3", 0, 0},
        {"1.2.3", 0, 0},   {"", 0, 0},        {"1,5", 0, 0},
    };
    const char *why;

    for (size_t i = 0; i < sizeof(bools) / sizeof(bools[0]); i++) {
        bool b = !bools[i].v;
        int rc = value_parse_bool(bools[i].in, &b, &why);

        T_OKF(rc == (bools[i].ok ? 0 : -1), "bool \"%s\"", bools[i].in);
        if (bools[i].ok)
            T_EQ_INT(b, bools[i].v);
        else
            T_CONTAINS(why, "true/false");
    }
    for (size_t i = 0; i < sizeof(ints) / sizeof(ints[0]); i++) {
        int64_t v = 7;
        int rc = value_parse_int(ints[i].in, -100, 100, &v, &why);

        T_OKF(rc == (ints[i].ok ? 0 : -1), "int \"%s\"", ints[i].in);
        T_EQ_INT(v, ints[i].ok ? ints[i].v : 7);
    }
    for (size_t i = 0; i < sizeof(dbls) / sizeof(dbls[0]); i++) {
        double v = 7;
        int rc = value_parse_double(dbls[i].in, 0, 1000, &v, &why);

        T_OKF(rc == (dbls[i].ok ? 0 : -1), "double \"%s\"", dbls[i].in);
        T_OK(v == (dbls[i].ok ? dbls[i].v : 7));
    }
}

static void
test_lists(void)
{
    static const struct {
        const char *in;
        int n; /* -1: error */
        const char *items[4];
    } cases[] = {
        {"", 0, {NULL}},
        {"   ", 0, {NULL}},
        {"a", 1, {"a"}},
        {" a ,b,  c  ", 3, {"a", "b", "c"}},
        {"main, backup", 2, {"main", "backup"}},
        {"a,,b", -1, {NULL}},
        {"a,", -1, {NULL}},
        {",a", -1, {NULL}},
        {"a, ,b", -1, {NULL}},
        {"a,b,c,d", -1, {NULL}}, /* max 3 */
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char **items = NULL;
        size_t n = 99;
        const char *why = NULL;
        int rc = value_split_list(cases[i].in, 3, &items, &n, &why);

        if (cases[i].n < 0) {
            T_OKF(rc == -1, "list \"%s\"", cases[i].in);
            T_OK(why != NULL);
            continue;
        }
        T_OKF(rc == 0, "list \"%s\"", cases[i].in);
        T_EQ_INT(n, cases[i].n);
        for (int j = 0; j < cases[i].n && j < (int)n; j++)
            T_EQ_STR(items[j], cases[i].items[j]);
        value_list_free(items, n);
    }
    value_list_free(NULL, 0);
}

static void
test_secret_refs(void)
{
    static const struct {
        const char *ref;
        enum secret_kind kind;
        int ok;
        bool unknown_scheme;
        const char *display;
    } cases[] = {
        {"123456:ABC-def", SECRET_LITERAL, 1, false, "<redacted>"},
        {"xoxb-1-2", SECRET_LITERAL, 1, false, "<redacted>"},
        {"evn:X", SECRET_LITERAL, 1, true, "<redacted>"},
        {"env:TELEGRAM_TOKEN", SECRET_ENV, 1, false, "env:TELEGRAM_TOKEN"},
        {"env:_a1", SECRET_ENV, 1, false, "env:_a1"},
        {"env:", SECRET_ENV, 0, false, NULL},
        {"env:1A", SECRET_ENV, 0, false, NULL},
        {"env:A-B", SECRET_ENV, 0, false, NULL},
        {"file:/etc/x", SECRET_FILE, 1, false, "file:/etc/x"},
        {"file:", SECRET_FILE, 0, false, NULL},
        {"cred:discord", SECRET_CRED, 1, false, "cred:discord"},
        {"cred:", SECRET_CRED, 0, false, NULL},
        {"cred:a/b", SECRET_CRED, 0, false, NULL},
        {"cred:..", SECRET_CRED, 0, false, NULL},
        {"", SECRET_LITERAL, 0, false, NULL},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct secret s = {0};
        const char *why = NULL;

        T_EQ_INT(secret_check(cases[i].ref, &why), cases[i].ok ? 0 : -1);
        T_EQ_INT(secret_unknown_scheme(cases[i].ref), cases[i].unknown_scheme);
        T_EQ_INT(secret_set(&s, cases[i].ref, 3), 0);
        T_EQ_INT(secret_kind(&s), cases[i].kind);
        if (cases[i].ok)
            T_EQ_STR(secret_display(&s), cases[i].display);
        else
            T_OK(why != NULL);
        secret_release(&s);
        T_OK(s.ref == NULL && s.value == NULL && s.line == 0);
    }
    {
        struct secret s = {0};

        T_EQ_INT(secret_kind(&s), SECRET_UNSET);
        T_EQ_STR(secret_display(&s), "");
        secret_release(&s);
        secret_release(NULL);
    }
}

static void
test_secret_resolve(void)
{
    char dir[] = "/tmp/parley-test-secret-XXXXXX";
    char path[512], err[256], ref[600];
    struct secret s = {0};
    FILE *f;

    T_OK(mkdtemp(dir) != NULL);

    /* literal */
    T_EQ_INT(secret_set(&s, "lit-123", 1), 0);
    T_EQ_INT(secret_resolve(&s, err, sizeof(err)), 0);
    T_EQ_STR(s.value, "lit-123");

    /* env */
    setenv("PARLEY_T_SECRET", "from-env", 1);
    T_EQ_INT(secret_set(&s, "env:PARLEY_T_SECRET", 1), 0);
    T_OK(s.value == NULL); /* a new reference drops the old value */
    T_EQ_INT(secret_resolve(&s, err, sizeof(err)), 0);
    T_EQ_STR(s.value, "from-env");
    unsetenv("PARLEY_T_SECRET_NOPE");
    T_EQ_INT(secret_set(&s, "env:PARLEY_T_SECRET_NOPE", 1), 0);
    T_EQ_INT(secret_resolve(&s, err, sizeof(err)), -1);
    T_EQ_STR(err, "env:PARLEY_T_SECRET_NOPE is not set");
    setenv("PARLEY_T_SECRET_EMPTY", "", 1);
    T_EQ_INT(secret_set(&s, "env:PARLEY_T_SECRET_EMPTY", 1), 0);
    T_EQ_INT(secret_resolve(&s, err, sizeof(err)), -1);
    T_CONTAINS(err, "is empty");

    /* file: first line, trimmed */
    snprintf(path, sizeof(path), "%s/tok", dir);
    f = fopen(path, "w");
    T_OK(f != NULL);
    fputs("  s3cret-from-file \t\r\nsecond line\n", f);
    fclose(f);
    snprintf(ref, sizeof(ref), "file:%s", path);
    T_EQ_INT(secret_set(&s, ref, 1), 0);
    T_EQ_INT(secret_resolve(&s, err, sizeof(err)), 0);
    T_EQ_STR(s.value, "s3cret-from-file");

    /* file without a newline at all */
    f = fopen(path, "w");
    fputs("no-newline", f);
    fclose(f);
    T_EQ_INT(secret_resolve(&s, err, sizeof(err)), 0);
    T_EQ_STR(s.value, "no-newline");

    /* empty file, blank first line */
    f = fopen(path, "w");
    fputs("   \nsecond\n", f);
    fclose(f);
    T_EQ_INT(secret_resolve(&s, err, sizeof(err)), -1);
    T_CONTAINS(err, "is empty");
    T_EQ_STR(s.value, "no-newline"); /* a failure keeps the old value */

    snprintf(ref, sizeof(ref), "file:%s/missing", dir);
    T_EQ_INT(secret_set(&s, ref, 1), 0);
    T_EQ_INT(secret_resolve(&s, err, sizeof(err)), -1);
    T_CONTAINS(err, "cannot read");
    T_CONTAINS(err, "No such file");

    /* cred */
    snprintf(path, sizeof(path), "%s/discord", dir);
    f = fopen(path, "w");
    fputs("cred-value\n", f);
    fclose(f);
    setenv("CREDENTIALS_DIRECTORY", dir, 1);
    T_EQ_INT(secret_set(&s, "cred:discord", 1), 0);
    T_EQ_INT(secret_resolve(&s, err, sizeof(err)), 0);
    T_EQ_STR(s.value, "cred-value");
    T_EQ_INT(secret_set(&s, "cred:nope", 1), 0);
    T_EQ_INT(secret_resolve(&s, err, sizeof(err)), -1);
    T_CONTAINS(err, "cred:nope: cannot read");
    unsetenv("CREDENTIALS_DIRECTORY");
    T_EQ_INT(secret_set(&s, "cred:discord", 1), 0);
    T_EQ_INT(secret_resolve(&s, err, sizeof(err)), -1);
    T_CONTAINS(err, "cred:discord: CREDENTIALS_DIRECTORY is not set");

    /* unset */
    secret_release(&s);
    T_EQ_INT(secret_resolve(&s, err, sizeof(err)), -1);
    T_CONTAINS(err, "not set");

    unlink(path);
    snprintf(path, sizeof(path), "%s/tok", dir);
    unlink(path);
    rmdir(dir);
}

int
main(void)
{
    test_durations();
    test_duration_format();
    test_rates();
    test_scalars();
    test_lists();
    test_secret_refs();
    test_secret_resolve();
    return t_done();
}
