/* secret: secret references (literal, env:, file:, cred:) and resolution. */
#ifndef PARLEY_SECRET_H
#define PARLEY_SECRET_H

#include <stdbool.h>
#include <stddef.h>

/*
 * A secret as written in the config (ref) and, once resolved, its value.
 * For a literal secret ref is the secret itself: both fields are zeroed
 * before they are freed, and only secret_display() may be shown to anyone.
 * ref == NULL means "not set".  line is where the config set it (0: never).
 */
struct secret {
    char *ref;
    char *value;
    int line;
};

enum secret_kind {
    SECRET_UNSET = 0,
    SECRET_LITERAL,
    SECRET_ENV,  /* env:NAME */
    SECRET_FILE, /* file:PATH, first line trimmed */
    SECRET_CRED, /* cred:NAME = $CREDENTIALS_DIRECTORY/NAME */
};

#define SECRET_MAX 16384 /* bytes read from a file: or cred: secret */

enum secret_kind secret_kind(const struct secret *s);
/* 0 when ref is well formed ("env:" needs a variable name, "file:" a path,
 * "cred:" a name without '/'); else -1 with a reason that never contains
 * the ref. */
int secret_check(const char *ref, const char **why);
/* true for "word:rest" where word is lowercase letters but not a known
 * form: probably a typo ("evn:X"), though it is taken as a literal. */
bool secret_unknown_scheme(const char *ref);
/* Replace the reference (the old one and any value are zeroed); -1 on
 * out of memory. */
int secret_set(struct secret *s, const char *ref, int line);
/*
 * Fill s->value from its reference.  I/O: reads the environment and files.
 * On failure -1 and err holds "env:NAME is not set" style text naming the
 * reference, never the value.
 */
int secret_resolve(struct secret *s, char *err, size_t errlen);
/* What may be shown: the reference ("env:X", "file:/p", "cred:x"),
 * "<redacted>" for a literal, "" when unset. */
const char *secret_display(const struct secret *s);
/* Zero and free ref and value; the struct is left unset.  NULL-safe. */
void secret_release(struct secret *s);

#endif
