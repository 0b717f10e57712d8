#!/usr/bin/env python3
"""steerd end to end with real players: hls.js and dash.js in headless Chromium.

One run: ffmpeg makes a 30 s H.264 + AAC stream (fMP4, 2 s segments, an HLS master + media
playlists and a DASH MPD of the same segments) into the docroot of an nginx origin; two caching
nginx CDNs (alpha, beta) sit in front of it; a small static server on its own loopback port
serves player.html and the players from node_modules (so every manifest, redirect and segment
request is cross-origin); driver.mjs drives Chromium (playwright-core, /usr/bin/chromium). Each
scenario starts its own steerd (the shared base config plus the scenario's overrides), opens
the page in a new browser context on a path of its own (/vod/<scenario>/..., so no cache is
shared between scenarios), and checks what the player did, as seen by the player (currentTime,
fatal errors) and by the network (every request, its host and X-Served-By / X-Steerd-CDN).

Output: one line per scenario (pass, FAIL, xfail or XPASS, with the key numbers), then
"N passed, N failed" (an expected failure counts as passed; an unexpected pass as failed).
Exit status 0 when every outcome was the expected one.

Usage: run_e2e.py [-k SUBSTRING ...] [--list] [-v] [--artifacts DIR]
(--artifacts: for each scenario, DIR/<name>.json with the player state, every request and the
console, and DIR/<name>.png, a screenshot at the end)
Environment: STEERD_BIN (default <repo>/build/steerd), CHROMIUM (default /usr/bin/chromium),
NODE (default node), STEERD_KEEP_TMP=1 keeps temp dirs, STEERD_E2E_BUDGET (seconds, default 260):
scenarios that would start after it are failed as not run.

Adding a scenario: append a Scenario to SCENARIOS: config overrides (merged into base_config()),
the player, expect="pass" or "xfail" (with the reason), an optional CdnStop step and checks.
"""

import argparse
import atexit
import dataclasses
import functools
import http.server
import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
import typing
import xml.etree.ElementTree as ET

E2E_DIR = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(E2E_DIR, "..", "support"))
import steerdtest as st  # noqa: E402

STREAM_SECONDS = 30
SEGMENT_RE = re.compile(r"/(seg_[^/?]+\.m4s|init_[^/?]+\.mp4)(\?|$)")
MANIFEST_RE = re.compile(r"\.(m3u8|mpd)(\?|$)")
CDN_NAMES = ("alpha", "beta")


# ---------------------------------------------------------------------------------------------
# Helpers


def deep_merge(base, over):
    """A copy of base with over merged in: dicts recursively, other values replaced, a None
    value removes the key."""
    out = dict(base)
    for k, v in over.items():
        if v is None:
            out.pop(k, None)
        elif isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = v
    return out


def log(verbose, msg):
    if verbose:
        sys.stderr.write("  . %s\n" % msg)


# ---------------------------------------------------------------------------------------------
# Scenarios


@dataclasses.dataclass
class CdnStop:
    """Mid-playback failure: once currentTime reaches at_s, stop the nginx of target ("serving":
    the CDN that served the latest segment; or a CDN id). Then playback must go on for resume_s
    more seconds of currentTime within deadline_s, and (max_freeze_s set) currentTime may stand
    still for at most max_freeze_s at a time after the stop (check_freeze_after_stop)."""

    at_s: float = 3.0
    target: str = "serving"
    resume_s: float = 8.0
    deadline_s: float = 14.0
    max_freeze_s: typing.Optional[float] = None


@dataclasses.dataclass
class Scenario:
    name: str
    player: str  # "hls" or "dash"
    config: dict = dataclasses.field(default_factory=dict)  # merged into base_config()
    expect: str = "pass"  # or "xfail": the outcome today is a known limitation
    reason: str = ""  # why an xfail fails (printed)
    play_s: float = 8.0  # currentTime playback must reach (without a CdnStop)
    cdn_stop: typing.Optional[CdnStop] = None
    checks: tuple = ()  # functions (Result) -> list of problems
    timeout_s: float = 25.0  # from page open to play_s (or to the CDN stop)

    @property
    def manifest(self):
        return "master.m3u8" if self.player == "hls" else "manifest.mpd"


def redirect_mode(**more):
    """Config overrides for the 302 mode: the manifest request itself is redirected."""
    return deep_merge({"policy": {"manifest_mode": "redirect"}}, more)


def rewrite_mode(**more):
    """Config overrides for the rewrite mode (the default, written out): steerd answers every
    playlist / MPD itself; HLS multivariant playlists list each variant once per ranked CDN
    (redundant streams), MPDs carry one BaseURL per CDN."""
    return deep_merge({"policy": {"manifest_mode": "rewrite"},
                       "manifest": {"redundant_streams": True}}, more)


# Filled in by Rig.run: steerd's own base URL (it must be known before steerd starts, since
# manifest.public_base_url makes SERVER-URI / <ContentSteering> / RELOAD-URI absolute) and the
# rig's steering key file (mode 0600).
SELF_BASE = "@steerd-base-url@"
SELF_KEY_FILE = "@steering-key-file@"
STEERING_TTL_S = 2


def steering_mode(**more):
    """Config overrides for the steering mode: manifests are rewritten as in rewrite mode and
    carry Content Steering (HLS EXT-X-CONTENT-STEERING + a PATHWAY-ID per CDN, DASH
    <ContentSteering> + BaseURL@serviceLocation) pointing back at steerd's /steer/hls and
    /steer/dash; the players poll every STEERING_TTL_S seconds with a signed state."""
    return deep_merge({"policy": {"manifest_mode": "steering"},
                       "manifest": {"public_base_url": SELF_BASE},
                       "steering": {"ttl_s": STEERING_TTL_S, "ttl_min_s": 1, "ttl_max_s": 30,
                                    "key_file": SELF_KEY_FILE}}, more)


def resolve_self(cfg, base_url, key_file):
    """cfg with SELF_BASE / SELF_KEY_FILE replaced (recursively)."""
    if isinstance(cfg, dict):
        return {k: resolve_self(v, base_url, key_file) for k, v in cfg.items()}
    if isinstance(cfg, list):
        return [resolve_self(v, base_url, key_file) for v in cfg]
    if cfg == SELF_BASE:
        return base_url
    if cfg == SELF_KEY_FILE:
        return key_file
    return cfg


# Checks: each gets a Result and returns a list of problems (empty: fine).


def _first_manifest_at_steerd(r):
    hops = [e for e in r.net if e["host"] == r.steerd_host and MANIFEST_RE.search(e["url"])]
    return hops[0] if hops else None


def check_manifest_redirected(r):
    """The manifest request reached steerd and was answered with a 302 to the CDN it names,
    with CORS (a cross-origin 302 without Access-Control-Allow-Origin is not followed)."""
    e = _first_manifest_at_steerd(r)
    if e is None:
        return ["no manifest request reached steerd"]
    out = []
    if e["status"] != 302:
        out.append("manifest answered %s (%s), expected 302" % (e["status"], e["failure"]))
    if e["steerdCdn"] not in r.cdn_hosts.values():
        out.append("manifest 302 names CDN %r" % e["steerdCdn"])
    if not e["acao"]:
        out.append("manifest 302 without Access-Control-Allow-Origin")
    loc_host = e["location"] and re.sub(r"^https?://([^/]+).*$", r"\1", e["location"])
    if e["steerdCdn"] and r.cdn_hosts.get(loc_host) != e["steerdCdn"]:
        out.append("302 Location %r is not CDN %s" % (e["location"], e["steerdCdn"]))
    return out


def check_manifest_served(r):
    """The manifest request was answered by steerd itself (200, X-Steerd-CDN, CORS): the
    rewrite and steering modes."""
    e = _first_manifest_at_steerd(r)
    if e is None:
        return ["no manifest request reached steerd"]
    out = []
    if e["status"] != 200:
        out.append("manifest answered %s (%s), expected 200" % (e["status"], e["failure"]))
    if e["steerdCdn"] not in r.cdn_hosts.values():
        out.append("manifest answer names CDN %r" % e["steerdCdn"])
    if not e["acao"]:
        out.append("manifest answer without Access-Control-Allow-Origin")
    return out


def _manifests(r, before_stop=True):
    entries = r.net
    if r.stop_index is not None:
        entries = entries[: r.stop_index] if before_stop else entries[r.stop_index:]
    return [e for e in entries
            if MANIFEST_RE.search(e["url"].split("?")[0]) and not (300 <= e["status"] < 400)]


def check_playlists_from_steerd(r):
    """Rewrite mode: every playlist / MPD request went to steerd and was answered 200 with
    X-Steerd-CDN and CORS; for HLS the media playlists were requested too, with the steerd_s
    session the rewritten master wrote into their URIs (so they came from the rewrite), and
    before any CDN stop steerd chose the same CDN for them as for the master; a copy pinned
    with steerd_cdn=<id> was answered for that CDN (unless it is the stopped one); no segment
    was asked from steerd (the playlists' segment URIs point at the CDN)."""
    out = []
    mans = _manifests(r, before_stop=False) + _manifests(r, before_stop=True)
    for e in mans:
        if e["host"] != r.steerd_host:
            out.append("manifest %s fetched from %s, not steerd" % (e["url"], e["host"]))
        elif e["failure"] and "ERR_ABORTED" in e["failure"]:
            continue
        elif e["status"] != 200 or not e["acao"] or not e["steerdCdn"]:
            out.append("manifest %s: status %s, X-Steerd-CDN %r, ACAO %r (%s)"
                       % (e["url"], e["status"], e["steerdCdn"], e["acao"],
                          e["failure"] or e.get("note")))
    for e in r.net:
        if e["host"] == r.steerd_host and SEGMENT_RE.search(e["url"]):
            out.append("segment %s asked from steerd (%s): the playlist was not rewritten"
                       % (e["url"], e["status"]))
            break
    for e in mans:
        pin = re.search(r"[?&]steerd_cdn=([^&]+)", e["url"])
        if (pin and e["status"] == 200 and e["steerdCdn"] != pin.group(1)
                and pin.group(1) != r.stopped):
            out.append("%s pinned to %s, answered for %s while it was up"
                       % (e["url"], pin.group(1), e["steerdCdn"]))
    if r.scn.player == "hls":
        media = [e for e in _manifests(r) if e["host"] == r.steerd_host
                 and not e["url"].split("?")[0].endswith("/" + r.scn.manifest)]
        if not media:
            out.append("no media playlist was requested from steerd")
        for e in media:
            if "steerd_s=" not in e["url"]:
                out.append("media playlist %s without steerd_s: not from the rewritten master"
                           % e["url"])
            elif "steerd_cdn=" not in e["url"] and e["steerdCdn"] != r.chosen:
                out.append("media playlist %s: steerd chose %s, the master %s"
                           % (e["url"], e["steerdCdn"], r.chosen))
    return out[:5]


def check_segments_on_chosen(r):
    """Every segment (before any CDN stop) was fetched from the CDN steerd chose, answered 200
    with its X-Served-By."""
    if not r.chosen:
        return ["no CDN chosen by steerd (X-Steerd-CDN) to compare with"]
    segs = [e for e in r.segments(before_stop=True)]
    if len(segs) < 3:
        return ["only %d segment requests before the end/stop" % len(segs)]
    out = []
    for e in segs:
        cdn = r.cdn_hosts.get(e["host"], e["host"])
        if cdn != r.chosen:
            out.append("segment %s fetched from %s, steerd chose %s" % (e["url"], cdn, r.chosen))
        elif e["failure"] and "ERR_ABORTED" in e["failure"]:
            continue  # the player cancelled it (level switch)
        elif e["status"] != 200 or e["servedBy"] != r.chosen:
            out.append("segment %s: status %s, X-Served-By %r (%s)"
                       % (e["url"], e["status"], e["servedBy"], e["failure"] or e.get("note")))
    return out[:5]


def after_stop(fn):
    """Marks a check of what happens after the CDN stop: an xfail scenario may fail only
    there (a failure before the stop is a broken rig or steerd, never expected)."""
    fn.after_stop = True
    return fn


@after_stop
def check_freeze_after_stop(r):
    """After the CDN stop, currentTime never stood still for more than max_freeze_s (the
    player's freezes list: spells in which it did not move while the video was playing)."""
    limit = r.scn.cdn_stop.max_freeze_s if r.scn.cdn_stop else None
    if r.stopped is None or limit is None:
        return []
    worst = r.max_freeze_after_stop()
    if worst > limit:
        return ["playback froze for %.1fs after %s stopped (at most %.1fs allowed)"
                % (worst, r.stopped, limit)]
    return []


@after_stop
def check_segments_moved_after_stop(r):
    """After the CDN stop, segments were fetched (with success) from another CDN."""
    if r.stopped is None:
        return ["no CDN was stopped"]
    moved = [e for e in r.segments(before_stop=False)
             if e["status"] == 200 and r.cdn_hosts.get(e["host"]) not in (None, r.stopped)]
    if not moved:
        return ["no segment came from another CDN after %s stopped" % r.stopped]
    return []


STEER_RE = re.compile(r"/steer/(hls|dash)(\?|$)")


def _steering_polls(r, before_stop=True):
    entries = r.net
    if r.stop_index is not None:
        entries = entries[: r.stop_index] if before_stop else entries[r.stop_index:]
    elif not before_stop:
        entries = []
    return [e for e in entries if e["host"] == r.steerd_host and STEER_RE.search(e["url"])]


def _steering_answers(r, before_stop=True):
    """The steering answers the player took in (its own event), before or after the CDN stop."""
    answers = r.page.get("steering") or []
    if r.steering_at_stop is None:
        return answers if before_stop else []
    n = r.steering_at_stop
    return answers[:n] if before_stop else answers[n:]


def check_steering_polls(r):
    """Steering mode, before any CDN stop: the player polled steerd's steering server for its
    format (answered 200 with CORS), the first poll carried the session of the manifest
    (steerd_s) and later ones the signed state of a RELOAD-URI (st=), the player took the
    answers in, their first pathway was the CDN steerd chose for the manifest, and steerd's
    /metrics counted the polls."""
    fmt = r.scn.player
    out = []
    polls = _steering_polls(r, before_stop=True)
    if not polls:
        return ["no steering request reached steerd before the end/stop"]
    for e in polls:
        if "/steer/%s" % fmt not in e["url"]:
            out.append("steering request %s is not for /steer/%s" % (e["url"], fmt))
        elif e["failure"] and "ERR_ABORTED" in e["failure"]:
            continue
        elif e["status"] != 200 or not e["acao"]:
            out.append("steering request %s: status %s, ACAO %r (%s)"
                       % (e["url"], e["status"], e["acao"], e["failure"] or e.get("note")))
    if "steerd_s=" not in polls[0]["url"] and "st=" not in polls[0]["url"]:
        out.append("first steering request %s carries no session" % polls[0]["url"])
    if len(polls) > 1 and not any(re.search(r"[?&]st=", e["url"]) for e in polls[1:]):
        out.append("no steering request carried a signed state (st=) from a RELOAD-URI")
    answers = _steering_answers(r, before_stop=True)
    if not answers:
        out.append("the player took in no steering answer before the end/stop")
    for a in answers:
        if not a["priority"] or a["priority"][0] != r.chosen:
            out.append("steering answer %s before the stop, steerd chose %s for the manifest"
                       % (a["priority"], r.chosen))
            break
    counted = r.steerd_steering.get(fmt)
    if counted is None:
        out.append("steerd's /metrics has no steerd_steering_requests_total{format=%s}" % fmt)
    elif counted < sum(1 for e in _steering_polls(r) + _steering_polls(r, False)
                       if e["status"] == 200):
        out.append("steerd counted %d steering requests, the player made more" % counted)
    return out[:5]


@after_stop
def check_steering_rerank(r):
    """Steering mode, after the CDN stop: the player polled again, took in an answer that put
    another CDN first and no longer offered the stopped one, and reported (_HLS_pathway /
    _DASH_pathway, counted by steerd as compliance) being on that CDN."""
    if r.stopped is None:
        return ["no CDN was stopped"]
    out = []
    polls = [e for e in _steering_polls(r, before_stop=False) if e["status"] == 200]
    if not polls:
        out.append("no steering request was answered after %s stopped" % r.stopped)
    answers = _steering_answers(r, before_stop=False)
    rerank = [a for a in answers
              if a["priority"] and a["priority"][0] != r.stopped and r.stopped not in a["priority"]]
    if not rerank:
        out.append("no steering answer after the stop dropped %s (answers: %s)"
                   % (r.stopped, [a["priority"] for a in answers]))
    else:
        new = rerank[0]["priority"][0]
        on_new = r.steerd_compliance.get((new, "match"), 0.0)
        if on_new < 1:
            out.append("no steering poll reported being on %s (compliance %s)"
                       % (new, r.steerd_compliance))
    return out


@after_stop
def check_cdn_logs_moved(r):
    """From the CDNs' own nginx access logs (this scenario's path only): the stopped CDN served
    segments before the stop, another CDN served none before it and several after it."""
    if r.stopped is None or r.cdn_log_at_stop is None:
        return ["no CDN was stopped"]
    out = []
    if r.cdn_log_at_stop.get(r.stopped, 0) < 3:
        out.append("%s's access log shows %d segments before it was stopped"
                   % (r.stopped, r.cdn_log_at_stop.get(r.stopped, 0)))
    others = [n for n in CDN_NAMES if n != r.stopped]
    gained = {n: r.cdn_log_end.get(n, 0) - r.cdn_log_at_stop.get(n, 0) for n in others}
    for n in others:
        if r.cdn_log_at_stop.get(n, 0):
            out.append("%s's access log shows %d segments before the stop (steering chose %s)"
                       % (n, r.cdn_log_at_stop[n], r.chosen))
    if max(gained.values()) < 2:
        out.append("the other CDNs' access logs show %s segments served after the stop" % gained)
    return out


SCENARIOS = [
    Scenario(
        "hls-302", "hls", config=redirect_mode(),
        checks=(check_manifest_redirected, check_segments_on_chosen),
    ),
    Scenario(
        "dash-302", "dash", config=redirect_mode(),
        checks=(check_manifest_redirected, check_segments_on_chosen),
    ),
    Scenario(
        "hls-302-cdn-stop", "hls", config=redirect_mode(),
        cdn_stop=CdnStop(at_s=3.0, target="serving", resume_s=8.0, deadline_s=14.0),
        checks=(check_manifest_redirected, check_segments_on_chosen,
                check_segments_moved_after_stop),
        expect="xfail",
        reason="302 mode: relative URIs resolve against the CDN's URL, so the player never "
               "asks steerd again; manifest rewriting / Content Steering will fix this",
    ),
    # Manifest rewriting: steerd answers the master / MPD and (HLS) every media playlist itself.
    Scenario(
        "hls-rewrite", "hls", config=rewrite_mode(),
        checks=(check_manifest_served, check_playlists_from_steerd, check_segments_on_chosen),
    ),
    Scenario(
        "dash-rewrite", "dash", config=rewrite_mode(),
        checks=(check_manifest_served, check_playlists_from_steerd, check_segments_on_chosen),
    ),
    # The serving CDN dies mid-playback (buffers capped at 4 s): hls.js moves to the redundant
    # copy of the variant (pinned to the other CDN), dash.js to the next BaseURL.
    Scenario(
        "hls-rewrite-cdn-stop", "hls", config=rewrite_mode(),
        cdn_stop=CdnStop(at_s=4.0, target="serving", resume_s=6.0, deadline_s=12.0,
                         max_freeze_s=2.0),
        checks=(check_manifest_served, check_playlists_from_steerd, check_segments_on_chosen,
                check_segments_moved_after_stop, check_freeze_after_stop),
    ),
    # dash.js retries a failed segment 3 times 1 s apart before it takes the next BaseURL, for
    # each media type on its own: a freeze of up to about that long is dash.js, not steerd.
    Scenario(
        "dash-rewrite-cdn-stop", "dash", config=rewrite_mode(),
        cdn_stop=CdnStop(at_s=4.0, target="serving", resume_s=6.0, deadline_s=12.0,
                         max_freeze_s=4.0),
        checks=(check_manifest_served, check_playlists_from_steerd, check_segments_on_chosen,
                check_segments_moved_after_stop, check_freeze_after_stop),
    ),
    # Content Steering: the manifests name every CDN as a pathway and steerd's steering servers
    # (TTL 2 s) tell the players which one to use.
    Scenario(
        "hls-steering", "hls", config=steering_mode(),
        checks=(check_manifest_served, check_playlists_from_steerd, check_segments_on_chosen,
                check_steering_polls),
    ),
    Scenario(
        "dash-steering", "dash", config=steering_mode(),
        checks=(check_manifest_served, check_playlists_from_steerd, check_segments_on_chosen,
                check_steering_polls),
    ),
    # The serving CDN dies mid-playback: steerd's probes mark it down (fall 2 x 500 ms), the next
    # poll puts the other CDN first, the player moves there.
    Scenario(
        "hls-steering-cdn-stop", "hls", config=steering_mode(),
        cdn_stop=CdnStop(at_s=4.0, target="serving", resume_s=6.0, deadline_s=12.0,
                         max_freeze_s=2.0),
        checks=(check_manifest_served, check_playlists_from_steerd, check_segments_on_chosen,
                check_steering_polls, check_segments_moved_after_stop, check_steering_rerank,
                check_cdn_logs_moved, check_freeze_after_stop),
    ),
    Scenario(
        "dash-steering-cdn-stop", "dash", config=steering_mode(),
        cdn_stop=CdnStop(at_s=4.0, target="serving", resume_s=6.0, deadline_s=12.0,
                         max_freeze_s=4.0),
        checks=(check_manifest_served, check_playlists_from_steerd, check_segments_on_chosen,
                check_steering_polls, check_segments_moved_after_stop, check_steering_rerank,
                check_cdn_logs_moved, check_freeze_after_stop),
    ),
]


# ---------------------------------------------------------------------------------------------
# The test stream


def make_stream(dest):
    """Encodes the 30 s test stream into dest (fMP4, 2 s segments; DASH manifest.mpd, HLS
    master.m3u8 + media_N.m3u8 sharing the segments) and writes the HLS master from the MPD
    (ffmpeg's own master may lack CODECS or carry an extra audio-only variant)."""
    os.makedirs(dest, exist_ok=True)
    cmd = [
        "ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-y",
        "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30",
        "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
        "-t", str(STREAM_SECONDS),
        "-filter_complex", "[0:v]split=2[v1][v2];[v2]scale=320:180[v2o]",
        "-map", "[v1]", "-map", "[v2o]", "-map", "1:a",
        "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p", "-bf", "0",
        "-g", "60", "-keyint_min", "60", "-sc_threshold", "0",
        "-profile:v:0", "main", "-b:v:0", "800k", "-maxrate:v:0", "880k", "-bufsize:v:0", "1600k",
        "-profile:v:1", "baseline", "-b:v:1", "250k", "-maxrate:v:1", "275k",
        "-bufsize:v:1", "500k",
        "-c:a", "aac", "-b:a", "96k", "-ac", "2",
        "-f", "dash", "-seg_duration", "2", "-use_template", "1", "-use_timeline", "0",
        "-hls_playlist", "1",
        "-init_seg_name", "init_$RepresentationID$.mp4",
        "-media_seg_name", "seg_$RepresentationID$_$Number%03d$.m4s",
        "-adaptation_sets", "id=0,streams=v id=1,streams=a",
        "manifest.mpd",
    ]
    subprocess.run(cmd, cwd=dest, check=True, timeout=120, stdin=subprocess.DEVNULL)
    write_hls_master(dest)
    return dest


def write_hls_master(dest):
    ns = {"d": "urn:mpeg:dash:schema:mpd:2011"}
    root = ET.parse(os.path.join(dest, "manifest.mpd")).getroot()
    video, audio = [], []
    for aset in root.iterfind(".//d:AdaptationSet", ns):
        for rep in aset.iterfind("d:Representation", ns):
            mime = rep.get("mimeType") or aset.get("mimeType") or ""
            (video if mime.startswith("video/") or aset.get("contentType") == "video"
             else audio).append(rep)
    if not video or not audio:
        raise RuntimeError("the MPD has no video or no audio representation")
    for rep in video + audio:
        if not os.path.exists(os.path.join(dest, "media_%s.m3u8" % rep.get("id"))):
            raise RuntimeError("ffmpeg wrote no media_%s.m3u8" % rep.get("id"))
    a = audio[0]
    lines = [
        "#EXTM3U",
        "#EXT-X-VERSION:7",
        "#EXT-X-INDEPENDENT-SEGMENTS",
        '#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="audio",NAME="audio",LANGUAGE="en",DEFAULT=YES,'
        'AUTOSELECT=YES,CHANNELS="2",URI="media_%s.m3u8"' % a.get("id"),
    ]
    for v in video:
        bw = int(v.get("bandwidth")) + int(a.get("bandwidth"))
        lines.append('#EXT-X-STREAM-INF:BANDWIDTH=%d,RESOLUTION=%sx%s,CODECS="%s,%s",AUDIO="audio"'
                     % (bw, v.get("width"), v.get("height"), v.get("codecs"), a.get("codecs")))
        lines.append("media_%s.m3u8" % v.get("id"))
    with open(os.path.join(dest, "master.m3u8"), "w") as f:
        f.write("\n".join(lines) + "\n")


# ---------------------------------------------------------------------------------------------
# The page server: player.html, player.js and node_modules on an origin of their own


class _PageHandler(http.server.SimpleHTTPRequestHandler):
    def end_headers(self):
        self.send_header("Cache-Control", "no-store")
        super().end_headers()

    def log_message(self, fmt, *args):
        pass


class PageServer:
    def __init__(self):
        handler = functools.partial(_PageHandler, directory=E2E_DIR)
        self.httpd = http.server.ThreadingHTTPServer((st.LOOPBACK, 0), handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, player, src):
        from urllib.parse import urlencode

        return "http://%s:%d/player.html?%s" % (st.LOOPBACK, self.port,
                                                urlencode({"player": player, "src": src}))

    def cleanup(self):
        self.httpd.shutdown()
        self.httpd.server_close()


# ---------------------------------------------------------------------------------------------
# The browser: driver.mjs (node + playwright-core + Chromium), one JSON line per command


class Browser:
    def __init__(self, tmpdir):
        self.tmpdir = tmpdir  # the driver's TMPDIR: Chromium's profile lives under it
        self.stderr_path = os.path.join(tmpdir, "driver.log")
        env = dict(os.environ, TMPDIR=tmpdir)
        err = open(self.stderr_path, "ab")
        try:
            self.proc = subprocess.Popen(
                [os.environ.get("NODE", "node"), os.path.join(E2E_DIR, "driver.mjs")],
                cwd=E2E_DIR, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err,
                start_new_session=True, preexec_fn=st._die_with_parent(signal.SIGTERM),
            )
        finally:
            err.close()
        self.lines = queue.Queue()
        self.next_id = 1
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def call(self, op, timeout=30.0, **kw):
        msg = dict(kw, id=self.next_id, op=op)
        self.next_id += 1
        try:
            self.proc.stdin.write((json.dumps(msg) + "\n").encode())
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            raise RuntimeError("the browser driver is gone: %s" % st.tail(self.stderr_path, 2000))
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise RuntimeError("browser driver: no answer to %r within %.0f s" % (op, timeout))
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                continue
            if line is None:
                raise RuntimeError("the browser driver exited: %s"
                                   % st.tail(self.stderr_path, 2000))
            ans = json.loads(line)
            if ans.get("id") != msg["id"]:
                continue  # the late answer to a command that timed out
            if not ans.get("ok"):
                raise RuntimeError("browser %s: %s" % (op, ans.get("error")))
            return ans.get("result")

    def _chromium_pids(self):
        """Processes whose command line names this run's private TMPDIR (Chromium and its
        helpers, if the driver died without closing them)."""
        pids = []
        needle = self.tmpdir.encode()
        for d in os.listdir("/proc"):
            if not d.isdigit() or int(d) == os.getpid():
                continue
            try:
                with open("/proc/%s/cmdline" % d, "rb") as f:
                    if needle in f.read():
                        pids.append(int(d))
            except OSError:
                pass
        return pids

    def cleanup(self):
        if self.proc.poll() is None:
            try:
                self.call("quit", timeout=10.0)
            except Exception:
                pass
            st._kill_group_and_wait(self.proc, signal.SIGTERM, 5.0)
        for pid in self._chromium_pids():
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass


# ---------------------------------------------------------------------------------------------
# Running a scenario


class Result:
    def __init__(self, scn, steerd_host, cdn_hosts):
        self.scn = scn
        self.steerd_host = steerd_host
        self.cdn_hosts = cdn_hosts  # "127.0.0.1:port" -> CDN id
        self.page = {}
        self.net = []
        self.console = []
        self.chosen = None  # X-Steerd-CDN of steerd's first answer to the manifest
        self.stopped = None  # the CDN stopped by a CdnStop step
        self.stop_index = None  # len(net) when it was stopped
        self.stop_at = None  # currentTime when it was stopped
        self.reached_stop = False
        self.problems = []  # every problem, in order
        self.early_problems = []  # those that are not about what happened after the CDN stop
        self.seconds = 0.0
        self.steerd_302 = None
        self.steering_at_stop = None  # steering answers the player had taken in by then
        self.steerd_steering = {}  # format -> steerd_steering_requests_total
        self.steerd_compliance = {}  # (cdn, result) -> steerd_steering_compliance_total
        self.cdn_log_at_stop = None  # CDN id -> segments it logged (200) for this scenario
        self.cdn_log_end = {}

    def problem(self, text, after_stop=False):
        self.problems.append(text)
        if not after_stop:
            self.early_problems.append(text)

    def segments(self, before_stop=True):
        """Segment fetches (final hops: not steerd's own 302s), before or after the CDN stop."""
        entries = self.net
        if self.stop_index is not None:
            entries = entries[: self.stop_index] if before_stop else entries[self.stop_index:]
        elif not before_stop:
            entries = []
        return [e for e in entries
                if SEGMENT_RE.search(e["url"]) and not (300 <= e["status"] < 400)]

    def max_freeze_after_stop(self):
        """Longest freeze (seconds) that began at or after the CDN stop's currentTime."""
        if self.stop_at is None:
            return 0.0
        return max([f["ms"] / 1000.0 for f in self.page.get("freezes") or []
                    if f["at"] >= self.stop_at - 0.05] + [0.0])

    def update(self, state):
        self.page = state.get("page") or {}
        self.net = state.get("net") or []
        self.console = state.get("console") or []
        e = _first_manifest_at_steerd(self)
        self.chosen = e["steerdCdn"] if e else None

    @property
    def played(self):
        return float(self.page.get("maxTime") or 0.0)

    @property
    def fatal(self):
        return self.page.get("fatal") or []

    def summary(self):
        p = self.page
        hosts = {}
        for e in self.segments(before_stop=True):
            cdn = self.cdn_hosts.get(e["host"], e["host"])
            hosts[cdn] = hosts.get(cdn, 0) + 1
        parts = ["played=%.1fs" % self.played]
        if p.get("startMs") is not None:
            parts.append("start=%.1fs" % (p["startMs"] / 1000.0))
        if self.chosen:
            parts.append("cdn=%s" % self.chosen)
        parts.append("segs=%d(%s)" % (sum(hosts.values()),
                                      ",".join("%s:%d" % kv for kv in sorted(hosts.items()))))
        parts.append("steerd_reqs=%d" % sum(1 for e in self.net if e["host"] == self.steerd_host))
        if self.steerd_302 is not None:
            parts.append("steerd_302=%d" % self.steerd_302)
        if self.page.get("steering") is not None and self.scn.config.get("steering"):
            polls = _steering_polls(self) + _steering_polls(self, False)
            parts.append("steer_polls=%d" % len(polls))
        parts.append("stalls=%d" % (p.get("stalls") or 0))
        if self.stopped:
            after = [e for e in self.net[self.stop_index:]]
            to_stopped = [e for e in after if self.cdn_hosts.get(e["host"]) == self.stopped]
            failed = [e for e in to_stopped if e["failure"] or e["status"] >= 400]
            parts.append("stopped=%s@%.1fs after_stop: %d reqs to %s (%d failed), %d to steerd"
                         % (self.stopped, self.stop_at, len(to_stopped), self.stopped,
                            len(failed), sum(1 for e in after if e["host"] == self.steerd_host)))
            moved = {}
            for e in self.segments(before_stop=False):
                if e["status"] == 200:
                    cdn = self.cdn_hosts.get(e["host"], e["host"])
                    moved[cdn] = moved.get(cdn, 0) + 1
            parts.append("segs_after=%d(%s) max_freeze=%.1fs"
                         % (sum(moved.values()),
                            ",".join("%s:%d" % kv for kv in sorted(moved.items())),
                            self.max_freeze_after_stop()))
        parts.append("fatal=%d" % len(self.fatal))
        if self.fatal:
            f = self.fatal[0]
            parts.append("(%s %s %s)" % (f["source"], f["code"], f["details"][:60]))
        return " ".join(parts)


class Rig:
    def __init__(self, verbose=False, artifacts=None):
        self.verbose = verbose
        self.artifacts = artifacts
        self.tmp = st.make_tmpdir("steerd-e2e-")
        atexit.register(self.cleanup)
        self.browser = None
        self.pages = None
        t = time.monotonic()
        stream = make_stream(os.path.join(self.tmp, "stream"))
        self.stream_dir = stream
        self.stream_seconds = time.monotonic() - t
        self.docroot = os.path.join(self.tmp, "docroot")
        os.makedirs(os.path.join(self.docroot, "vod"))
        self.origin = st.Nginx("origin", role="origin", docroot=self.docroot).start()
        self.cdn = {n: st.Nginx(n, role="cdn", origin_port=self.origin.port).start()
                    for n in CDN_NAMES}
        self.cdn_hosts = {"%s:%d" % (st.LOOPBACK, c.port): n for n, c in self.cdn.items()}
        self.key_file = os.path.join(self.tmp, "steering-keys.json")
        fd = os.open(self.key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump({"current_kid": 1, "keys": [{"kid": 1, "key_hex": os.urandom(32).hex()}]}, f)
        self.pages = PageServer()
        self.browser = Browser(self.tmp)

    def cdn_segments_logged(self, scn):
        """CDN id -> segment requests of this scenario that its nginx logged with status 200."""
        pat = re.compile(r'"GET /vod/%s/seg_[^ ]+ HTTP/[0-9.]+" 200 ' % re.escape(scn.name))
        out = {}
        for n, c in self.cdn.items():
            try:
                with open(c.access_log, "r", errors="replace") as f:
                    out[n] = sum(1 for ln in f if pat.search(ln))
            except OSError:
                out[n] = 0
        return out

    def base_config(self):
        cdns = [st.cdn_entry(n, self.cdn[n], interval_ms=500, timeout_ms=400, rise=2, fall=2)
                for n in CDN_NAMES]
        return st.default_config(cdns, origin={"base_url": "http://%s:%d" % (st.LOOPBACK,
                                                                          self.origin.port)})

    def run(self, scn):
        t_start = time.monotonic()
        for n in self.cdn.values():
            if not n.running():
                n.start()
        os.symlink(self.stream_dir, os.path.join(self.docroot, "vod", scn.name))
        cfg = deep_merge(self.base_config(), scn.config)
        if resolve_self(cfg, None, None) != cfg:
            port = st.free_port()
            cfg = resolve_self(cfg, "http://%s:%d" % (st.LOOPBACK, port), self.key_file)
            cfg["listen"] = ["%s:%d" % (st.LOOPBACK, port)]
        d = st.Steerd(cfg, name="e2e-" + scn.name, wait_ready=True)
        log(self.verbose, "steerd ready in %.1fs" % (time.monotonic() - t_start))
        r = Result(scn, "%s:%d" % (st.LOOPBACK, d.port), self.cdn_hosts)
        try:
            self._play(scn, d, r)
            try:
                m = d.metrics()
                for k, v in m.items():
                    g = re.match(r'steerd_steering_requests_total\{format="(\w+)"\}$', k)
                    if g:
                        r.steerd_steering[g.group(1)] = v
                    g = re.match(r'steerd_steering_compliance_total\{cdn="([^"]+)",'
                                 r'result="(\w+)"\}$', k)
                    if g:
                        r.steerd_compliance[(g.group(1), g.group(2))] = v
            except Exception as e:
                r.problem("steerd /metrics: %s" % e)
            for chk in scn.checks:
                for p in chk(r):
                    r.problem(p, getattr(chk, "after_stop", False))
            try:
                r.steerd_302 = int(d.metric("steerd_requests_total", 0.0, route="redirect",
                                            code="302"))
            except Exception:
                pass
        except Exception as e:
            r.problem("error: %s" % e)
        finally:
            if self.artifacts:
                self._save(scn, r)
            try:
                self.browser.call("close", timeout=15.0)
            except Exception as e:
                r.problem("browser close: %s" % e)
            if d.alive() and d.stop(timeout=5.0) != 0:
                r.problem("steerd exited with %s" % d.returncode)
            if r.problems and self.verbose:
                sys.stderr.write(d.logs() + "\n")
            d.cleanup()
        r.seconds = time.monotonic() - t_start
        return r

    def _save(self, scn, r):
        os.makedirs(self.artifacts, exist_ok=True)
        base = os.path.join(self.artifacts, scn.name)
        try:
            self.browser.call("screenshot", timeout=15.0, path=base + ".png")
        except Exception as e:
            sys.stderr.write("screenshot of %s: %s\n" % (scn.name, e))
        with open(base + ".json", "w") as f:
            json.dump({"scenario": scn.name, "problems": r.problems, "chosen": r.chosen,
                       "stopped": r.stopped, "stop_index": r.stop_index, "page": r.page,
                       "net": r.net, "console": r.console, "cdn_hosts": r.cdn_hosts,
                       "steerd": r.steerd_host, "steerd_steering": r.steerd_steering,
                       "steerd_compliance": ["%s %s %g" % (c, res, v) for (c, res), v
                                             in sorted(r.steerd_compliance.items())],
                       "cdn_log_at_stop": r.cdn_log_at_stop, "cdn_log_end": r.cdn_log_end},
                      f, indent=1)

    def _state(self, r):
        r.update(self.browser.call("state", timeout=10.0))

    def _wait_play(self, r, target, deadline):
        """Polls until maxTime >= target (True), a fatal error or the deadline (False)."""
        while True:
            self._state(r)
            if r.fatal:
                return False
            if r.played >= target:
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.25)

    def _play(self, scn, d, r):
        src = "http://%s:%d/vod/%s/%s" % (st.LOOPBACK, d.port, scn.name, scn.manifest)
        url = self.pages.url(scn.player, src)
        log(self.verbose, "open %s" % url)
        deadline = time.monotonic() + scn.timeout_s
        t = time.monotonic()
        self.browser.call("open", timeout=45.0, url=url)
        log(self.verbose, "browser open in %.1fs" % (time.monotonic() - t))
        stop = scn.cdn_stop
        first = stop.at_s if stop else scn.play_s
        if not self._wait_play(r, first, deadline):
            r.problem("playback reached %.1fs of %.1fs within %.0fs%s"
                              % (r.played, first, scn.timeout_s,
                                 " (before the CDN stop)" if stop else ""))
            return
        if not stop:
            return
        r.reached_stop = True
        target = stop.target
        if target == "serving":
            segs = [e for e in r.net if SEGMENT_RE.search(e["url"]) and e["status"] == 200]
            target = self.cdn_hosts.get(segs[-1]["host"]) if segs else None
            if target is None:
                r.problem("no segment came from a CDN before the stop")
                return
        r.stop_index = len(r.net)
        r.stop_at = float(r.page.get("currentTime") or 0.0)
        r.steering_at_stop = len(r.page.get("steering") or [])
        log(self.verbose, "stopping %s at currentTime %.2f" % (target, r.stop_at))
        self.cdn[target].stop()
        r.cdn_log_at_stop = self.cdn_segments_logged(scn)
        r.stopped = target
        goal = r.stop_at + stop.resume_s
        if not self._wait_play(r, goal, time.monotonic() + stop.deadline_s):
            r.problem("after stopping %s at %.1fs playback reached %.1fs of %.1fs within %.0fs"
                      % (target, r.stop_at, r.played, goal, stop.deadline_s), after_stop=True)
        self._state(r)
        r.cdn_log_end = self.cdn_segments_logged(scn)

    def cleanup(self):
        for obj in (self.browser, self.pages):
            if obj is not None:
                try:
                    obj.cleanup()
                except Exception as e:
                    sys.stderr.write("cleanup of %r failed: %s\n" % (obj, e))
        self.browser = self.pages = None
        for n in list(getattr(self, "cdn", {}).values()) + [getattr(self, "origin", None)]:
            if n is not None:
                n.cleanup()
        st.remove_tmpdir(self.tmp)


def outcome(scn, r):
    """(word, as expected?) for a finished scenario."""
    ok = not r.problems
    if scn.expect == "xfail":
        if ok:
            return "XPASS", False
        # An expected failure must fail at the step it documents, not before it.
        if r.early_problems or (scn.cdn_stop and not r.reached_stop):
            return "FAIL", False
        return "xfail", True
    return ("pass", True) if ok else ("FAIL", False)


def main(argv=None):
    ap = argparse.ArgumentParser(description="steerd end-to-end scenarios with real players")
    ap.add_argument("-k", action="append", default=[], help="run scenarios whose name contains it")
    ap.add_argument("--list", action="store_true", help="list the scenarios and exit")
    ap.add_argument("-v", "--verbose", action="store_true", help="progress and logs on failure")
    ap.add_argument("--artifacts", metavar="DIR",
                    help="save each scenario's state and a screenshot there")
    args = ap.parse_args(argv)

    chosen = [s for s in SCENARIOS if not args.k or any(k in s.name for k in args.k)]
    if args.list:
        for s in SCENARIOS:
            print("%-20s %-4s expect=%s%s" % (s.name, s.player, s.expect,
                                              " cdn-stop" if s.cdn_stop else ""))
        return 0
    if not chosen:
        print("no scenario matches %s" % args.k)
        print("0 passed, 1 failed")
        return 1
    budget = float(os.environ.get("STEERD_E2E_BUDGET", "260"))
    t0 = time.monotonic()
    st.steerd_bin()  # fails early without a binary
    rig = Rig(verbose=args.verbose,
              artifacts=os.path.abspath(args.artifacts) if args.artifacts else None)
    print("setup: stream %.1fs, rig ready in %.1fs (origin :%d, alpha :%d, beta :%d, page :%d)"
          % (rig.stream_seconds, time.monotonic() - t0, rig.origin.port, rig.cdn["alpha"].port,
             rig.cdn["beta"].port, rig.pages.port), flush=True)
    passed = failed = 0
    for scn in chosen:
        if time.monotonic() - t0 > budget:
            print("FAIL   %-20s not run: the %.0f s time budget is spent" % (scn.name, budget))
            failed += 1
            continue
        r = rig.run(scn)
        word, expected = outcome(scn, r)
        print("%-6s %-20s %5.1fs  %s" % (word, scn.name, r.seconds, r.summary()), flush=True)
        if word == "xfail":
            print("       %-20s expected failure: %s" % ("", scn.reason))
        if word == "XPASS":
            print("       %-20s passed but is marked xfail (%s): make it expect \"pass\""
                  % ("", scn.reason))
        for p in r.problems:
            print("       %-20s - %s" % ("", p))
        if not expected and args.verbose:
            for ln in r.page.get("events", [])[-30:] + r.console[-30:]:
                print("       %-20s | %s" % ("", ln))
        if expected:
            passed += 1
        else:
            failed += 1
    rig.cleanup()
    print("total %.1fs" % (time.monotonic() - t0))
    print("%d passed, %d failed" % (passed, failed))
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
