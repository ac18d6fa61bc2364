/* secret: secret references (literal, env:, file:, cred:) and resolution. */
#include "secret.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#define CRED_NAME_MAX 255

static void
zfree(char *s)
{
    if (s == NULL)
        return;
    sodium_memzero(s, strlen(s));
    free(s);
}

static enum secret_kind
kind_of(const char *ref)
{
    if (ref == NULL)
        return SECRET_UNSET;
    if (strncmp(ref, "env:", 4) == 0)
        return SECRET_ENV;
    if (strncmp(ref, "file:", 5) == 0)
        return SECRET_FILE;
    if (strncmp(ref, "cred:", 5) == 0)
        return SECRET_CRED;
    return SECRET_LITERAL;
}

enum secret_kind
secret_kind(const struct secret *s)
{
    return kind_of(s->ref);
}

int
secret_check(const char *ref, const char **why)
{
    const char *p;

    switch (kind_of(ref)) {
    case SECRET_UNSET:
        *why = "missing secret";
        return -1;
    case SECRET_LITERAL:
        if (*ref == '\0') {
            *why = "empty secret";
            return -1;
        }
        return 0;
    case SECRET_ENV:
        p = ref + 4;
        if (*p == '\0') {
            *why = "env: needs a variable name (env:NAME)";
            return -1;
        }
        if (!(*p == '_' || (*p >= 'A' && *p <= 'Z') ||
              (*p >= 'a' && *p <= 'z')) ||
            strspn(p, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                      "0123456789_") != strlen(p)) {
            *why = "env: variable names are letters, digits and _";
            return -1;
        }
        return 0;
    case SECRET_FILE:
        if (ref[5] == '\0') {
            *why = "file: needs a path (file:/PATH)";
            return -1;
        }
        return 0;
    case SECRET_CRED:
        p = ref + 5;
        if (*p == '\0') {
            *why = "cred: needs a credential name (cred:NAME)";
            return -1;
        }
        if (strchr(p, '/') != NULL || strcmp(p, ".") == 0 ||
            strcmp(p, "..") == 0 || strlen(p) > CRED_NAME_MAX) {
            *why = "cred: takes a credential name, not a path";
            return -1;
        }
        return 0;
    }
    *why = "bad secret";
    return -1;
}

bool
secret_unknown_scheme(const char *ref)
{
    size_t n;

    if (ref == NULL || kind_of(ref) != SECRET_LITERAL)
        return false;
    n = strspn(ref, "abcdefghijklmnopqrstuvwxyz");
    return n > 0 && ref[n] == ':';
}

int
secret_set(struct secret *s, const char *ref, int line)
{
    char *dup = strdup(ref);

    if (dup == NULL)
        return -1;
    secret_release(s);
    s->ref = dup;
    s->line = line;
    return 0;
}

/* First line of a file, blanks trimmed, as a new string. */
static int
read_first_line(const char *path, const char *ref, char **out, char *err,
                size_t errlen)
{
    char buf[SECRET_MAX + 1];
    size_t len = 0;
    char *start, *end, *nl;
    int fd, rc = -1;

    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        snprintf(err, errlen, "%s: cannot read %s: %s", ref, path,
                 strerror(errno));
        return -1;
    }
    while (len < SECRET_MAX) {
        ssize_t r = read(fd, buf + len, SECRET_MAX - len);

        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            snprintf(err, errlen, "%s: cannot read %s: %s", ref, path,
                     strerror(errno));
            goto out;
        }
        if (r == 0)
            break;
        len += (size_t)r;
        if (memchr(buf, '\n', len) != NULL)
            break;
    }
    buf[len] = '\0';
    nl = memchr(buf, '\n', len);
    if (nl == NULL && len == SECRET_MAX) {
        snprintf(err, errlen, "%s: first line is longer than %d bytes", ref,
                 SECRET_MAX);
        goto out;
    }
    if (memchr(buf, '\0', nl != NULL ? (size_t)(nl - buf) : len) != NULL) {
        snprintf(err, errlen, "%s: first line contains a NUL byte", ref);
        goto out;
    }
    if (nl != NULL)
        *nl = '\0';
    start = buf;
    while (*start == ' ' || *start == '\t' || *start == '\r')
        start++;
    end = start + strlen(start);
    while (end > start &&
           (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r'))
        *--end = '\0';
    if (*start == '\0') {
        snprintf(err, errlen, "%s is empty", ref);
        goto out;
    }
    *out = strdup(start);
    if (*out == NULL) {
        snprintf(err, errlen, "%s: out of memory", ref);
        goto out;
    }
    rc = 0;
out:
    sodium_memzero(buf, sizeof(buf));
    close(fd);
    return rc;
}

int
secret_resolve(struct secret *s, char *err, size_t errlen)
{
    const char *why, *env, *dir;
    char *value = NULL, *path = NULL;
    int rc = -1;

    if (s->ref == NULL) {
        snprintf(err, errlen, "is not set");
        goto out;
    }
    if (secret_check(s->ref, &why) < 0) {
        snprintf(err, errlen, "%s", why);
        goto out;
    }
    switch (secret_kind(s)) {
    case SECRET_UNSET:
        break;
    case SECRET_LITERAL:
        value = strdup(s->ref);
        if (value == NULL)
            snprintf(err, errlen, "out of memory");
        break;
    case SECRET_ENV:
        env = getenv(s->ref + 4);
        if (env == NULL)
            snprintf(err, errlen, "%s is not set", s->ref);
        else if (*env == '\0')
            snprintf(err, errlen, "%s is empty", s->ref);
        else if ((value = strdup(env)) == NULL)
            snprintf(err, errlen, "out of memory");
        break;
    case SECRET_FILE:
        read_first_line(s->ref + 5, s->ref, &value, err, errlen);
        break;
    case SECRET_CRED:
        dir = getenv("CREDENTIALS_DIRECTORY");
        if (dir == NULL || *dir == '\0') {
            snprintf(err, errlen,
                     "%s: CREDENTIALS_DIRECTORY is not set "
                     "(use LoadCredential= in the systemd unit)",
                     s->ref);
            break;
        }
        if (asprintf(&path, "%s/%s", dir, s->ref + 5) < 0) {
            path = NULL;
            snprintf(err, errlen, "out of memory");
            break;
        }
        read_first_line(path, s->ref, &value, err, errlen);
        break;
    }
    if (value == NULL)
        goto out;
    zfree(s->value);
    s->value = value;
    rc = 0;
out:
    free(path);
    return rc;
}

const char *
secret_display(const struct secret *s)
{
    switch (secret_kind(s)) {
    case SECRET_UNSET:
        return "";
    case SECRET_LITERAL:
        return "<redacted>";
    default:
        return s->ref;
    }
}

void
secret_release(struct secret *s)
{
    if (s == NULL)
        return;
    zfree(s->ref);
    zfree(s->value);
    s->ref = NULL;
    s->value = NULL;
    s->line = 0;
}
