#!/bin/sh
# test_cli: parleyd's flags — --version, --help, --check-config (SPEC §1).
B=${PARLEY_BUILD:-build}
S=${PARLEY_SRCDIR:-.}
T=$(mktemp -d /tmp/parley-cli-XXXXXX)
trap 'rm -rf "$T"' EXIT
checks=0 failed=0
ok() { checks=$((checks + 1)); if ! eval "$1"; then failed=$((failed + 1)); echo "FAIL: $1"; fi; }

"$B/parleyd" --version >"$T/out" 2>&1; rc=$?
ok '[ $rc -eq 0 ]'
ok 'grep -q "^parleyd [0-9]" "$T/out"'
"$B/parleyd" -V >"$T/out" 2>&1; ok '[ $? -eq 0 ]'

"$B/parleyd" --help >"$T/out" 2>&1; rc=$?
ok '[ $rc -eq 0 ]'
ok 'grep -q -- "--check-config" "$T/out"'
ok 'grep -q -- "--config FILE" "$T/out"'

"$B/parleyd" --bogus >"$T/out" 2>&1; rc=$?
ok '[ $rc -eq 1 ]'
"$B/parleyd" extra-arg >"$T/out" 2>&1; rc=$?
ok '[ $rc -eq 1 ]'

# the example config: valid, and no secret value is printed even when the
# referenced secrets exist in the environment and credentials directory
mkdir -p "$T/creds"
for c in telegram_token discord_token slack_app_token slack_bot_token \
         openai_api_key openai_api_key_2 anthropic_api_key; do
    echo "SECRET-$c-0123456789" >"$T/creds/$c"
done
CREDENTIALS_DIRECTORY="$T/creds" TELEGRAM_TOKEN=SECRET-env-0123456789 \
    "$B/parleyd" --check-config -c "$S/examples/parley.conf" >"$T/out" 2>"$T/err"; rc=$?
ok '[ $rc -eq 0 ]'
ok '! grep -q SECRET "$T/out" "$T/err"'
ok 'grep -q "^\[bot\]" "$T/out"'
ok 'grep -q "^\[telegram\]" "$T/out"'
ok 'grep -q "^\[retry\]" "$T/out"'
[ $rc -ne 0 ] && cat "$T/err"

# a literal secret is redacted
printf '[telegram]\nenabled = true\ntoken = 123:SECRET-literal\n[llm]\nmodels =\n' >"$T/lit.conf"
"$B/parleyd" --check-config -c "$T/lit.conf" >"$T/out" 2>"$T/err"; rc=$?
ok '! grep -q SECRET-literal "$T/out" "$T/err"'

# the file may also be given as --check-config's argument (issue 2)
"$B/parleyd" --check-config "$S/examples/parley.conf" >"$T/out2" 2>"$T/err"; rc=$?
ok '[ $rc -eq 0 ]'
ok 'cmp -s "$T/out" "$T/out2" || grep -q "^\[bot\]" "$T/out2"'

# an unknown key: exit 1 with FILE:LINE:
printf '[bot]\nlog_level = info\nfavourite_colour = blue\n' >"$T/bad.conf"
"$B/parleyd" --check-config -c "$T/bad.conf" >"$T/out" 2>"$T/err"; rc=$?
ok '[ $rc -eq 1 ]'
ok 'grep -q "^$T/bad.conf:3: " "$T/err"'
ok '[ ! -s "$T/out" ]'
"$B/parleyd" --check-config "$T/bad.conf" >"$T/out" 2>"$T/err"; rc=$?
ok '[ $rc -eq 1 ]'
ok 'grep -q "^$T/bad.conf:3: .*favourite_colour" "$T/err"'

# an unknown section
printf '[bot]\n[nonsense]\n' >"$T/bad2.conf"
"$B/parleyd" --check-config -c "$T/bad2.conf" >"$T/out" 2>"$T/err"; rc=$?
ok '[ $rc -eq 1 ]'
ok 'grep -q "^$T/bad2.conf:2: " "$T/err"'

# a missing file
"$B/parleyd" --check-config -c "$T/none.conf" >"$T/out" 2>"$T/err"; rc=$?
ok '[ $rc -eq 1 ]'
ok 'grep -q "none.conf" "$T/err"'

# no platform enabled: valid, with a warning
printf '[bot]\nstate_dir = %s\n' "$T" >"$T/empty.conf"
"$B/parleyd" --check-config -c "$T/empty.conf" >"$T/out" 2>"$T/err"; rc=$?
ok '[ $rc -eq 0 ]'
ok 'grep -qi "no platform" "$T/err"'

echo "$checks checks, $failed failed"
[ $failed -eq 0 ]
