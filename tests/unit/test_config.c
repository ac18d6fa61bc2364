/* test_config: parley.conf parsing, defaults, validation, secrets, print. */
#include "config/config.h"
#include "tests/t.h"

#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#define FN "t.conf"

/* A valid head: one platform, one model.  Lines 1-9; cases append. */
#define OK_HEAD                                                                \
    "[telegram]\n"                                                             \
    "token = env:T\n"                                                          \
    "[llm]\n"                                                                  \
    "models = m\n"                                                             \
    "[model.m]\n"                                                              \
    "api = openai\n"                                                           \
    "base_url = http://127.0.0.1:1\n"                                          \
    "api_key = env:K\n"                                                        \
    "name = x\n"

static int
parse(const char *text, struct config **c, struct config_diag *d)
{
    memset(d, 0, sizeof(*d));
    return config_parse(text, strlen(text), FN, c, d);
}

/* The first entry of list that starts with prefix and contains sub. */
static const char *
diag_find(char **list, size_t n, const char *prefix, const char *sub)
{
    for (size_t i = 0; i < n; i++) {
        if (strncmp(list[i], prefix, strlen(prefix)) == 0 &&
            strstr(list[i], sub) != NULL)
            return list[i];
    }
    return NULL;
}

static void
diag_dump(const struct config_diag *d)
{
    for (size_t i = 0; i < d->nerrors; i++)
        fprintf(stderr, "    error: %s\n", d->errors[i]);
}

static char *
print_to_string(const struct config *c)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);

    if (f == NULL)
        return NULL;
    config_print(c, f);
    fclose(f);
    return buf;
}

static void
test_defaults(void)
{
    struct config *c = NULL;
    struct config_diag d;

    T_EQ_INT(parse("", &c, &d), 0);
    T_EQ_INT(d.nerrors, 0);
    T_EQ_INT(d.nwarnings, 1);
    T_OK(diag_find(d.warnings, d.nwarnings, FN ": ",
                   "no platform is enabled") != NULL);
    T_OK(c != NULL);
    if (c == NULL)
        goto out;
    T_EQ_STR(c->filename, FN);
    T_EQ_STR(c->bot.state_dir, "/var/lib/parley");
    T_EQ_INT(c->bot.nadmins, 0);
    T_EQ_INT(c->bot.log_level, LOG_LEVEL_INFO);
    T_EQ_STR(c->bot.metrics_listen, "127.0.0.1:9464");
    T_EQ_STR(c->bot.metrics_host, "127.0.0.1");
    T_EQ_INT(c->bot.metrics_port, 9464);

    T_EQ_INT(c->telegram.enabled, false);
    T_OK(c->telegram.token.ref == NULL);
    T_EQ_STR(c->telegram.api_base, "https://api.telegram.org");
    T_EQ_INT(c->telegram.poll_timeout, 50000);
    T_EQ_INT(c->telegram.chat_send_rate.n, 1);
    T_EQ_INT(c->telegram.chat_send_rate.window_ms, 1000);
    T_EQ_INT(c->telegram.group_send_rate.n, 20);
    T_EQ_INT(c->telegram.group_send_rate.window_ms, 60000);
    T_EQ_INT(c->telegram.global_send_rate.n, 30);
    T_EQ_INT(c->telegram.global_send_rate.window_ms, 1000);

    T_EQ_INT(c->discord.enabled, false);
    T_OK(c->discord.token.ref == NULL);
    T_EQ_STR(c->discord.api_base, "https://discord.com/api/v10");

    T_EQ_INT(c->slack.enabled, false);
    T_OK(c->slack.app_token.ref == NULL);
    T_OK(c->slack.bot_token.ref == NULL);
    T_EQ_STR(c->slack.api_base, "https://slack.com/api");
    T_EQ_INT(c->slack.channel_send_rate.n, 1);
    T_EQ_INT(c->slack.channel_send_rate.window_ms, 1000);

    T_EQ_INT(c->limits.user.n, 30);
    T_EQ_INT(c->limits.user.window_ms, 60000);
    T_EQ_INT(c->limits.chat.n, 120);
    T_EQ_INT(c->limits.chat.window_ms, 60000);
    T_EQ_INT(c->limits.global.n, 0);
    T_EQ_INT(c->limits.user_tokens.n, 200000);
    T_EQ_INT(c->limits.user_tokens.window_ms, 86400000);
    T_EQ_INT(c->limits.chat_tokens.n, 0);
    T_EQ_INT(c->limits.notice, CONFIG_NOTICE_ONCE);

    T_EQ_INT(c->llm.nmodels, 0);
    T_EQ_STR(c->llm.system_prompt,
             "You are a helpful assistant in a group chat. Be concise.");
    T_EQ_INT(c->llm.history_messages, 20);
    T_EQ_INT(c->llm.history_tokens, 6000);
    T_EQ_INT(c->llm.max_output_tokens, 1024);
    T_EQ_INT(c->llm.timeout, 60000);
    T_EQ_INT(c->llm.give_up_after, 600000);
    T_EQ_INT(c->llm.stream, true);
    T_EQ_INT(c->llm.stream_interval, 1500);

    T_EQ_INT(c->retry.attempts, 6);
    T_EQ_INT(c->retry.multiplier, 1000);
    T_EQ_INT(c->retry.min, 1000);
    T_EQ_INT(c->retry.max, 60000);
    T_EQ_INT(c->retry.jitter, CONFIG_JITTER_FULL);

    T_EQ_INT(c->nmodels, 0);
    T_EQ_INT(c->history.retention, 30LL * 86400000);
    T_OK(c->feedback.alert_ratio == 0.5);
    T_EQ_INT(c->feedback.alert_window, 20);
out:
    config_free(c);
    config_diag_release(&d);
}

static void
test_model_defaults(void)
{
    struct config *c = NULL;
    struct config_diag d;
    const struct config_model *m;

    T_EQ_INT(parse(OK_HEAD, &c, &d), 0);
    diag_dump(&d);
    T_EQ_INT(d.nerrors, 0);
    T_EQ_INT(d.nwarnings, 0);
    if (c == NULL)
        goto out;
    T_EQ_INT(c->telegram.enabled, true); /* section present */
    m = config_model_find(c, "m");
    T_OK(m != NULL);
    T_OK(config_model_find(c, "nope") == NULL);
    if (m == NULL)
        goto out;
    T_EQ_INT(m->line, 5);
    T_EQ_STR(m->name, "m");
    T_EQ_INT(m->api, CONFIG_API_OPENAI);
    T_EQ_STR(m->base_url, "http://127.0.0.1:1");
    T_EQ_INT(m->napi_keys, 1);
    T_EQ_STR(m->api_keys[0].ref, "env:K");
    T_EQ_INT(m->api_keys[0].line, 8);
    T_OK(m->api_keys[0].value == NULL);
    T_EQ_STR(m->model, "x");
    T_EQ_INT(m->context_window, 128000);
    T_EQ_INT(m->rpm, 500);
    T_EQ_INT(m->tpm, 200000);
    T_OK(m->price_in == 0.40);
    T_OK(m->price_out == 1.60);
out:
    config_free(c);
    config_diag_release(&d);
}

/* Every key set to something other than its default, in odd spellings. */
static const char all_keys[] =
    "\xEF\xBB\xBF; a BOM, then a comment\n"
    "# another comment\n"
    "[bot]\r\n"
    "  state_dir = /srv/parley   ; indented, CRLF above\n"
    "admins=telegram:11 , discord:22,slack:U033\n"
    "log_level = DEBUG\n"
    "metrics_listen = [::1]:9000\n"
    "[ telegram ]\n"
    "enabled = yes\n"
    "token = 123456:ABC-def\n"
    "api_base = http://127.0.0.1:8081/\n"
    "poll_timeout = 1m30s\n"
    "chat_send_rate = 2/s\n"
    "group_send_rate = 10/1m\n"
    "global_send_rate = 25/1500ms\n"
    "[discord]\n"
    "enabled = on\n"
    "token = cred:discord\n"
    "api_base = https://127.0.0.1:9/api//\n"
    "[slack]\n"
    "enabled = 1\n"
    "app_token = env:SLACK_APP_TOKEN\n"
    "bot_token = file:/run/slack bot\n"
    "api_base = http://localhost:7/api\n"
    "channel_send_rate = off\n"
    "[limits]\n"
    "user = 3/20s\n"
    "chat = off\n"
    "global = 1000/1h\n"
    "user_tokens = off\n"
    "chat_tokens = 5000/1d\n"
    "notice = always\n"
    "[llm]\n"
    "models = main , backup\n"
    "system_prompt = Be brief;no fluff \\; really ; this is a comment\n"
    "history_messages = 5\n"
    "history_tokens = 100\n"
    "max_output_tokens = 64\n"
    "timeout = 5s\n"
    "give_up_after = 1h\n"
    "stream = false\n"
    "stream_interval = 0\n"
    "[retry]\n"
    "attempts = 3\n"
    "multiplier = 500ms\n"
    "min = 250ms\n"
    "max = 2s\n"
    "jitter = equal\n"
    "[model.main]\n"
    "api = anthropic\n"
    "base_url = https://api.anthropic.com/v1/\n"
    "api_key = lit-key-1, env:KEY_2 ,file:/k3, cred:k4\n"
    "name = claude-x\n"
    "context_window = 200000\n"
    "rpm = 0\n"
    "tpm = 1000000000000\n"
    "price_in = 3\n"
    "price_out = 15.5\n"
    "[model.backup]\n"
    "api = OpenAI\n"
    "base_url = http://127.0.0.1:8/v1\n"
    "api_key = env:B\n"
    "name = local\n"
    "[history]\n"
    "retention = 0\n"
    "[feedback]\n"
    "alert_ratio = 0.25\n"
    "alert_window = 50\n";

static void
test_all_keys(void)
{
    struct config *c = NULL;
    struct config_diag d;
    const struct config_model *m;

    T_EQ_INT(parse(all_keys, &c, &d), 0);
    diag_dump(&d);
    T_EQ_INT(d.nerrors, 0);
    T_EQ_INT(d.nwarnings, 0);
    if (c == NULL)
        goto out;
    T_EQ_STR(c->bot.state_dir, "/srv/parley");
    T_EQ_INT(c->bot.nadmins, 3);
    if (c->bot.nadmins == 3) {
        T_EQ_INT(c->bot.admins[0].platform, CONFIG_PLATFORM_TELEGRAM);
        T_EQ_STR(c->bot.admins[0].user, "11");
        T_EQ_INT(c->bot.admins[1].platform, CONFIG_PLATFORM_DISCORD);
        T_EQ_STR(c->bot.admins[1].user, "22");
        T_EQ_INT(c->bot.admins[2].platform, CONFIG_PLATFORM_SLACK);
        T_EQ_STR(c->bot.admins[2].user, "U033");
    }
    T_EQ_INT(c->bot.log_level, LOG_LEVEL_DEBUG);
    T_EQ_STR(c->bot.metrics_listen, "[::1]:9000");
    T_EQ_STR(c->bot.metrics_host, "::1");
    T_EQ_INT(c->bot.metrics_port, 9000);

    T_EQ_INT(c->telegram.enabled, true);
    T_EQ_STR(c->telegram.token.ref, "123456:ABC-def");
    T_EQ_INT(c->telegram.token.line, 10);
    T_EQ_STR(c->telegram.api_base, "http://127.0.0.1:8081");
    T_EQ_INT(c->telegram.poll_timeout, 90000);
    T_EQ_INT(c->telegram.chat_send_rate.n, 2);
    T_EQ_INT(c->telegram.chat_send_rate.window_ms, 1000);
    T_EQ_INT(c->telegram.group_send_rate.n, 10);
    T_EQ_INT(c->telegram.group_send_rate.window_ms, 60000);
    T_EQ_INT(c->telegram.global_send_rate.n, 25);
    T_EQ_INT(c->telegram.global_send_rate.window_ms, 1500);

    T_EQ_INT(c->discord.enabled, true);
    T_EQ_STR(c->discord.token.ref, "cred:discord");
    T_EQ_STR(c->discord.api_base, "https://127.0.0.1:9/api");

    T_EQ_INT(c->slack.enabled, true);
    T_EQ_STR(c->slack.app_token.ref, "env:SLACK_APP_TOKEN");
    T_EQ_STR(c->slack.bot_token.ref, "file:/run/slack bot");
    T_EQ_STR(c->slack.api_base, "http://localhost:7/api");
    T_EQ_INT(c->slack.channel_send_rate.n, 0);

    T_EQ_INT(c->limits.user.n, 3);
    T_EQ_INT(c->limits.user.window_ms, 20000);
    T_EQ_INT(c->limits.chat.n, 0);
    T_EQ_INT(c->limits.global.n, 1000);
    T_EQ_INT(c->limits.global.window_ms, 3600000);
    T_EQ_INT(c->limits.user_tokens.n, 0);
    T_EQ_INT(c->limits.chat_tokens.n, 5000);
    T_EQ_INT(c->limits.chat_tokens.window_ms, 86400000);
    T_EQ_INT(c->limits.notice, CONFIG_NOTICE_ALWAYS);

    T_EQ_INT(c->llm.nmodels, 2);
    if (c->llm.nmodels == 2) {
        T_EQ_STR(c->llm.models[0], "main");
        T_EQ_STR(c->llm.models[1], "backup");
    }
    T_EQ_STR(c->llm.system_prompt, "Be brief;no fluff ; really");
    T_EQ_INT(c->llm.history_messages, 5);
    T_EQ_INT(c->llm.history_tokens, 100);
    T_EQ_INT(c->llm.max_output_tokens, 64);
    T_EQ_INT(c->llm.timeout, 5000);
    T_EQ_INT(c->llm.give_up_after, 3600000);
    T_EQ_INT(c->llm.stream, false);
    T_EQ_INT(c->llm.stream_interval, 0);

    T_EQ_INT(c->retry.attempts, 3);
    T_EQ_INT(c->retry.multiplier, 500);
    T_EQ_INT(c->retry.min, 250);
    T_EQ_INT(c->retry.max, 2000);
    T_EQ_INT(c->retry.jitter, CONFIG_JITTER_EQUAL);

    T_EQ_INT(c->nmodels, 2);
    m = config_model_find(c, "main");
    T_OK(m != NULL);
    if (m != NULL) {
        T_EQ_INT(m->api, CONFIG_API_ANTHROPIC);
        T_EQ_STR(m->base_url, "https://api.anthropic.com/v1");
        T_EQ_INT(m->napi_keys, 4);
        if (m->napi_keys == 4) {
            T_EQ_STR(m->api_keys[0].ref, "lit-key-1");
            T_EQ_STR(m->api_keys[1].ref, "env:KEY_2");
            T_EQ_STR(m->api_keys[2].ref, "file:/k3");
            T_EQ_STR(m->api_keys[3].ref, "cred:k4");
            T_EQ_INT(m->api_keys[3].line, 52);
        }
        T_EQ_STR(m->model, "claude-x");
        T_EQ_INT(m->context_window, 200000);
        T_EQ_INT(m->rpm, 0);
        T_EQ_INT(m->tpm, 1000000000000LL);
        T_OK(m->price_in == 3);
        T_OK(m->price_out == 15.5);
    }
    m = config_model_find(c, "backup");
    T_OK(m != NULL);
    if (m != NULL)
        T_EQ_INT(m->api, CONFIG_API_OPENAI);
    T_EQ_INT(c->history.retention, 0);
    T_OK(c->feedback.alert_ratio == 0.25);
    T_EQ_INT(c->feedback.alert_window, 50);
out:
    config_free(c);
    config_diag_release(&d);
}

static const struct {
    const char *text;
    const char *prefix; /* "t.conf:LINE: " */
    const char *msg;    /* substring of that error */
} error_cases[] = {
    /* structure */
    {"[foo]\n", FN ":1: ", "unknown section [foo]"},
    {"[bot]\n[Bot]\n", FN ":2: ", "unknown section [Bot]"},
    {"[model]\n", FN ":1: ", "unknown section [model]: a model is "},
    {"[model.a b]\n", FN ":1: ", "bad model name in [model.a b]"},
    {"[model.]\n", FN ":1: ", "bad model name"},
    {"[bot\n", FN ":1: ", "bad section header: missing ']'"},
    {"foo = 1\n", FN ":1: ", "key \"foo\" is outside of any section"},
    {"[bot]\nstate_dir\n", FN ":2: ", "expected \"key = value\""},
    {"[bot]\n= x\n", FN ":2: ", "missing key name"},
    {"[bot]\nfoo = 1\n", FN ":2: ", "unknown key \"foo\" in [bot]"},
    {"[bot]\n\n  Log_Level = info\n",
     FN ":3: ", "unknown key \"Log_Level\" in [bot]"},
    {"[bot]\nlog_level = info\nlog_level = warn\n",
     FN ":3: ", "duplicate key \"log_level\" in [bot] (first set on line 2)"},
    {"[bot]\nlog_level = info\n[llm]\n[bot]\nlog_level = warn\n",
     FN ":5: ", "duplicate key \"log_level\" in [bot]"},
    {"[model.m]\nfoo = 1\n", FN ":2: ", "unknown key \"foo\" in [model.m]"},
    {"[model.m]\napi = openai\napi = openai\n",
     FN ":3: ", "duplicate key \"api\" in [model.m] (first set on line 2)"},
    /* durations */
    {"[llm]\ntimeout = 10x\n",
     FN ":2: ", "llm.timeout: bad duration \"10x\": unknown unit"},
    {"[llm]\ntimeout = 60\n",
     FN ":2: ", "llm.timeout: bad duration \"60\": missing unit"},
    {"[llm]\ntimeout = -1s\n", FN ":2: ", "negative durations"},
    {"[history]\nretention = 99999999999999999999d\n",
     FN ":2: ", "history.retention: bad duration"},
    {"[history]\nretention = 3651d\n", FN ":2: ", "too large"},
    {"[llm]\ntimeout = 0s\n", FN ":2: ", "must be at least 1ms"},
    {"[telegram]\npoll_timeout = fast\n",
     FN ":2: ", "telegram.poll_timeout: bad duration \"fast\""},
    /* rates */
    {"[limits]\nuser = 30\n", FN ":2: ", "limits.user: bad rate \"30\""},
    {"[limits]\nuser = 0/60s\n", FN ":2: ", "write off to disable"},
    {"[limits]\nchat = 30/0s\n", FN ":2: ", "limits.chat: bad rate"},
    {"[limits]\nuser_tokens = many/1d\n",
     FN ":2: ", "limits.user_tokens: bad rate"},
    {"[slack]\nenabled = no\nchannel_send_rate = 1/1y\n",
     FN ":3: ", "slack.channel_send_rate: bad rate"},
    /* booleans, numbers, enums */
    {"[llm]\nstream = maybe\n",
     FN ":2: ", "llm.stream: bad boolean \"maybe\": expected true/false"},
    {"[telegram]\nenabled = 2\n", FN ":2: ", "telegram.enabled: bad boolean"},
    {"[llm]\nhistory_messages = 0\n", FN ":2: ",
     "llm.history_messages: bad integer \"0\": integer out of range"},
    {"[llm]\nhistory_messages = ten\n", FN ":2: ",
     "llm.history_messages: bad integer \"ten\": expected an integer"},
    {"[llm]\nmax_output_tokens = 1.5\n",
     FN ":2: ", "llm.max_output_tokens: bad integer"},
    {"[model.m]\ntpm = 99999999999999999999999\n",
     FN ":2: ", "model.m.tpm: bad integer"},
    {"[feedback]\nalert_ratio = 1.5\n", FN ":2: ",
     "feedback.alert_ratio: bad number \"1.5\": number out of range"},
    {"[feedback]\nalert_ratio = half\n",
     FN ":2: ", "feedback.alert_ratio: bad number \"half\": expected a number"},
    {"[feedback]\nalert_window = 0\n",
     FN ":2: ", "feedback.alert_window: bad integer"},
    {"[model.m]\nprice_in = -1\n", FN ":2: ", "model.m.price_in: bad number"},
    {"[bot]\nlog_level = loud\n",
     FN ":2: ", "bot.log_level: bad log level \"loud\""},
    {"[retry]\njitter = some\n",
     FN ":2: ", "retry.jitter: bad jitter \"some\": use none, full or equal"},
    {"[model.m]\napi = grpc\n",
     FN ":2: ", "model.m.api: bad api \"grpc\": use openai or anthropic"},
    {"[limits]\nnotice = twice\n", FN ":2: ", "limits.notice: bad value"},
    /* admins */
    {"[bot]\nadmins = telegram:11, irc:5\n",
     FN ":2: ", "bot.admins: bad admin \"irc:5\": expected platform:user-id"},
    {"[bot]\nadmins = telegram\n", FN ":2: ", "bad admin \"telegram\""},
    {"[bot]\nadmins = telegram:\n", FN ":2: ", "bad admin \"telegram:\""},
    {"[bot]\nadmins = telegram:a b\n", FN ":2: ", "bad admin"},
    {"[bot]\nadmins = telegram:1,,slack:U1\n",
     FN ":2: ", "bot.admins: empty item"},
    /* secrets */
    {"[telegram]\nenabled = false\ntoken = env:\n", FN ":3: ",
     "telegram.token: bad secret reference: env: needs a variable name"},
    {"[telegram]\nenabled = false\ntoken = env:bad-name\n",
     FN ":3: ", "telegram.token: bad secret reference: env: variable names"},
    {"[discord]\nenabled = false\ntoken = cred:../x\n", FN ":3: ",
     "discord.token: bad secret reference: cred: takes a credential name"},
    {"[slack]\nenabled = false\nbot_token = file:\n",
     FN ":3: ", "slack.bot_token: bad secret reference: file: needs a path"},
    {"[model.m]\napi_key = env:A, cred:\n",
     FN ":2: ", "model.m.api_key: bad secret reference (item 2): cred: needs"},
    /* models */
    {"[llm]\nmodels = main\n",
     FN ":2: ", "llm.models: model \"main\" has no [model.main] section"},
    {"[llm]\nmodels = a, a\n", FN ":2: ", "model \"a\" is listed twice"},
    {"[llm]\nmodels = bad!name\n",
     FN ":2: ", "llm.models: bad model name \"bad!name\""},
    {"[model.m]\napi = openai\n",
     FN ":1: ", "[model.m] is missing required key \"base_url\""},
    {"[model.m]\napi = openai\n",
     FN ":1: ", "[model.m] is missing required key \"api_key\""},
    {"[model.m]\napi = openai\n",
     FN ":1: ", "[model.m] is missing required key \"name\""},
    {"[model.m]\nname = x\n",
     FN ":1: ", "[model.m] is missing required key \"api\""},
    {"[model.m]\napi_key =\n",
     FN ":1: ", "[model.m] is missing required key \"api_key\""},
    {"[model.m]\nname =\n", FN ":2: ", "model.m.name: must not be empty"},
    {"[telegram]\ntoken = x\n",
     FN ":1: ", "llm.models is empty but a platform is enabled"},
    {"[telegram]\ntoken = x\n[llm]\nmodels =\n",
     FN ":4: ", "llm.models is empty but a platform is enabled"},
    /* platforms without their tokens */
    {"[telegram]\nenabled = true\n[llm]\nmodels =\n",
     FN ":2: ", "[telegram] is enabled but telegram.token is not set"},
    {"[discord]\n",
     FN ":1: ", "[discord] is enabled but discord.token is not set"},
    {"[discord]\ntoken =\n", FN ":1: ", "discord.token is not set"},
    {"[slack]\nbot_token = xoxb-1\n",
     FN ":1: ", "[slack] is enabled but slack.app_token is not set"},
    {"[slack]\napp_token = xapp-1\n",
     FN ":1: ", "[slack] is enabled but slack.bot_token is not set"},
    /* URLs */
    {"[telegram]\nenabled = no\napi_base = ftp://x\n", FN ":3: ",
     "telegram.api_base: bad URL \"ftp://x\": must start with http://"},
    {"[model.m]\nbase_url = api.openai.com/v1\n",
     FN ":2: ", "model.m.base_url: bad URL"},
    {"[discord]\nenabled = no\napi_base = https://\n",
     FN ":3: ", "has no host"},
    {"[slack]\nenabled = no\napi_base = http://a b\n",
     FN ":3: ", "must not contain blanks"},
    {"[slack]\nenabled = no\napi_base =\n", FN ":3: ", "slack.api_base"},
    /* limits the limiter would refuse at every request */
    {"[limits]\nuser = 2000000/1d\n",
     FN ":2: ", "limits.user: at most 1048576 requests per window"},
    {"[limits]\n\nglobal = 1048577/1s\n",
     FN ":3: ", "limits.global: at most 1048576 requests per window"},
    {"[limits]\nchat = 1048576/1s\nuser_tokens = 100000000000/1d\n",
     FN ":3: ", "limits.user_tokens: at most 53375995583 tokens per 1d"},
    /* retry */
    {"[retry]\nmin = 2m\nmax = 1m\n",
     FN ":3: ", "retry.min (2m) is greater than retry.max (1m)"},
    {"[retry]\nmin = 90s\n",
     FN ":2: ", "retry.min (90s) is greater than retry.max (1m)"},
    {"[retry]\nattempts = 0\n", FN ":2: ", "retry.attempts: bad integer"},
    {"[llm]\nhistory_messages = -5\n",
     FN ":2: ", "llm.history_messages: bad integer"},
    /* metrics_listen */
    {"[bot]\nmetrics_listen = 9464\n",
     FN ":2: ", "bot.metrics_listen: bad address \"9464\": expected HOST:PORT"},
    {"[bot]\nmetrics_listen = localhost:99999\n",
     FN ":2: ", "port must be a number from 1 to 65535"},
    {"[bot]\nmetrics_listen = localhost:0\n", FN ":2: ", "port must be"},
    {"[bot]\nmetrics_listen = ::1:9464\n",
     FN ":2: ", "IPv6 addresses go in brackets"},
    {"[bot]\nmetrics_listen = :9464\n", FN ":2: ", "bad address"},
    {"[bot]\nmetrics_listen = [::1]9464\n", FN ":2: ", "bad address"},
    {"[bot]\nmetrics_listen = host:\n", FN ":2: ", "bad address"},
    /* other strings */
    {"[bot]\nstate_dir =\n", FN ":2: ", "bot.state_dir: must not be empty"},
};

static void
test_errors(void)
{
    for (size_t i = 0; i < sizeof(error_cases) / sizeof(error_cases[0]); i++) {
        struct config *c = (struct config *)1;
        struct config_diag d;
        int rc;

        rc = parse(error_cases[i].text, &c, &d);
        T_OKF(rc == -1, "case %zu", i);
        T_OKF(c == NULL, "case %zu", i);
        T_OKF(diag_find(d.errors, d.nerrors, error_cases[i].prefix,
                        error_cases[i].msg) != NULL,
              "case %zu: want \"%s%s\"", i, error_cases[i].prefix,
              error_cases[i].msg);
        if (diag_find(d.errors, d.nerrors, error_cases[i].prefix,
                      error_cases[i].msg) == NULL)
            diag_dump(&d);
        config_diag_release(&d);
        T_OK(d.errors == NULL && d.nerrors == 0);
    }
}

/* Every error is reported, each with its own line, not just the first. */
static void
test_all_errors_listed(void)
{
    static const char text[] = "[bot]\n"
                               "log_level = loud\n" /* 2 */
                               "bogus = 1\n"        /* 3 */
                               "[nope]\n"           /* 4 */
                               "ignored = 1\n"      /* 5: inside [nope] */
                               "[llm]\n"            /* 6 */
                               "timeout = soon\n"   /* 7 */
                               "stream = perhaps\n" /* 8 */
                               "models = ghost\n"   /* 9 */
                               "just words\n"       /* 10 */
                               "[retry]\n"          /* 11 */
                               "min = 5m\n";        /* 12 */
    static const char *const want[] = {
        FN ":2: bot.log_level",   FN ":3: unknown key",
        FN ":4: unknown section", FN ":7: llm.timeout",
        FN ":8: llm.stream",      FN ":9: llm.models: model \"ghost\"",
        FN ":10: expected",       FN ":12: retry.min (5m)",
    };
    struct config *c = NULL;
    struct config_diag d;

    T_EQ_INT(parse(text, &c, &d), -1);
    T_EQ_INT(d.nerrors, sizeof(want) / sizeof(want[0]));
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]) && i < d.nerrors; i++)
        T_OKF(strncmp(d.errors[i], want[i], strlen(want[i])) == 0,
              "got \"%s\", want prefix \"%s\"", d.errors[i], want[i]);
    config_diag_release(&d);
}

static void
test_bounds(void)
{
    struct config *c = NULL;
    struct config_diag d;
    char *buf = malloc(CONFIG_KEYS_MAX * 16 + 20000);
    size_t n;

    if (buf == NULL)
        return;

    /* a prompt much longer than inih's 200-byte line buffer */
    n = (size_t)sprintf(buf, "[llm]\nsystem_prompt = ");
    for (int i = 0; i < 3000; i++)
        buf[n++] = (char)('a' + i % 26);
    strcpy(buf + n, " ; comment\nhistory_messages = 7\n");
    T_EQ_INT(parse(buf, &c, &d), 0);
    diag_dump(&d);
    if (c != NULL) {
        T_EQ_INT(strlen(c->llm.system_prompt), 3000);
        T_EQ_INT(c->llm.system_prompt[2999], 'a' + 2999 % 26);
        T_EQ_INT(c->llm.history_messages, 7);
    }
    config_free(c);
    config_diag_release(&d);

    /* over the line cap */
    n = (size_t)sprintf(buf, "[llm]\nsystem_prompt = ");
    memset(buf + n, 'x', CONFIG_LINE_MAX);
    strcpy(buf + n + CONFIG_LINE_MAX, "\nbogus = 1\n");
    T_EQ_INT(parse(buf, &c, &d), -1);
    T_OK(diag_find(d.errors, d.nerrors, FN ":2: ", "line too long") != NULL);
    T_OK(diag_find(d.errors, d.nerrors, FN ":3: ", "unknown key") != NULL);
    config_diag_release(&d);

    /* a NUL byte inside the text */
    {
        static const char nul[] = "[bot]\nstate_dir = /a\0b\nlog_level = x\n";

        memset(&d, 0, sizeof(d));
        T_EQ_INT(config_parse(nul, sizeof(nul) - 1, FN, &c, &d), -1);
        T_OK(diag_find(d.errors, d.nerrors, FN ":2: ", "NUL byte") != NULL);
        T_OK(diag_find(d.errors, d.nerrors, FN ":3: ", "bot.log_level") !=
             NULL);
        config_diag_release(&d);
    }

    /* too many keys: the error comes once, on the first key over */
    n = (size_t)sprintf(buf, "[nope]\n"); /* keys here are not checked */
    for (int i = 0; i < CONFIG_KEYS_MAX + 5; i++)
        n += (size_t)sprintf(buf + n, "k%d = 1\n", i);
    T_EQ_INT(parse(buf, &c, &d), -1);
    {
        char prefix[32];

        snprintf(prefix, sizeof(prefix), FN ":%d: ", CONFIG_KEYS_MAX + 2);
        T_OK(diag_find(d.errors, d.nerrors, prefix, "too many keys") != NULL);
    }
    T_EQ_INT(d.nerrors, 2);
    config_diag_release(&d);

    /* the error list itself is capped */
    n = (size_t)sprintf(buf, "[bot]\n");
    for (int i = 0; i < CONFIG_DIAG_MAX + 50; i++)
        n += (size_t)sprintf(buf + n, "k%d = 1\n", i);
    T_EQ_INT(parse(buf, &c, &d), -1);
    T_EQ_INT(d.nerrors, CONFIG_DIAG_MAX + 1);
    T_CONTAINS(d.errors[d.nerrors - 1], "too many problems");
    config_diag_release(&d);

    /* too many list items */
    n = (size_t)sprintf(buf, "[bot]\nadmins = ");
    for (int i = 0; i <= CONFIG_LIST_MAX; i++)
        n += (size_t)sprintf(buf + n, "%stelegram:%d", i ? "," : "", i);
    strcpy(buf + n, "\n");
    T_EQ_INT(parse(buf, &c, &d), -1);
    T_OK(diag_find(d.errors, d.nerrors, FN ":2: ", "too many items") != NULL);
    config_diag_release(&d);

    /* too many model sections */
    n = 0;
    for (int i = 0; i <= CONFIG_MODELS_MAX; i++)
        n += (size_t)sprintf(buf + n, "[model.m%d]\n", i);
    T_EQ_INT(parse(buf, &c, &d), -1);
    {
        char prefix[32];

        snprintf(prefix, sizeof(prefix), FN ":%d: ", CONFIG_MODELS_MAX + 1);
        T_OK(diag_find(d.errors, d.nerrors, prefix,
                       "too many [model.NAME] sections") != NULL);
    }
    config_diag_release(&d);

    /* a model name at the cap, and one over */
    T_EQ_INT(parse("[llm]\nmodels = abcdefghijabcdefghijabcdefghij12\n"
                   "[model.abcdefghijabcdefghijabcdefghij12]\n"
                   "api = openai\nbase_url = http://h\napi_key = k\n"
                   "name = n\n",
                   &c, &d),
             0);
    config_free(c);
    config_diag_release(&d);
    T_EQ_INT(parse("[model.abcdefghijabcdefghijabcdefghij123]\n", &c, &d), -1);
    config_diag_release(&d);
    free(buf);
}

static void
test_warnings(void)
{
    struct config *c = NULL;
    struct config_diag d;

    T_EQ_INT(
        parse(OK_HEAD "[discord]\nenabled = false\ntoken = evn:X\n", &c, &d),
        0);
    T_EQ_INT(d.nerrors, 0);
    T_OK(diag_find(d.warnings, d.nwarnings, FN ":12: ",
                   "discord.token: looks like a reference with an unknown "
                   "scheme") != NULL);
    config_free(c);
    config_diag_release(&d);

    T_EQ_INT(parse("[telegram]\nenabled = false\n[model.a]\napi_key = "
                   "x, vault:y\napi = openai\nbase_url = http://h\nname = n\n",
                   &c, &d),
             0);
    T_OK(diag_find(d.warnings, d.nwarnings, FN ":4: ",
                   "model.a.api_key: item 2 looks like a reference") != NULL);
    T_OK(diag_find(d.warnings, d.nwarnings, FN ": ",
                   "no platform is enabled") != NULL);
    config_free(c);
    config_diag_release(&d);

    /* a platform turned off explicitly needs no token and no model */
    T_EQ_INT(parse("[telegram]\nenabled = off\n[discord]\nenabled = false\n"
                   "[slack]\nenabled = no\n",
                   &c, &d),
             0);
    T_EQ_INT(d.nerrors, 0);
    T_EQ_INT(d.nwarnings, 1);
    T_OK(c != NULL && !c->telegram.enabled && !c->discord.enabled &&
         !c->slack.enabled);
    config_free(c);
    config_diag_release(&d);

    /* metrics off */
    T_EQ_INT(parse("[bot]\nmetrics_listen =\n", &c, &d), 0);
    if (c != NULL) {
        T_EQ_STR(c->bot.metrics_listen, "");
        T_OK(c->bot.metrics_host == NULL);
        T_EQ_INT(c->bot.metrics_port, 0);
    }
    config_free(c);
    config_diag_release(&d);
    config_free(NULL);
    config_diag_release(NULL);
}

static const char secrets_conf[] =
    "[telegram]\n"                                 /* 1 */
    "token = env:PARLEY_T_TG\n"                    /* 2 */
    "[discord]\n"                                  /* 3 */
    "token = file:%s/discord\n"                    /* 4 */
    "[slack]\n"                                    /* 5 */
    "app_token = cred:slack_app\n"                 /* 6 */
    "bot_token = xoxb-literal-SECRET\n"            /* 7 */
    "[llm]\n"                                      /* 8 */
    "models = m\n"                                 /* 9 */
    "[model.m]\n"                                  /* 10 */
    "api = openai\n"                               /* 11 */
    "base_url = http://h\n"                        /* 12 */
    "api_key = env:PARLEY_T_K1, env:PARLEY_T_K2\n" /* 13 */
    "name = n\n"                                   /* 14 */
    "[model.unused]\n"                             /* 15 */
    "api = openai\n"                               /* 16 */
    "base_url = http://h\n"                        /* 17 */
    "api_key = env:PARLEY_T_UNSET\n"               /* 18 */
    "name = n\n";                                  /* 19 */

static void
write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");

    if (f == NULL)
        return;
    fputs(text, f);
    fclose(f);
}

static void
test_resolve(void)
{
    char dir[] = "/tmp/parley-test-config-XXXXXX";
    char text[2048], path[512], *printed;
    struct config *c = NULL;
    struct config_diag d;
    const struct config_model *m;

    T_OK(mkdtemp(dir) != NULL);
    snprintf(text, sizeof(text), secrets_conf, dir);
    snprintf(path, sizeof(path), "%s/discord", dir);
    write_file(path, "discord-SECRET  \n\nignored\n");
    snprintf(path, sizeof(path), "%s/slack_app", dir);
    write_file(path, "xapp-SECRET");
    setenv("PARLEY_T_TG", "tg-SECRET", 1);
    setenv("PARLEY_T_K1", "k1-SECRET", 1);
    setenv("PARLEY_T_K2", "k2-SECRET", 1);
    unsetenv("PARLEY_T_UNSET");
    setenv("CREDENTIALS_DIRECTORY", dir, 1);

    T_EQ_INT(parse(text, &c, &d), 0);
    diag_dump(&d);
    if (c == NULL)
        goto out;
    T_OK(c->telegram.token.value == NULL); /* parsing resolves nothing */
    T_EQ_INT(config_resolve_secrets(c, &d), 0);
    diag_dump(&d);
    T_EQ_INT(d.nerrors, 0);
    T_EQ_STR(c->telegram.token.value, "tg-SECRET");
    T_EQ_STR(c->discord.token.value, "discord-SECRET");
    T_EQ_STR(c->slack.app_token.value, "xapp-SECRET");
    T_EQ_STR(c->slack.bot_token.value, "xoxb-literal-SECRET");
    m = config_model_find(c, "m");
    if (m != NULL && m->napi_keys == 2) {
        T_EQ_STR(m->api_keys[0].value, "k1-SECRET");
        T_EQ_STR(m->api_keys[1].value, "k2-SECRET");
    }
    m = config_model_find(c, "unused");
    T_OK(m != NULL && m->api_keys[0].value == NULL);

    /* printing shows references, never a value */
    printed = print_to_string(c);
    T_OK(printed != NULL && strstr(printed, "SECRET") == NULL);
    T_CONTAINS(printed,
               "[telegram]\nenabled = true\ntoken = env:PARLEY_T_TG\n");
    T_CONTAINS(printed, "app_token = cred:slack_app\n");
    T_CONTAINS(printed, "bot_token = <redacted>\n");
    T_CONTAINS(printed, "api_key = env:PARLEY_T_K1, env:PARLEY_T_K2\n");
    free(printed);

    /* failures: every one listed, at the secret's line, without values */
    unsetenv("PARLEY_T_TG");
    setenv("PARLEY_T_K2", "", 1);
    snprintf(path, sizeof(path), "%s/discord", dir);
    unlink(path);
    unsetenv("CREDENTIALS_DIRECTORY");
    T_EQ_INT(config_resolve_secrets(c, &d), -1);
    T_EQ_INT(d.nerrors, 4);
    T_OK(diag_find(d.errors, d.nerrors, FN ":2: ",
                   "telegram.token: env:PARLEY_T_TG is not set") != NULL);
    T_OK(diag_find(d.errors, d.nerrors, FN ":4: ", "discord.token: file:") !=
         NULL);
    T_OK(diag_find(d.errors, d.nerrors, FN ":4: ", "No such file") != NULL);
    T_OK(diag_find(d.errors, d.nerrors, FN ":6: ",
                   "slack.app_token: cred:slack_app: CREDENTIALS_DIRECTORY "
                   "is not set") != NULL);
    T_OK(diag_find(d.errors, d.nerrors, FN ":13: ",
                   "model.m.api_key: env:PARLEY_T_K2 is empty") != NULL);
    for (size_t i = 0; i < d.nerrors; i++)
        T_OK(strstr(d.errors[i], "SECRET") == NULL);
    config_diag_release(&d);

    /* a disabled platform's secrets are not looked at */
    config_free(c);
    c = NULL;
    T_EQ_INT(
        parse("[telegram]\nenabled = false\ntoken = env:PARLEY_T_NO\n", &c, &d),
        0);
    if (c != NULL)
        T_EQ_INT(config_resolve_secrets(c, &d), 0);
    T_EQ_INT(d.nerrors, 0);
out:
    config_free(c);
    config_diag_release(&d);
    snprintf(path, sizeof(path), "%s/slack_app", dir);
    unlink(path);
    rmdir(dir);
}

/* The printed form parses back to the same configuration. */
static void
test_print_roundtrip(void)
{
    struct config *c = NULL, *c2 = NULL;
    struct config_diag d;
    char *p1 = NULL, *p2 = NULL;
    size_t keys = 0;

    T_EQ_INT(parse(all_keys, &c, &d), 0);
    config_diag_release(&d);
    if (c == NULL)
        return;
    p1 = print_to_string(c);
    T_OK(p1 != NULL && strstr(p1, "123456:ABC") == NULL &&
         strstr(p1, "lit-key-1") == NULL);
    T_CONTAINS(p1, "token = <redacted>\n");
    T_CONTAINS(p1, "api_key = <redacted>, env:KEY_2, file:/k3, cred:k4\n");
    T_CONTAINS(p1, "system_prompt = Be brief\\;no fluff \\; really\n");
    T_CONTAINS(p1, "admins = telegram:11, discord:22, slack:U033\n");
    T_CONTAINS(p1, "poll_timeout = 90s\n");
    T_CONTAINS(p1, "global_send_rate = 25/1500ms\n");
    T_CONTAINS(p1, "channel_send_rate = off\n");
    T_CONTAINS(p1, "price_out = 15.5\n");
    T_CONTAINS(p1, "log_level = debug\n");
    T_CONTAINS(p1, "[retry]\nattempts = 3\n");
    T_CONTAINS(p1, "\n\n[model.main]\napi = anthropic\n");
    T_CONTAINS(p1, "\n\n[model.backup]\n");
    /* every key of every section, models included */
    for (const char *s = p1; (s = strstr(s, " = ")) != NULL; s++)
        keys++;
    T_EQ_INT(keys, 4 + 7 + 3 + 5 + 6 + 9 + 5 + 1 + 2 + 2 * 9);
    if (p1 != NULL) {
        T_EQ_INT(parse(p1, &c2, &d), 0);
        diag_dump(&d);
        config_diag_release(&d);
    }
    if (c2 != NULL) {
        p2 = print_to_string(c2);
        T_EQ_STR(p2, p1);
        T_EQ_STR(c2->llm.system_prompt, c->llm.system_prompt);
    }
    free(p1);
    free(p2);
    config_free(c);
    config_free(c2);
}

static void
test_load(void)
{
    char dir[] = "/tmp/parley-test-load-XXXXXX";
    char path[512];
    struct config *c = NULL;
    struct config_diag d;
    FILE *f;

    T_OK(mkdtemp(dir) != NULL);
    memset(&d, 0, sizeof(d));

    snprintf(path, sizeof(path), "%s/missing.conf", dir);
    T_EQ_INT(config_load(path, &c, &d), -1);
    T_OK(c == NULL);
    T_EQ_INT(d.nerrors, 1);
    if (d.nerrors == 1) {
        T_OK(strncmp(d.errors[0], path, strlen(path)) == 0);
        T_CONTAINS(d.errors[0], ": cannot read: No such file or directory");
    }
    config_diag_release(&d);

    T_EQ_INT(config_load(dir, &c, &d), -1);
    T_OK(d.nerrors == 1 &&
         strstr(d.errors[0], "cannot read: Is a directory") != NULL);
    config_diag_release(&d);

    snprintf(path, sizeof(path), "%s/ok.conf", dir);
    write_file(path, "[bot]\nlog_level = warn\n[retry]\nattempts = x\n");
    T_EQ_INT(config_load(path, &c, &d), -1);
    T_OK(d.nerrors == 1 && strstr(d.errors[0], ":4: retry.attempts") != NULL &&
         strncmp(d.errors[0], path, strlen(path)) == 0);
    config_diag_release(&d);
    write_file(path, "[bot]\nlog_level = warn\n");
    T_EQ_INT(config_load(path, &c, &d), 0);
    T_OK(c != NULL && c->bot.log_level == LOG_LEVEL_WARN);
    T_OK(c != NULL && strcmp(c->filename, path) == 0);
    config_free(c);
    c = NULL;
    config_diag_release(&d);

    /* over 1 MiB: refused before parsing */
    f = fopen(path, "w");
    if (f != NULL) {
        for (int i = 0; i < CONFIG_FILE_MAX / 50; i++)
            fputs("# padding padding padding padding padding padding pad\n", f);
        fputs("[bogus]\n", f);
        fclose(f);
    }
    T_EQ_INT(config_load(path, &c, &d), -1);
    T_EQ_INT(d.nerrors, 1);
    if (d.nerrors == 1)
        T_CONTAINS(d.errors[0], ": too large (the limit is 1 MiB)");
    config_diag_release(&d);

    unlink(path);
    rmdir(dir);
}

/* examples/parley.conf parses cleanly and documents every key. */
static void
test_example(void)
{
    static const char *const creds[] = {
        "telegram_token", "discord_token", "slack_app_token", "slack_bot_token",
        "openai_key",     "openai_key_2",  "anthropic_key",
    };
    const char *src = getenv("PARLEY_SRCDIR");
    char path[1024], dir[] = "/tmp/parley-test-example-XXXXXX", *printed;
    char *text = NULL;
    size_t len = 0;
    struct config *c = NULL;
    struct config_diag d;
    FILE *f;

    snprintf(path, sizeof(path), "%s/examples/parley.conf", src ? src : ".");
    memset(&d, 0, sizeof(d));
    T_EQ_INT(config_load(path, &c, &d), 0);
    diag_dump(&d);
    T_EQ_INT(d.nerrors, 0);
    T_EQ_INT(d.nwarnings, 0);
    if (c == NULL)
        goto out;
    T_OK(c->telegram.enabled && c->discord.enabled && c->slack.enabled);
    T_EQ_STR(c->telegram.token.ref, "cred:telegram_token");
    T_EQ_INT(c->llm.nmodels, 2);
    T_EQ_INT(c->nmodels, 2);

    /* with systemd's credentials in place, every secret resolves */
    T_OK(mkdtemp(dir) != NULL);
    for (size_t i = 0; i < sizeof(creds) / sizeof(creds[0]); i++) {
        snprintf(path, sizeof(path), "%s/%s", dir, creds[i]);
        write_file(path, "value\n");
    }
    setenv("CREDENTIALS_DIRECTORY", dir, 1);
    T_EQ_INT(config_resolve_secrets(c, &d), 0);
    diag_dump(&d);
    unsetenv("CREDENTIALS_DIRECTORY");
    for (size_t i = 0; i < sizeof(creds) / sizeof(creds[0]); i++) {
        snprintf(path, sizeof(path), "%s/%s", dir, creds[i]);
        unlink(path);
    }
    rmdir(dir);

    /* every printed key appears in the example, in its section */
    snprintf(path, sizeof(path), "%s/examples/parley.conf", src ? src : ".");
    f = fopen(path, "r");
    if (f != NULL) {
        text = malloc(CONFIG_FILE_MAX);
        len = text ? fread(text, 1, CONFIG_FILE_MAX - 1, f) : 0;
        if (text != NULL)
            text[len] = '\0';
        fclose(f);
    }
    printed = print_to_string(c);
    if (text != NULL && printed != NULL) {
        char *save = NULL, *line;
        const char *sect = text;

        for (line = strtok_r(printed, "\n", &save); line != NULL;
             line = strtok_r(NULL, "\n", &save)) {
            char want[128];

            if (line[0] == '[') {
                snprintf(want, sizeof(want), "\n%s\n", line);
                sect = strstr(text, want);
                T_OKF(sect != NULL, "example has %s", line);
                if (sect == NULL)
                    sect = text;
                continue;
            }
            snprintf(want, sizeof(want), "\n%.*s= ", (int)(strcspn(line, "=")),
                     line);
            T_OKF(strstr(sect, want) != NULL, "example has %s", line);
        }
    }
    free(printed);
    free(text);
out:
    config_free(c);
    config_diag_release(&d);
}

int
main(void)
{
    test_defaults();
    test_model_defaults();
    test_all_keys();
    test_errors();
    test_all_errors_listed();
    test_bounds();
    test_warnings();
    test_resolve();
    test_print_roundtrip();
    test_load();
    test_example();
    return t_done();
}
