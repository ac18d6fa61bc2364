/* fake_echo: a standalone fake server process (HTTP echo + ws echo) for tests.
 */
#include "tests/fakes/fake.h"
#include "tests/fakes/fake_serve.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/*
 * fake_echo [-p PORT] [-d DELAY_MS] [-c CERT -k KEY]
 *   prints "port=N" as line 1 of stdout, then serves on 127.0.0.1
 *   (over TLS with -c and -k: PEM certificate and key, https and wss):
 *   any HTTP request   200 {"method":..,"path":..,"body":..} after DELAY_MS
 *   GET /close-ws      closes every websocket client with code 4000
 *   GET /drop-ws       drops every websocket client (no close frame)
 *   websocket /ws      echoes text frames
 *   SIGTERM/SIGINT     exits 0
 */

struct echo {
    struct fake *fake;
    int delay_ms;
};

static int
echo_http(struct fake *f, const struct fake_request *req,
          struct fake_response *resp, void *arg)
{
    struct echo *e = arg;
    size_t cap = (req->body_len + strlen(req->path)) * 6 + 16;
    char *path = malloc(cap), *body = malloc(cap);
    int rc = -1;

    if (path == NULL || body == NULL)
        goto out;
    fake_json_escape(path, cap, req->path, strlen(req->path));
    fake_json_escape(body, cap, req->body ? req->body : "", req->body_len);
    resp->body =
        fake_printf(f, "{\"method\":\"%s\",\"path\":\"%s\",\"body\":\"%s\"}",
                    req->method, path, body);
    if (resp->body == NULL)
        goto out;
    resp->delay_ms = e->delay_ms;
    rc = 0;
out:
    free(path);
    free(body);
    return rc;
}

static int
echo_close_ws(struct fake *f, const struct fake_request *req,
              struct fake_response *resp, void *arg)
{
    (void)req;
    (void)arg;
    resp->body = fake_printf(f, "{\"closed\":%zu}", fake_ws_count(f));
    fake_ws_close_all(f, 4000, "closed by fake_echo");
    return 0;
}

static int
echo_drop_ws(struct fake *f, const struct fake_request *req,
             struct fake_response *resp, void *arg)
{
    (void)req;
    (void)arg;
    resp->body = fake_printf(f, "{\"dropped\":%zu}", fake_ws_count(f));
    fake_ws_drop_all(f);
    return 0;
}

static void
echo_ws_text(struct fake_ws *c, const char *buf, size_t len, void *arg)
{
    (void)arg;
    fake_ws_send(c, buf, len);
}

static void
echo_free(void *arg)
{
    fake_free(arg);
}

int
main(int argc, char **argv)
{
    static const struct fake_ws_ops ws_ops = {NULL, echo_ws_text, NULL};
    struct echo e;
    uv_loop_t loop;
    const char *cert = NULL, *key = NULL;
    int port = 0, opt, rc = 1, served = 0;

    memset(&e, 0, sizeof(e));
    while ((opt = getopt(argc, argv, "p:d:c:k:")) != -1) {
        switch (opt) {
        case 'p':
            port = atoi(optarg);
            break;
        case 'd':
            e.delay_ms = atoi(optarg);
            break;
        case 'c':
            cert = optarg;
            break;
        case 'k':
            key = optarg;
            break;
        default:
            fprintf(stderr, "usage: fake_echo [-p PORT] [-d DELAY_MS] "
                            "[-c CERT -k KEY]\n");
            return 2;
        }
    }
    if ((cert == NULL) != (key == NULL)) {
        fprintf(stderr, "fake_echo: -c and -k go together\n");
        return 2;
    }
    uv_loop_init(&loop);
    e.fake = fake_new_tls(&loop, port, cert, key);
    if (e.fake == NULL)
        goto out;
    if (fake_route(e.fake, "GET", "/close-ws", echo_close_ws, &e) ||
        fake_route(e.fake, "GET", "/drop-ws", echo_drop_ws, &e) ||
        fake_route(e.fake, NULL, "/", echo_http, &e) ||
        fake_ws_route(e.fake, "/ws", &ws_ops, &e))
        goto out;
    rc = fake_serve_run(&loop, "fake_echo", fake_port(e.fake), echo_free,
                        e.fake);
    served = 1; /* the fake is freed and the loop closed */
out:
    if (!served) {
        fake_free(e.fake);
        fake_serve_close(&loop, "fake_echo");
    }
    return rc;
}
