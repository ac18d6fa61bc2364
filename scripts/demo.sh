#!/bin/sh
# demo.sh BUILD: parley end to end on 127.0.0.1 — the real parleyd between
# fakes of Telegram, Discord, Slack and an OpenAI-compatible LLM. Prints
# what each platform's users see; exits non-zero if a conversation fails.
set -u
BUILD=${1:-build}
DEMO=$(mktemp -d /tmp/parley-demo-XXXXXX)
PIDS=""
cleanup() {
    for p in $PIDS; do kill "$p" 2>/dev/null; done
    wait 2>/dev/null
    rm -rf "$DEMO"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
fail=0

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
start_fake() { # NAME ARGS…: start BUILD/NAME, set PORT from its "port=N"
    out="$DEMO/$1.out"
    "$BUILD/$@" >"$out" 2>"$DEMO/$1.log" &
    PIDS="$PIDS $!"
    i=0
    while [ $i -lt 50 ] && ! grep -q port= "$out"; do sleep 0.1; i=$((i + 1)); done
    PORT=$(sed -n 's/^port=//p' "$out")
    [ -n "$PORT" ] || { echo "demo: $1 did not start"; exit 1; }
}
post() { curl -s -X POST -d "$2" "$1" >/dev/null; }
# print the "text"/"content" fields of a fake's JSON message list
# (the bot's only: Slack's list also holds the users' messages)
texts() {
    { cat; echo; } | sed 's/},{/}\n{/g' | grep -v '"bot":false' |
        sed -n 's/.*"\(text\|content\)":"\([^"]*\)".*/    bot: \2/p'
}
wait_for() { # URL PATTERN SECONDS
    i=0
    while [ $i -lt $(($3 * 10)) ]; do
        curl -s "$1" | grep -q "$2" && return 0
        sleep 0.1; i=$((i + 1))
    done
    echo "    (no answer within $3 s)"; fail=1; return 1
}

say "parleyd --version; --check-config examples/parley.conf"
"$BUILD/parleyd" --version
"$BUILD/parleyd" --check-config examples/parley.conf >"$DEMO/check.out" 2>"$DEMO/check.err"
echo "check-config: exit $? ($(wc -l <"$DEMO/check.out") lines; $(grep -c '^warning: .*cred:' "$DEMO/check.err") cred: secrets left to the unit's credentials; secrets redacted:"
grep -E "token|api_key" "$DEMO/check.out" | head -n 3 | sed 's/^/    /'
echo "    …)"
printf '[bot]\nfavourite_colour = blue\n' >"$DEMO/bad.conf"
"$BUILD/parleyd" --check-config "$DEMO/bad.conf"
echo "an unknown key: exit $?"

say "the fakes: LLM (OpenAI API), Telegram, Discord, Slack on 127.0.0.1"
start_fake fake_llm -p 0 -d 300 -S tokens=1,delay=80; LLM=$PORT
start_fake fake_telegram -p 0 -H 500; TG=$PORT
start_fake fake_discord -p 0 -H 1000; DC=$PORT
start_fake fake_slack -p 0; SL=$PORT
start_fake fake_echo -p 0; MET=$PORT # a free port for /metrics
kill "$(echo "$PIDS" | awk '{print $NF}')"; wait "$(echo "$PIDS" | awk '{print $NF}')" 2>/dev/null
echo "llm=$LLM telegram=$TG discord=$DC slack=$SL metrics=$MET"

cat >"$DEMO/parley.conf" <<CONF
[bot]
state_dir = $DEMO/state
admins = telegram:1001
log_level = info
metrics_listen = 127.0.0.1:$MET

[telegram]
token = env:TELEGRAM_TOKEN
api_base = http://127.0.0.1:$TG
poll_timeout = 1s

[discord]
token = env:DISCORD_TOKEN
api_base = http://127.0.0.1:$DC/api/v10

[slack]
app_token = env:SLACK_APP_TOKEN
bot_token = env:SLACK_BOT_TOKEN
api_base = http://127.0.0.1:$SL/api

[limits]
user = 3/60s

[llm]
models = main
system_prompt = You are parley's demo bot.

[model.main]
api = openai
base_url = http://127.0.0.1:$LLM/v1
api_key = env:OPENAI_API_KEY
name = gpt-demo
CONF
export TELEGRAM_TOKEN=123456:TEST-token_abc DISCORD_TOKEN=fake.discord.token-123
export SLACK_APP_TOKEN=xapp-1-A0TEST-1-fake SLACK_BOT_TOKEN=xoxb-1-fake
export OPENAI_API_KEY=sk-demo-0123456789

say "parleyd starts (its log follows on stderr)"
"$BUILD/parleyd" -c "$DEMO/parley.conf" 2>"$DEMO/parleyd.log" &
PARLEYD=$!
PIDS="$PIDS $PARLEYD"
i=0
until curl -s "http://127.0.0.1:$MET/healthz" | grep -q '"status":"ok"' || [ $i -ge 100 ]; do
    sleep 0.1; i=$((i + 1))
done
echo "GET /healthz → $(curl -s "http://127.0.0.1:$MET/healthz")"

say "Answers stream: each is posted at its first words, then edited (parley_stream_edits_total below)"
say "Telegram: a private chat, then a group (answered only when mentioned)"
echo "    Ann: hello parley"
post "http://127.0.0.1:$TG/_fake/message" '{"chat":1001,"type":"private","from":1001,"name":"Ann","text":"hello parley"}'
wait_for "http://127.0.0.1:$TG/_fake/sent?chat=1001" "echo: hello parley" 10 &&
    curl -s "http://127.0.0.1:$TG/_fake/sent?chat=1001" | texts
echo "    Cy (group): just chatting, no mention"
post "http://127.0.0.1:$TG/_fake/message" '{"chat":-5005,"type":"group","from":3003,"name":"Cy","text":"just chatting"}'
echo "    Cy (group): @ParleyBot summarise please"
post "http://127.0.0.1:$TG/_fake/message" '{"chat":-5005,"type":"group","from":3003,"name":"Cy","text":"@ParleyBot summarise please"}'
wait_for "http://127.0.0.1:$TG/_fake/sent?chat=-5005" "echo: Cy: summarise" 10 &&
    curl -s "http://127.0.0.1:$TG/_fake/sent?chat=-5005" | texts

say "Telegram: Bob floods (user = 3/60s): three answers, one 429 notice"
for n in 1 2 3 4 5; do
    echo "    Bob: question $n"
    post "http://127.0.0.1:$TG/_fake/message" "{\"chat\":2002,\"type\":\"private\",\"from\":2002,\"name\":\"Bob\",\"text\":\"question $n\"}"
done
# answers stream (a post, then edits): wait until all three are whole
wait_for "http://127.0.0.1:$TG/_fake/sent?chat=2002" \
    '"text":"echo: question [0-9]".*"text":"echo: question [0-9]".*"text":"echo: question [0-9]"' 15 &&
    curl -s "http://127.0.0.1:$TG/_fake/sent?chat=2002" | texts

say "Discord: a mention in a guild channel"
echo "    dana: <@424242424242424242> what is parley?"
post "http://127.0.0.1:$DC/_fake/message" '{"channel":"900","guild":"800","author":"700","name":"dana","content":"<@424242424242424242> what is parley?"}'
wait_for "http://127.0.0.1:$DC/_fake/sent?channel=900" "echo: .*what is parley" 15 &&
    curl -s "http://127.0.0.1:$DC/_fake/sent?channel=900" | texts

say "Slack: a mention in a channel (answered in its thread), and a DM"
echo "    eve: @parley how are you?"
post "http://127.0.0.1:$SL/_fake/mention" '{"channel":"C100","user":"U200","text":"how are you?"}'
wait_for "http://127.0.0.1:$SL/_fake/messages?channel=C100" "echo: .*how are you" 15 &&
    curl -s "http://127.0.0.1:$SL/_fake/messages?channel=C100" | texts
echo "    eve (DM): hi in private"
post "http://127.0.0.1:$SL/_fake/dm" '{"channel":"D300","user":"U200","text":"hi in private"}'
wait_for "http://127.0.0.1:$SL/_fake/messages?channel=D300" "echo: .*hi in private" 15 &&
    curl -s "http://127.0.0.1:$SL/_fake/messages?channel=D300" | texts

sleep 0.5 # the last feedback reactions
say "GET /metrics (a few lines)"
curl -s "http://127.0.0.1:$MET/metrics" |
    grep -E '^parley_(messages_received|answers_sent|limited|llm_requests|llm_tokens|stream_edits)' | sed 's/^/    /'

say "SIGTERM: a graceful stop"
kill -TERM $PARLEYD
wait $PARLEYD
echo "parleyd exited with $?"
say "parleyd's log"
sed 's/^/    /' "$DEMO/parleyd.log" | tail -n 25
if [ $fail -ne 0 ]; then
    say "demo: a conversation did not complete"
    exit 1
fi
say "demo done: the same binary, three platforms, one loop"
