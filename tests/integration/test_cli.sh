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
         openai_key openai_key_2 anthropic_key; do
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
# every secret of the example resolves from those credentials
ok '! grep -q "warning:.*cred:" "$T/err"'

# secrets are resolved too: run by systemd itself (ExecStartPre: parent
# PID 1, INVOCATION_ID set) one that fails is an error, else a warning
rm "$T/creds/openai_key_2"
INVOCATION_ID=test CREDENTIALS_DIRECTORY="$T/creds" \
    "$B/parleyd" --check-config -c "$S/examples/parley.conf" >"$T/out" 2>"$T/err"; rc=$?
ok '[ $rc -eq 0 ]'
ok 'grep -q "^warning: .*model.main.api_key: cred:openai_key_2.*(a warning" "$T/err"'
ok '! grep -q SECRET "$T/out" "$T/err"'
# as ExecStartPre: a PID namespace whose PID 1 is the shell that runs it
if unshare --pid --fork true 2>/dev/null; then
    INVOCATION_ID=test CREDENTIALS_DIRECTORY="$T/creds" PB="$B/parleyd" \
        PC="$S/examples/parley.conf" unshare --pid --fork sh -c \
        '"$PB" --check-config -c "$PC"; rc=$?; exit $rc' >"$T/out" 2>"$T/err"
    rc=$?
    ok '[ $rc -eq 1 ]'
    ok 'grep -q "^[^w].*model.main.api_key: cred:openai_key_2" "$T/err"'
    ok '! grep -q SECRET "$T/out" "$T/err"'
else
    echo "test_cli: unshare --pid not permitted, the ExecStartPre case skipped"
fi

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
