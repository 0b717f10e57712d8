/* steerd: entry point. Parses the command line, loads the configuration, binds the listeners,
 * starts the workers and runs the control loop until a stop signal; the only exit(). */
#include <curl/curl.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/thread.h>

#include "steerd/beacon.h"
#include "steerd/cfg.h"
#include "steerd/control.h"
#include "steerd/dash.h"
#include "steerd/diag.h"
#include "steerd/h_admin.h"
#include "steerd/h_manifest.h"
#include "steerd/http.h"
#include "steerd/log.h"
#include "steerd/mcache.h"
#include "steerd/snap.h"
#include "steerd/stats.h"
#include "steerd/util.h"

enum { EXIT_OK = 0, EXIT_CONFIG = 1, EXIT_RUNTIME = 2 };

struct app {
    const char *cfg_path;
    const char *port_file;
    bool check_only;
    uint32_t workers;
    struct event_base *base;
    struct stats *stats;
    struct http_server *http;
    struct control *ctl;
    struct h_admin *admin;
    struct mcache *mcache;
    struct beacon_hub *beacons;
    bool dash_ready;
};

static void
usage(FILE *f)
{
    fprintf(f, "usage: steerd -c FILE [-t] [--port-file FILE]\n"
               "       steerd -V | -h\n"
               "  -c FILE           configuration file (JSON)\n"
               "  -t                check the configuration and every file it names, then exit\n"
               "  --port-file FILE  after binding, write the bound addresses as JSON to FILE\n"
               "  -V                print the version\n"
               "  -h                print this help\n"
               "Signals: HUP reloads, TERM/INT drain and stop, USR1 reopens the log file.\n");
}

static int
parse_args(struct app *app, int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            exit(EXIT_OK);
        } else if (strcmp(a, "-V") == 0 || strcmp(a, "--version") == 0) {
            printf("steerd %s\n", STEERD_VERSION);
            exit(EXIT_OK);
        } else if (strcmp(a, "-t") == 0) {
            app->check_only = true;
        } else if (strcmp(a, "-c") == 0 && i + 1 < argc) {
            app->cfg_path = argv[++i];
        } else if (strcmp(a, "--port-file") == 0 && i + 1 < argc) {
            app->port_file = argv[++i];
        } else {
            fprintf(stderr, "steerd: unknown or incomplete option '%s'\n", a);
            return -1;
        }
    }
    if (app->cfg_path == NULL) {
        fprintf(stderr, "steerd: -c FILE is required\n");
        return -1;
    }
    return 0;
}

static void
print_diag(const struct diag *d)
{
    for (size_t i = 0; i < d->count; i++)
        fprintf(stderr, "%s\n", d->lines[i]);
    if (d->dropped)
        fprintf(stderr, "(%zu more problems not shown)\n", d->dropped);
}

/* Writes the bound addresses to app->port_file whole (temp file + rename). */
static int
write_port_file(struct app *app)
{
    struct buf b;
    char addr[128];
    int rc = -1;

    buf_init(&b, 0);
    buf_puts(&b, "{\"listen\": [");
    for (size_t i = 0; i < http_server_listen_count(app->http); i++) {
        http_server_bound_addr(app->http, i, addr, sizeof(addr));
        buf_printf(&b, "%s\"%s\"", i ? ", " : "", addr);
    }
    h_admin_bound_addr(app->admin, addr, sizeof(addr));
    buf_printf(&b, "], \"admin\": \"%s\", \"pid\": %ld}\n", addr, (long)getpid());

    size_t n = strlen(app->port_file) + 8;
    char *tmp = xmalloc(n);
    snprintf(tmp, n, "%s.tmp", app->port_file);
    FILE *f = fopen(tmp, "w");
    if (f != NULL && fwrite(b.data, 1, b.len, f) == b.len && fclose(f) == 0) {
        f = NULL;
        rc = rename(tmp, app->port_file);
    }
    if (f != NULL)
        fclose(f);
    if (rc != 0)
        log_errno(LOG_ERR, errno, "main", "cannot write port file %s", app->port_file);
    free(tmp);
    buf_free(&b);
    return rc;
}

static uint32_t
resolve_workers(const struct cfg *cfg)
{
    if (cfg->workers != 0)
        return cfg->workers;
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : (n > 64 ? 64 : (uint32_t)n);
}

int
main(int argc, char **argv)
{
    struct app app = {0};
    struct diag d;
    struct snap_conf *conf = NULL;
    int rc = EXIT_RUNTIME;

    util_tune_malloc();
    diag_init(&d);
    if (parse_args(&app, argc, argv) != 0) {
        usage(stderr);
        return EXIT_CONFIG;
    }

    /* Load and check everything before binding anything: -t and a bad start-up config stop
     * here with one line per problem. */
    struct cfg *cfg = cfg_load(app.cfg_path, &d);
    if (cfg != NULL)
        conf = snap_conf_new(&cfg, 1, &d);
    if (conf == NULL) {
        print_diag(&d);
        fprintf(stderr, "steerd: configuration %s is invalid\n", app.cfg_path);
        diag_free(&d);
        return EXIT_CONFIG;
    }
    if (app.check_only) {
        printf("configuration %s is ok\n", app.cfg_path);
        snap_conf_unref(conf);
        diag_free(&d);
        return EXIT_OK;
    }

    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);
    if (evthread_use_pthreads() != 0 || curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fprintf(stderr, "steerd: cannot initialise libevent threads or libcurl\n");
        snap_conf_unref(conf);
        return EXIT_RUNTIME;
    }

    app.workers = resolve_workers(conf->cfg);
    /* The manifest cache is sized once, from the start-up configuration: a reload changes TTLs
     * and timeouts, but manifest.cache_max_entries / cache_max_bytes take effect at restart. */
    app.mcache =
        mcache_new(conf->cfg->manifest.cache_max_entries, conf->cfg->manifest.cache_max_bytes);
    dash_global_init(); /* libxml2's globals, before any worker thread rewrites an MPD */
    app.dash_ready = true;
    app.stats = stats_new(app.workers);
    /* Beacon queues and rate limiters are sized once, from the start-up configuration. */
    struct beacon_params bp = {
        .nworkers = app.workers,
        .queue_per_worker = conf->cfg->beacon.queue_per_worker,
        .max_sources = conf->cfg->beacon.max_sources,
        .rate_per_s = conf->cfg->beacon.rate_per_s,
        .burst = conf->cfg->beacon.burst,
    };
    app.beacons = beacon_hub_new(&bp);
    app.base = event_base_new();
    app.http = http_server_new(conf->cfg, app.workers, app.stats, &d);
    if (app.base == NULL || app.http == NULL)
        goto out;
    struct http_hooks hooks = {
        .shared = app.mcache,
        .worker_start = h_manifest_worker_start,
        .worker_stop = h_manifest_worker_stop,
    };
    http_server_set_hooks(app.http, &hooks);
    http_server_set_beacons(app.http, app.beacons);
    char *admin_listen = xstrdup(conf->cfg->admin.listen);
    app.ctl = control_new(app.base, app.cfg_path, &conf, app.http, app.stats);
    control_set_beacons(app.ctl, app.beacons);
    app.admin = h_admin_new(app.base, admin_listen, app.ctl, &d);
    free(admin_listen);
    if (app.admin == NULL || control_start(app.ctl, &d) != 0 ||
        http_server_start(app.http, control_snap(app.ctl), &d) != 0)
        goto out;
    if (app.port_file != NULL && write_port_file(&app) != 0)
        goto out;

    char addr[128];
    http_server_bound_addr(app.http, 0, addr, sizeof(addr));
    log_msg(LOG_NOTICE, "main", "steerd %s serving on %s with %u workers (config %s)",
            STEERD_VERSION, addr, app.workers, app.cfg_path);

    event_base_dispatch(app.base);
    if (control_forced_exit(app.ctl))
        _exit(EXIT_OK); /* asked twice: leave without waiting for the workers */
    http_server_join(app.http);
    log_msg(LOG_NOTICE, "main", "stopped");
    rc = EXIT_OK;
out:
    if (rc != EXIT_OK) {
        print_diag(&d);
        if (app.http != NULL) {
            http_server_drain(app.http, 0);
            http_server_join(app.http);
        }
    }
    h_admin_free(app.admin);
    control_free(app.ctl);
    /* Every worker has stopped: requests still queued behind a fetch are abandoned. */
    mcache_free(app.mcache, h_manifest_release_waiter, NULL);
    http_server_free(app.http);
    beacon_hub_free(app.beacons);
    snap_conf_unref(conf);
    stats_free(app.stats);
    if (app.base)
        event_base_free(app.base);
    diag_free(&d);
    if (app.dash_ready)
        dash_global_cleanup();
    curl_global_cleanup();
    libevent_global_shutdown();
    log_close();
    return rc;
}
