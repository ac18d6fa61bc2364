/* schema: parley's numbered SQLite migrations (PRAGMA user_version). */
#ifndef PARLEY_SCHEMA_H
#define PARLEY_SCHEMA_H

/*
 * Migration N turns a database at user_version N-1 into one at N.  The
 * rule (docs/storage.md): a released migration is never edited; a change
 * is a new migration appended to the table.  store.c runs each one in its
 * own transaction and sets user_version in the same transaction.
 */

/* The highest version this build knows. */
int schema_latest(void);

/* SQL of migration `version` (1..schema_latest()), NULL if out of range. */
const char *schema_sql(int version);

/* One word for logs ("core", "jobs"...), "?" if out of range. */
const char *schema_name(int version);

/*
 * 1 if migration `version` rewrites table text in sqlite_schema (under
 * writable_schema): the caller then bumps PRAGMA schema_version in the
 * same transaction, so every connection parses the tables again.
 */
int schema_rewrites(int version);

/*
 * PRAGMA application_id of a parley database ('PRLY'): a file that carries
 * another id is some other program's database and is never migrated.
 */
#define SCHEMA_APPLICATION_ID 0x50524c59

#endif
