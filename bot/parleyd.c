/* parleyd: the parley daemon's entry point — flags, config, then the loop. */
#include <curl/curl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/resource.h>

#include "bot/daemon.h"
#include "config/config.h"
#include "core/log.h"

#define EXIT_CONFIG 1

static void
usage(FILE *f)
{
    fprintf(
        f,
        "usage: parleyd [-c FILE] [--version] [--help]\n"
        "       parleyd [-c FILE] --check-config [FILE]\n"
        "\n"
        "  -c, --config FILE   configuration file (default %s)\n"
        "      --check-config  validate FILE (given with -c or as the\n"
        "                      argument), print the effective configuration\n"
        "                      with every secret redacted, and exit\n"
        "  -V, --version       print the version and exit\n"
        "  -h, --help          print this help and exit\n"
        "\n"
        "parleyd runs in the foreground and logs to stderr. Signals:\n"
        "SIGTERM/SIGINT stop gracefully, SIGHUP reloads the config.\n"
        "Exit codes: 0 ok, 1 config error, 2 runtime fatal, 70 internal.\n"
        "See parleyd(8) and parley.conf(5).\n",
        CONFIG_DEFAULT_PATH);
}

static void
print_diag(const struct config_diag *diag)
{
    size_t i;

    for (i = 0; i < diag->nerrors; i++)
        fprintf(stderr, "%s\n", diag->errors[i]);
    for (i = 0; i < diag->nwarnings; i++)
        fprintf(stderr, "warning: %s\n", diag->warnings[i]);
}

/*
 * The secrets the service would resolve at start (env:, file:, cred:).
 * Run by systemd itself (ExecStartPre: the parent is PID 1 and
 * INVOCATION_ID is set; a process a service merely spawns, a CI job's
 * test say, has another parent) the environment and credentials are the
 * service's own, so one that fails is an error and the unit does not
 * start; from a shell they may be missing here and set there, so it is a
 * warning.
 */
static int
check_secrets(struct config *cfg)
{
    struct config_diag diag;
    int strict = getenv("INVOCATION_ID") != NULL && getppid() == 1, rc = 0;

    memset(&diag, 0, sizeof(diag));
    if (config_resolve_secrets(cfg, &diag) == -1) {
        for (size_t i = 0; i < diag.nerrors; i++)
            fprintf(stderr, "%s%s%s\n",
                    strict ? "" : "warning: ", diag.errors[i],
                    strict ? ""
                           : " (a warning: the service's own environment "
                             "may provide it)");
        rc = strict ? -1 : 0;
    }
    config_diag_release(&diag);
    return rc;
}

/* --check-config: parse, validate and resolve the secrets only; never
 * network or database. */
static int
check_config(const char *path)
{
    struct config *cfg = NULL;
    struct config_diag diag;
    int rc = EXIT_CONFIG;

    memset(&diag, 0, sizeof(diag));
    if (config_load(path, &cfg, &diag) == -1) {
        print_diag(&diag);
        goto out;
    }
    print_diag(&diag);
    config_print(cfg, stdout);
    if (check_secrets(cfg) < 0)
        goto out;
    rc = 0;
out:
    config_free(cfg);
    config_diag_release(&diag);
    return rc;
}

/*
 * Thousands of concurrent LLM calls and connections need descriptors:
 * take the soft limit up to the hard one (systemd's default hard limit is
 * 524288), so bursts queue in libcurl instead of failing with EMFILE.
 */
static void
raise_nofile(void)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) == -1)
            log_warn("start: setrlimit NOFILE");
    }
}

static int
run(const char *path)
{
    struct config *cfg = NULL;
    struct config_diag diag;
    struct daemon d;
    size_t i;
    int rc = EXIT_CONFIG;

    memset(&diag, 0, sizeof(diag));
    log_info("start: version=%s config=%s", PARLEY_VERSION, path);
    if (config_load(path, &cfg, &diag) == -1 ||
        config_resolve_secrets(cfg, &diag) == -1) {
        for (i = 0; i < diag.nerrors; i++)
            log_error("config: %s", diag.errors[i]);
        config_free(cfg);
        goto out;
    }
    for (i = 0; i < diag.nwarnings; i++)
        log_warnx("config: %s", diag.warnings[i]);
    log_set_level(cfg->bot.log_level);
    rc = daemon_init(&d, path, cfg); /* owns cfg from here on */
    if (rc == 0)
        rc = daemon_run(&d);
    daemon_release(&d);
out:
    config_diag_release(&diag);
    return rc;
}

int
main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"check-config", no_argument, NULL, 'C'},
        {"version", no_argument, NULL, 'V'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *path = CONFIG_DEFAULT_PATH;
    int check = 0, ch, rc;

    while ((ch = getopt_long(argc, argv, "c:Vh", opts, NULL)) != -1) {
        switch (ch) {
        case 'c':
            path = optarg;
            break;
        case 'C':
            check = 1;
            break;
        case 'V':
            printf("parleyd %s\n", PARLEY_VERSION);
            return 0;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return EXIT_CONFIG;
        }
    }
    /* `parleyd --check-config FILE` is accepted as well as `-c FILE` */
    if (check && optind == argc - 1)
        path = argv[optind++];
    if (optind != argc) {
        fprintf(stderr, "parleyd: unexpected argument: %s\n", argv[optind]);
        usage(stderr);
        return EXIT_CONFIG;
    }
    if (check)
        return check_config(path);

    log_init("parleyd");
    signal(SIGPIPE, SIG_IGN);
    raise_nofile();
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0) {
        log_error("start: curl_global_init failed");
        return 70;
    }
    rc = run(path);
    curl_global_cleanup();
    return rc;
}
