/* bench-rewrite: throughput of the HLS and DASH rewriters alone, on one core.
 *
 *   bench-rewrite [--runs N] [--min-ms MS] [--cpu N] [--fixtures DIR] [--media-kb KB]
 *                 [--multivariant-kb KB] [--only hls|dash] [--fresh-buf] [--verbose]
 *
 *   --runs N             timed runs per kind of input; the figure is their median (default 7)
 *   --min-ms MS          length of one timed run, in ms (default 200)
 *   --cpu N              pin the process to CPU N first (sched_setaffinity)
 *   --fixtures DIR       the fixture tree (default: the source tree's tests/fixtures)
 *   --media-kb KB        size of the generated media playlists (default 4096)
 *   --multivariant-kb KB size of the generated multivariant playlist (default 1024)
 *   --only hls|dash      measure one format only
 *   --fresh-buf          start every rewrite from an empty output buffer (as a worker whose
 *                        scratch buffer was released), instead of reusing one
 *   --verbose            also print each fixture's own figure
 *
 * Every .m3u8 in DIR/hls and .mpd in DIR/dash is rewritten with the options of the golden unit
 * tests (origin http://origin.example, the playlist at http://origin.example/vod/x/<name>, CDNs
 * alpha http://cdn-a.example/edge and beta https://cdn-b.example, self_base
 * http://steerd.example:8080, nested_query steerd_sid=s1, HLS redundant copies on), and so are
 * generated inputs: a large VOD media playlist with relative URIs, the same with absolute origin
 * URIs, and a large multivariant playlist. Multivariant playlists are measured with redundant
 * copies on and off. The warm-up pass checks each fixture's output against its golden file
 * (tests/fixtures/{hls,dash}/expected/), so the figures are for correct output.
 *
 * A pass rewrites every input of one kind once; a timed run repeats the pass for about MS ms
 * (CLOCK_MONOTONIC) and the throughput is input bytes / time (MB = 10^6 bytes). The aggregate of
 * a format is all its inputs rewritten once each (golden options): total bytes / the sum of the
 * kinds' median pass times; the goals (HLS >= 500 MB/s, DASH >= 100 MB/s per core) are printed
 * next to it. MB/CPU-s is the same figure from the thread's CPU time (CLOCK_THREAD_CPUTIME_ID),
 * and the cpu column is CPU time over elapsed time: well under 100% means other work took the
 * CPU and MB/s is too low. Run it on an otherwise idle CPU (e.g. --cpu 1); it is
 * single-threaded. On a shared or virtual machine a core's own speed varies from minute to
 * minute as well: compare figures measured side by side.
 *
 * The allocator is set up as steerd's main() sets it (util_tune_malloc), so the figures are the
 * daemon's.
 *
 * Exit status: 0 when every rewrite succeeded and matched its golden file (whether the goals
 * were met is information), 1 otherwise, 2 on a usage error or unreadable fixtures. */
#include <dirent.h>
#include <errno.h>
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "steerd/dash.h"
#include "steerd/hls.h"
#include "steerd/util.h"

#ifndef FIXTURE_DIR
#define FIXTURE_DIR "tests/fixtures"
#endif

#define ORIGIN "http://origin.example"
#define PL_DIR ORIGIN "/vod/x/"
#define HLS_GOAL_MBS 500.0
#define DASH_GOAL_MBS 100.0
#define LARGE_FIXTURE (100 * 1024) /* a fixture at least this big is its own kind */
#define MAX_INPUTS 256
#define MAX_FIXTURES (MAX_INPUTS - 8) /* room for the generated inputs */
#define MAX_KINDS 16

enum format { FMT_HLS, FMT_DASH };

/* One input document. */
struct input {
    char *name;
    char *data;
    size_t len;
    char url[512];
    bool fixture; /* has a golden file under expected/ */
};

/* A kind of input: a set of documents rewritten with the same options. */
struct kind {
    char label[96];
    enum format fmt;
    bool redundant;   /* HLS: redundant copies */
    bool golden_opts; /* the options of the golden tests: counted in the aggregate */
    bool generated;   /* holds generated inputs (the "fixtures only" aggregate skips it) */
    struct input *in[MAX_INPUTS];
    size_t n;
    size_t in_bytes;
    size_t out_bytes;
    double med_s; /* median elapsed seconds per pass */
    double min_s, max_s;
    double cpu_med_s; /* median CPU seconds per pass */
    double cpu_share; /* CPU time / elapsed time over the timed runs */
};

struct opts {
    unsigned runs;
    unsigned min_ms;
    long cpu;
    const char *fixtures;
    size_t media_kb;
    size_t multivariant_kb;
    int only; /* -1, or the one format measured */
    bool fresh_buf;
    bool verbose;
};

static const struct hls_target hls_cdns[] = {
    {"alpha", "http://cdn-a.example/edge", 0},
    {"beta", "https://cdn-b.example", 0},
};

static const struct dash_target dash_cdns[] = {
    {"alpha", "http://cdn-a.example/edge", sizeof("http://cdn-a.example/edge") - 1},
    {"beta", "https://cdn-b.example", sizeof("https://cdn-b.example") - 1},
};

/* ---- inputs ---------------------------------------------------------------------------- */

static char *
slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    struct buf b;
    char chunk[65536];
    size_t n;
    buf_init(&b, 0);
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        buf_append(&b, chunk, n);
    fclose(f);
    if (b.data == NULL)
        buf_append(&b, "", 0);
    *len = b.len;
    return b.data;
}

static int
cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The sorted names in dir ending in ext; the caller frees each and the array. */
static char **
list_dir(const char *dir, const char *ext, size_t *count)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        return NULL;
    char **names = NULL;
    size_t n = 0, el = strlen(ext);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t l = strlen(e->d_name);
        if (l > el && strcmp(e->d_name + l - el, ext) == 0) {
            names = xrealloc(names, (n + 1) * sizeof(*names));
            names[n++] = xstrdup(e->d_name);
        }
    }
    closedir(d);
    qsort(names, n, sizeof(*names), cmp_names);
    *count = n;
    return names;
}

static struct input *
input_new(const char *name, char *data, size_t len, bool fixture)
{
    struct input *in = xcalloc(1, sizeof(*in));
    in->name = xstrdup(name);
    in->data = data;
    in->len = len;
    in->fixture = fixture;
    snprintf(in->url, sizeof(in->url), PL_DIR "%s", name);
    return in;
}

static void
input_free(struct input *in)
{
    if (in == NULL)
        return;
    free(in->name);
    free(in->data);
    free(in);
}

static void
kind_add(struct kind *k, struct input *in)
{
    if (k->n < MAX_INPUTS) {
        k->in[k->n++] = in;
        k->in_bytes += in->len;
    }
}

/* A VOD media playlist of about kb KB: fMP4 segments of 4 s, a program date-time every 30
 * segments and a key rotation (on a key server, left as it is) every 150. prefix is put before
 * each segment name ("" for relative URIs). */
static char *
gen_media(size_t kb, const char *prefix, size_t *len)
{
    struct buf b;
    char line[256];
    buf_init(&b, 0);
    buf_puts(&b, "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:4\n#EXT-X-MEDIA-SEQUENCE:0\n"
                 "#EXT-X-PLAYLIST-TYPE:VOD\n#EXT-X-INDEPENDENT-SEGMENTS\n");
    snprintf(line, sizeof(line), "#EXT-X-MAP:URI=\"%sinit.mp4\"\n", prefix);
    buf_puts(&b, line);
    for (unsigned i = 0; b.len < kb * 1024; i++) {
        if (i % 150 == 0) {
            snprintf(line, sizeof(line),
                     "#EXT-X-KEY:METHOD=AES-128,URI=\"https://keys.example/k/%u\","
                     "IV=0x%08x000000000000000000000000\n",
                     i / 150, i);
            buf_puts(&b, line);
        }
        if (i % 30 == 0) {
            unsigned s = i * 4;
            snprintf(line, sizeof(line),
                     "#EXT-X-PROGRAM-DATE-TIME:2024-03-%02uT%02u:%02u:%02u.000Z\n",
                     1 + (s / 86400) % 28, (s / 3600) % 24, (s / 60) % 60, s % 60);
            buf_puts(&b, line);
        }
        snprintf(line, sizeof(line), "#EXTINF:4.000,\n%sseg_%06u.m4s\n", prefix, i);
        buf_puts(&b, line);
    }
    buf_puts(&b, "#EXT-X-ENDLIST\n");
    *len = b.len;
    return b.data;
}

/* A multivariant playlist of about kb KB: 8 audio groups of 6 languages, one subtitle group, then
 * a ladder of variants (each referring to one audio group) and an I-frame variant per rung. */
static char *
gen_multivariant(size_t kb, size_t *len)
{
    static const char *const langs[] = {"en", "fr", "de", "es", "it", "ja"};
    struct buf b;
    char line[512];
    buf_init(&b, 0);
    buf_puts(&b, "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-INDEPENDENT-SEGMENTS\n");
    for (unsigned g = 0; g < 8; g++) {
        for (unsigned l = 0; l < UTIL_ARRAY_LEN(langs); l++) {
            snprintf(line, sizeof(line),
                     "#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"aud%u\",NAME=\"%s\",LANGUAGE=\"%s\","
                     "DEFAULT=%s,AUTOSELECT=YES,CHANNELS=\"2\",URI=\"audio/%u/%s/index.m3u8\"\n",
                     g, langs[l], langs[l], l == 0 ? "YES" : "NO", g, langs[l]);
            buf_puts(&b, line);
        }
    }
    for (unsigned l = 0; l < UTIL_ARRAY_LEN(langs); l++) {
        snprintf(line, sizeof(line),
                 "#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID=\"subs\",NAME=\"%s\",LANGUAGE=\"%s\","
                 "AUTOSELECT=YES,URI=\"subs/%s/index.m3u8\"\n",
                 langs[l], langs[l], langs[l]);
        buf_puts(&b, line);
    }
    for (unsigned i = 0; b.len < kb * 1024; i++) {
        unsigned bw = 200000 + 37000 * i;
        unsigned h = 144 + 8 * (i % 120);
        snprintf(line, sizeof(line),
                 "#EXT-X-STREAM-INF:BANDWIDTH=%u,AVERAGE-BANDWIDTH=%u,"
                 "CODECS=\"avc1.640028,mp4a.40.2\",RESOLUTION=%ux%u,FRAME-RATE=29.970,"
                 "AUDIO=\"aud%u\",SUBTITLES=\"subs\",CLOSED-CAPTIONS=NONE\n"
                 "video/%u/index.m3u8\n"
                 "#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=%u,CODECS=\"avc1.640028\",RESOLUTION=%ux%u,"
                 "URI=\"video/%u/iframes.m3u8\"\n",
                 bw, bw - bw / 8, h * 16 / 9, h, i % 8, i, bw / 10, h * 16 / 9, h, i);
        buf_puts(&b, line);
    }
    *len = b.len;
    return b.data;
}

#define KIND_GOLDEN 1u    /* the golden tests' options: counted in the aggregate */
#define KIND_REDUNDANT 2u /* HLS redundant copies on */
#define KIND_GENERATED 4u /* generated inputs: left out of the "fixtures" aggregate */

/* The next free kind (the caller keeps nk under MAX_KINDS). */
static struct kind *
kind_new(struct kind *kinds, size_t *nk, enum format fmt, unsigned flags)
{
    struct kind *k = &kinds[(*nk)++];
    memset(k, 0, sizeof(*k));
    k->fmt = fmt;
    k->golden_opts = flags & KIND_GOLDEN;
    k->redundant = flags & KIND_REDUNDANT;
    k->generated = flags & KIND_GENERATED;
    return k;
}

/* Adds the generated HLS inputs and their kinds (four kinds, three inputs). */
static void
add_generated(const struct opts *o, struct kind *kinds, size_t *nk, struct input **all,
              size_t *nall)
{
    const unsigned gen = KIND_GOLDEN | KIND_REDUNDANT | KIND_GENERATED;
    size_t len;
    char *data = gen_media(o->media_kb, "", &len);
    struct input *in = input_new("generated-media-relative.m3u8", data, len, false);
    struct kind *k = kind_new(kinds, nk, FMT_HLS, gen);
    snprintf(k->label, sizeof(k->label), "media %zu KB, relative URIs (generated)", len / 1024);
    kind_add(k, in);
    all[(*nall)++] = in;

    data = gen_media(o->media_kb, PL_DIR, &len);
    in = input_new("generated-media-absolute.m3u8", data, len, false);
    k = kind_new(kinds, nk, FMT_HLS, gen);
    snprintf(k->label, sizeof(k->label), "media %zu KB, absolute origin URIs (gen.)", len / 1024);
    kind_add(k, in);
    all[(*nall)++] = in;

    data = gen_multivariant(o->multivariant_kb, &len);
    in = input_new("generated-multivariant.m3u8", data, len, false);
    k = kind_new(kinds, nk, FMT_HLS, gen);
    snprintf(k->label, sizeof(k->label), "multivariant %zu KB, redundant on (gen.)", len / 1024);
    kind_add(k, in);
    k = kind_new(kinds, nk, FMT_HLS, KIND_GENERATED);
    snprintf(k->label, sizeof(k->label), "multivariant %zu KB, redundant off (gen.)", len / 1024);
    kind_add(k, in);
    all[(*nall)++] = in;
}

/* ---- rewriting and timing --------------------------------------------------------------- */

static double
clock_s(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double
now_s(void)
{
    return clock_s(CLOCK_MONOTONIC);
}

/* Rewrites one input; returns 0 with the output in out, or -1 with a reason in *why. */
static int
rewrite_one(const struct kind *k, const struct input *in, struct buf *out, bool fresh,
            const char **why)
{
    if (fresh) {
        buf_free(out);
        buf_init(out, 0);
    }
    if (k->fmt == FMT_HLS) {
        struct hls_opts o = {
            .playlist_url = in->url,
            .origin_base = ORIGIN,
            .cdns = hls_cdns,
            .ncdns = UTIL_ARRAY_LEN(hls_cdns),
            .self_base = "http://steerd.example:8080",
            .nested_query = "steerd_sid=s1",
            .redundant = k->redundant,
        };
        enum hls_status st = hls_rewrite(in->data, in->len, &o, out, NULL);
        *why = hls_status_str(st);
        return st == HLS_OK ? 0 : -1;
    }
    struct dash_opts o = {
        .mpd_url = in->url,
        .origin_base = ORIGIN,
        .cdns = dash_cdns,
        .ncdns = UTIL_ARRAY_LEN(dash_cdns),
        .self_base = "http://steerd.example:8080",
        .nested_query = "steerd_sid=s1",
    };
    enum dash_status st = dash_rewrite(in->data, in->len, &o, out, NULL);
    *why = dash_status_str(st);
    return st == DASH_OK ? 0 : -1;
}

static int
cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Elapsed seconds for reps passes over k (the thread's CPU seconds in *cpu_s, when not NULL);
 * -1 on a failed rewrite (reported on stderr). */
static double
time_passes(const struct kind *k, size_t reps, struct buf *out, bool fresh, double *cpu_s)
{
    const char *why = NULL;
    double c0 = clock_s(CLOCK_THREAD_CPUTIME_ID);
    double t0 = now_s();
    for (size_t r = 0; r < reps; r++) {
        for (size_t i = 0; i < k->n; i++) {
            if (rewrite_one(k, k->in[i], out, fresh, &why) != 0) {
                fprintf(stderr, "bench-rewrite: %s: %s\n", k->in[i]->name, why);
                return -1;
            }
        }
    }
    double t = now_s() - t0;
    if (cpu_s != NULL)
        *cpu_s = clock_s(CLOCK_THREAD_CPUTIME_ID) - c0;
    return t;
}

static double
median(double *v, size_t n)
{
    qsort(v, n, sizeof(*v), cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* The warm-up pass: rewrites each input once, adds up the output, and compares the output of
 * fixtures rewritten with the golden options with their golden file. Returns the number of
 * problems. */
static int
warm_up(struct kind *k, const char *fixtures, struct buf *out)
{
    int bad = 0;
    k->out_bytes = 0;
    for (size_t i = 0; i < k->n; i++) {
        const struct input *in = k->in[i];
        const char *why = NULL;
        if (rewrite_one(k, in, out, false, &why) != 0) {
            fprintf(stderr, "bench-rewrite: %s: %s\n", in->name, why);
            bad++;
            continue;
        }
        k->out_bytes += out->len;
        if (!in->fixture || !k->golden_opts)
            continue;
        char path[1024];
        size_t want_len = 0;
        snprintf(path, sizeof(path), "%s/%s/expected/%s", fixtures,
                 k->fmt == FMT_HLS ? "hls" : "dash", in->name);
        char *want = slurp(path, &want_len);
        if (want == NULL) {
            fprintf(stderr, "bench-rewrite: %s: no golden file %s\n", in->name, path);
            bad++;
        } else if (want_len != out->len || memcmp(want, out->data, out->len) != 0) {
            fprintf(stderr, "bench-rewrite: %s: output differs from %s\n", in->name, path);
            bad++;
        }
        free(want);
    }
    return bad;
}

/* Times k: calibrates the passes per run, then o->runs runs; fills med_s, min_s, max_s,
 * cpu_med_s and cpu_share. Returns 0 or -1. */
static int
measure(struct kind *k, const struct opts *o, struct buf *out)
{
    double target = o->min_ms / 1000.0;
    size_t reps = 1;
    double t;
    for (;;) {
        t = time_passes(k, reps, out, o->fresh_buf, NULL);
        if (t < 0)
            return -1;
        if (t >= target / 4 || reps > ((size_t)1 << 30))
            break;
        reps *= 2;
    }
    if (t > 0) {
        double want = (double)reps * target / t;
        reps = want < 1 ? 1 : (size_t)want;
    }
    double *v = xcalloc(o->runs, sizeof(*v));
    double *c = xcalloc(o->runs, sizeof(*c));
    double wall = 0, cpu = 0;
    int rc = 0;
    for (unsigned r = 0; r < o->runs && rc == 0; r++) {
        t = time_passes(k, reps, out, o->fresh_buf, &c[r]);
        if (t < 0) {
            rc = -1;
            break;
        }
        wall += t;
        cpu += c[r];
        v[r] = t / (double)reps;
        c[r] /= (double)reps;
    }
    if (rc == 0) {
        k->cpu_share = wall > 0 ? cpu / wall : 0;
        k->med_s = median(v, o->runs); /* sorts v */
        k->min_s = v[0];
        k->max_s = v[o->runs - 1];
        k->cpu_med_s = median(c, o->runs);
    }
    free(v);
    free(c);
    return rc;
}

static double
mbs(size_t bytes, double s)
{
    return s > 0 ? (double)bytes / s / 1e6 : 0;
}

static void
print_kind(const struct kind *k)
{
    printf("  %-44s %5zu %9.1f %6.2fx %8.1f %7.1f..%-7.1f %8.1f %4.0f%%\n", k->label, k->n,
           (double)k->in_bytes / 1024.0,
           k->in_bytes ? (double)k->out_bytes / (double)k->in_bytes : 0, mbs(k->in_bytes, k->med_s),
           mbs(k->in_bytes, k->max_s), mbs(k->in_bytes, k->min_s), mbs(k->in_bytes, k->cpu_med_s),
           k->cpu_share * 100);
}

/* Prints the aggregates of fmt: fixtures only, and fixtures plus generated inputs. */
static void
print_aggregate(const struct kind *kinds, size_t nk, enum format fmt, double goal)
{
    for (int with_gen = 0; with_gen <= 1; with_gen++) {
        size_t bytes = 0;
        double s = 0, cs = 0;
        bool any_gen = false;
        for (size_t i = 0; i < nk; i++) {
            const struct kind *k = &kinds[i];
            if (k->fmt != fmt || !k->golden_opts)
                continue;
            any_gen |= k->generated;
            if (k->generated && !with_gen)
                continue;
            bytes += k->in_bytes;
            s += k->med_s;
            cs += k->cpu_med_s;
        }
        if (with_gen && !any_gen)
            continue;
        double v = mbs(bytes, s);
        printf("  %s aggregate, %-22s %9.1f KB %8.1f MB/s (%.1f per CPU-s); goal >= %.0f MB/s: "
               "%s\n",
               fmt == FMT_HLS ? "HLS " : "DASH",
               with_gen ? "fixtures + generated:" : "fixtures:", (double)bytes / 1024.0, v,
               mbs(bytes, cs), goal, v >= goal ? "met" : "NOT met");
    }
}

/* ---- main ----------------------------------------------------------------------------- */

static void
usage(FILE *f)
{
    fprintf(f, "usage: bench-rewrite [--runs N] [--min-ms MS] [--cpu N] [--fixtures DIR]\n"
               "                     [--media-kb KB] [--multivariant-kb KB] [--only hls|dash]\n"
               "                     [--fresh-buf] [--verbose]\n");
}

static int
parse_num(const char *flag, const char *v, uint64_t min, uint64_t max, uint64_t *out)
{
    if (v == NULL || util_parse_u64(v, strlen(v), min, max, out) != 0) {
        fprintf(stderr, "bench-rewrite: %s needs a number in %llu..%llu\n", flag,
                (unsigned long long)min, (unsigned long long)max);
        return -1;
    }
    return 0;
}

/* Returns 0, 1 after --help, or -1 on a usage error. */
static int
parse_args(int argc, char **argv, struct opts *o)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        uint64_t n;
        if (strcmp(a, "--runs") == 0) {
            if (parse_num(a, v, 1, 1000, &n) != 0)
                return -1;
            o->runs = (unsigned)n;
            i++;
        } else if (strcmp(a, "--min-ms") == 0) {
            if (parse_num(a, v, 1, 60000, &n) != 0)
                return -1;
            o->min_ms = (unsigned)n;
            i++;
        } else if (strcmp(a, "--cpu") == 0) {
            if (parse_num(a, v, 0, CPU_SETSIZE - 1, &n) != 0)
                return -1;
            o->cpu = (long)n;
            i++;
        } else if (strcmp(a, "--media-kb") == 0) {
            if (parse_num(a, v, 1, 1024 * 1024, &n) != 0)
                return -1;
            o->media_kb = (size_t)n;
            i++;
        } else if (strcmp(a, "--multivariant-kb") == 0) {
            if (parse_num(a, v, 1, 1024 * 1024, &n) != 0)
                return -1;
            o->multivariant_kb = (size_t)n;
            i++;
        } else if (strcmp(a, "--fixtures") == 0 && v != NULL) {
            o->fixtures = v;
            i++;
        } else if (strcmp(a, "--only") == 0 && v != NULL &&
                   (strcmp(v, "hls") == 0 || strcmp(v, "dash") == 0)) {
            o->only = strcmp(v, "hls") == 0 ? FMT_HLS : FMT_DASH;
            i++;
        } else if (strcmp(a, "--fresh-buf") == 0) {
            o->fresh_buf = true;
        } else if (strcmp(a, "--verbose") == 0) {
            o->verbose = true;
        } else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            return 1;
        } else {
            usage(stderr);
            return -1;
        }
    }
    return 0;
}

/* Loads the fixtures of one format; -1 when the directory cannot be read. */
static int
load_fixtures(const char *fixtures, enum format fmt, struct input **all, size_t *nall)
{
    char dir[1024];
    size_t n = 0;
    snprintf(dir, sizeof(dir), "%s/%s", fixtures, fmt == FMT_HLS ? "hls" : "dash");
    char **names = list_dir(dir, fmt == FMT_HLS ? ".m3u8" : ".mpd", &n);
    if (names == NULL || n == 0) {
        fprintf(stderr, "bench-rewrite: no fixtures in %s\n", dir);
        free(names);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        char path[1536];
        size_t len = 0;
        snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
        char *data = slurp(path, &len);
        if (data == NULL) {
            fprintf(stderr, "bench-rewrite: cannot read %s: %s\n", path, strerror(errno));
        } else if (*nall < MAX_FIXTURES) {
            all[(*nall)++] = input_new(names[i], data, len, true);
        } else {
            free(data);
        }
        free(names[i]);
    }
    free(names);
    return 0;
}

int
main(int argc, char **argv)
{
    struct opts o = {.runs = 7,
                     .min_ms = 200,
                     .cpu = -1,
                     .only = -1,
                     .fixtures = FIXTURE_DIR,
                     .media_kb = 4096,
                     .multivariant_kb = 1024};

    struct input *all[MAX_INPUTS];
    size_t nall = 0;
    struct kind kinds[MAX_KINDS];
    size_t nk = 0;
    struct buf out;
    int bad = 0, rc = 1;

    util_tune_malloc();
    int pa = parse_args(argc, argv, &o);
    if (pa != 0)
        return pa > 0 ? 0 : 2;
    if (o.cpu >= 0) {
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET((int)o.cpu, &set);
        if (sched_setaffinity(0, sizeof(set), &set) != 0) {
            fprintf(stderr, "bench-rewrite: cannot pin to CPU %ld: %s\n", o.cpu, strerror(errno));
            return 2;
        }
    }
    dash_global_init();
    buf_init(&out, 0);
    memset(kinds, 0, sizeof(kinds));

    size_t hls_first = nall;
    if (load_fixtures(o.fixtures, FMT_HLS, all, &nall) != 0) {
        rc = 2;
        goto out;
    }
    size_t hls_end = nall;
    if (load_fixtures(o.fixtures, FMT_DASH, all, &nall) != 0) {
        rc = 2;
        goto out;
    }
    size_t dash_end = nall;

    /* HLS fixtures by kind: media or multivariant (as the rewriter sees them). */
    struct kind *hm = kind_new(kinds, &nk, FMT_HLS, KIND_GOLDEN | KIND_REDUNDANT);
    struct kind *hv = kind_new(kinds, &nk, FMT_HLS, KIND_GOLDEN | KIND_REDUNDANT);
    struct kind *hv0 = kind_new(kinds, &nk, FMT_HLS, 0);
    snprintf(hm->label, sizeof(hm->label), "media playlists (fixtures)");
    snprintf(hv->label, sizeof(hv->label), "multivariant (fixtures), redundant on");
    snprintf(hv0->label, sizeof(hv0->label), "multivariant (fixtures), redundant off");
    for (size_t i = hls_first; i < hls_end; i++) {
        struct hls_opts ho = {
            .playlist_url = all[i]->url, .origin_base = ORIGIN, .cdns = hls_cdns, .ncdns = 1};
        struct hls_info info;
        if (hls_rewrite(all[i]->data, all[i]->len, &ho, &out, &info) != HLS_OK) {
            fprintf(stderr, "bench-rewrite: %s: not rewritten\n", all[i]->name);
            bad++;
        } else if (info.multivariant) {
            kind_add(hv, all[i]);
            kind_add(hv0, all[i]);
        } else {
            kind_add(hm, all[i]);
        }
    }
    if (o.only != FMT_DASH)
        add_generated(&o, kinds, &nk, all, &nall);

    /* DASH fixtures: the small ones together, each large one on its own. */
    struct kind *ds = kind_new(kinds, &nk, FMT_DASH, KIND_GOLDEN);
    snprintf(ds->label, sizeof(ds->label), "MPDs under 100 KB (fixtures)");
    for (size_t i = hls_end; i < dash_end; i++) {
        struct kind *k = ds;
        if (all[i]->len >= LARGE_FIXTURE && nk < MAX_KINDS) {
            k = kind_new(kinds, &nk, FMT_DASH, KIND_GOLDEN);
            snprintf(k->label, sizeof(k->label), "%s", all[i]->name);
        }
        kind_add(k, all[i]);
    }

    printf("== bench-rewrite: %u runs of ~%u ms per kind, median; MB = 10^6 bytes of input; "
           "%s\n"
           "   MB/s: elapsed time (CLOCK_MONOTONIC); MB/CPU-s: the thread's CPU time; cpu: CPU "
           "time / elapsed\n",
           o.runs, o.min_ms,
           o.fresh_buf ? "each rewrite into a fresh output buffer" : "output buffer reused");
    if (o.cpu >= 0)
        printf("   pinned to CPU %ld\n", o.cpu);
    printf("   fixtures: %s\n", o.fixtures);
    printf("   load average before: ");
    fflush(stdout);
    {
        size_t ll = 0;
        char *la = slurp("/proc/loadavg", &ll);
        if (la != NULL) {
            char *sp = la;
            for (int f = 0; f < 3 && sp != NULL; f++)
                sp = strchr(sp + 1, ' ');
            if (sp != NULL)
                *sp = '\0';
            printf("%s", la);
        }
        printf("\n");
        free(la);
    }

    for (int fmt = FMT_HLS; fmt <= FMT_DASH; fmt++) {
        if (o.only >= 0 && fmt != o.only)
            continue;
        printf("\n%s\n  %-44s %5s %9s %7s %8s %-16s %8s %5s\n",
               fmt == FMT_HLS ? "== HLS (hls_rewrite)" : "== DASH (dash_rewrite)", "kind", "files",
               "input KB", "out/in", "MB/s", " slowest..fastest", "MB/CPU-s", "cpu");
        for (size_t i = 0; i < nk; i++) {
            struct kind *k = &kinds[i];
            if ((int)k->fmt != fmt || k->n == 0)
                continue;
            int w = warm_up(k, o.fixtures, &out);
            bad += w;
            if (w > 0 || measure(k, &o, &out) != 0) {
                bad += w == 0;
                printf("  %-44s failed\n", k->label);
                continue;
            }
            print_kind(k);
            if (o.verbose && k->n > 1) {
                for (size_t j = 0; j < k->n; j++) {
                    struct kind one = *k;
                    snprintf(one.label, sizeof(one.label), "  %s", k->in[j]->name);
                    one.n = 0;
                    one.in_bytes = 0;
                    kind_add(&one, k->in[j]);
                    if (warm_up(&one, o.fixtures, &out) == 0 && measure(&one, &o, &out) == 0)
                        print_kind(&one);
                }
            }
        }
        print_aggregate(kinds, nk, (enum format)fmt, fmt == FMT_HLS ? HLS_GOAL_MBS : DASH_GOAL_MBS);
    }
    rc = bad > 0 ? 1 : 0;
    if (bad > 0)
        fprintf(stderr, "bench-rewrite: %d problem(s), see above\n", bad);

out:
    for (size_t i = 0; i < nall; i++)
        input_free(all[i]);
    buf_free(&out);
    dash_global_cleanup();
    return rc;
}
