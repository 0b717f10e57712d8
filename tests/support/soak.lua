-- wrk script for tests/integration/test_soak.py: the mixed player workload while the
-- configuration is reloaded every second.
--
-- Requests rotate over 1000 segment paths (50 titles) and X-Forwarded-For addresses with a known
-- answer in the test GeoIP databases; every 4th request carries a CMCD session id. Mixed in, one
-- request in ten each: an HLS multivariant playlist, an HLS media playlist, an MPD (answered from
-- the origin through steerd's cache), an HLS or DASH steering poll with player parameters, and a
-- CMCD beacon POST. The addresses are only header values: every packet goes to the loopback URL
-- given to wrk.
--
-- Environment:
--   STEERD_SOAK_BASES  space-separated CDN base URLs in the configuration, in a fixed order
--   STEERD_SOAK_OUT    file done() writes the samples to
--
-- response() counts statuses per kind of request (kind S N lines: 302 for segments, 200 for
-- manifests and steering, 204 for beacons are expected), files each 302's Location under the base it starts with (base + "/"), counts
-- statuses, keeps a few Locations under no base, and closes a bucket every BUCKET answers with
-- the count per base (so a change of weights shows up as a change of shares between buckets).
-- done() writes, one item per line:
--   total N / status S N / kind K S N / base I N / bad LOCATION / bucket N1 N2 ...

local BUCKET = 400
local MAX_BAD = 20
local MAX_BUCKETS = 20000

local xff = {
    "89.160.20.112", -- country SE
    "81.2.69.142", -- country GB
    "1.128.0.0", -- ASN 1221
    "2001:218::1", -- country JP
    "198.51.100.7", -- in neither test database: the default region
    "10.99.1.2", -- a cidr region
    "2a02:cf40::1", -- an IPv6 address
}

local bases = {}
local reqs = {}
local nreqs = 0
local next_req = 0
local cur = {}
local cur_n = 0

-- Per-thread results, read back by done() through thread:get().
total = 0
statuses = {}
by_kind = {}
per_base = {}
bad = {}
nbad = 0
buckets = {}
nbuckets = 0

local threads = {}

function setup(thread)
    table.insert(threads, thread)
end

local function split(s)
    local out = {}
    for w in string.gmatch(s or "", "%S+") do
        table.insert(out, w)
    end
    return out
end

function init(args)
    bases = split(os.getenv("STEERD_SOAK_BASES"))
    for i = 1, #bases do
        per_base[i] = 0
        cur[i] = 0
    end
    for p = 0, 999 do
        local h = { ["X-Forwarded-For"] = xff[(p % #xff) + 1] }
        local req = nil
        local m = p % 10
        if m == 1 then
            req = wrk.format("GET", "/vod/soak/master.m3u8", h)
        elseif m == 3 then
            req = wrk.format("GET", "/vod/soak/v1/index.m3u8", h)
        elseif m == 5 then
            req = wrk.format("GET", "/vod/soak/manifest.mpd", h)
        elseif m == 7 then
            if p % 20 == 7 then
                req = wrk.format("GET", "/steer/hls?_HLS_pathway=%22alpha%22&_HLS_throughput=" ..
                    (1000000 + p * 1000), h)
            else
                req = wrk.format("GET", "/steer/dash?_DASH_pathway=%22beta%22&_DASH_throughput=" ..
                    (2000000 + p * 1000), h)
            end
        elseif m == 9 then
            local bh = { ["X-Forwarded-For"] = h["X-Forwarded-For"], ["Content-Type"] = "application/cmcd" }
            req = wrk.format("POST", "/beacon", bh,
                string.format('sid="soak-%04d",br=3000,bl=%d,mtp=%d,ot=v\n', p, p % 30000, 5000 + p))
        else
            local path = string.format("/vod/title%02d/video/seg_%05d.m4s", p % 50, p)
            if p % 4 == 0 then
                path = path .. string.format("?CMCD=sid%%3D%%22soak-%04d%%22", p)
            elseif p % 7 == 2 then
                path = path .. "?token=abc%2Fdef&x=1"
            end
            req = wrk.format("GET", path, h)
        end
        nreqs = nreqs + 1
        reqs[nreqs] = req
    end
end

function request()
    next_req = next_req % nreqs + 1
    return reqs[next_req]
end

-- wrk answers in order on each connection, but response() does not say which request it
-- answers; with pipelining off (the default) and one request in flight per connection, the
-- kind is told from the answer itself: a 302 is a segment, a 204 a beacon, a 200 by its type.
local function kind_of(status, headers)
    if status == 302 then
        return "segment"
    elseif status == 204 then
        return "beacon"
    end
    local ct = headers["Content-Type"] or headers["content-type"] or ""
    if string.find(ct, "mpegurl", 1, true) then
        return "playlist"
    elseif string.find(ct, "dash+xml", 1, true) then
        return "mpd"
    elseif string.find(ct, "json", 1, true) then
        return "steering"
    end
    return "other"
end

function response(status, headers, body)
    total = total + 1
    statuses[status] = (statuses[status] or 0) + 1
    local k = kind_of(status, headers) .. " " .. tostring(status)
    by_kind[k] = (by_kind[k] or 0) + 1
    if status ~= 302 then
        return
    end
    local loc = headers["Location"] or headers["location"]
    local hit = nil
    if loc ~= nil then
        for i = 1, #bases do
            local b = bases[i] .. "/"
            if string.sub(loc, 1, #b) == b then
                hit = i
                break
            end
        end
    end
    if hit == nil then
        if nbad < MAX_BAD then
            nbad = nbad + 1
            bad[nbad] = tostring(loc)
        end
        return
    end
    per_base[hit] = per_base[hit] + 1
    cur[hit] = cur[hit] + 1
    cur_n = cur_n + 1
    if cur_n >= BUCKET then
        if nbuckets < MAX_BUCKETS then
            nbuckets = nbuckets + 1
            buckets[nbuckets] = table.concat(cur, " ")
        end
        for i = 1, #bases do
            cur[i] = 0
        end
        cur_n = 0
    end
end

function done(summary, latency, requests)
    local path = os.getenv("STEERD_SOAK_OUT")
    local f = assert(io.open(path, "w"))
    for _, t in ipairs(threads) do
        f:write(string.format("total %d\n", t:get("total") or 0))
        for k, v in pairs(t:get("statuses") or {}) do
            f:write(string.format("status %s %d\n", tostring(k), v))
        end
        for k, v in pairs(t:get("by_kind") or {}) do
            f:write(string.format("kind %s %d\n", k, v))
        end
        for k, v in pairs(t:get("per_base") or {}) do
            f:write(string.format("base %d %d\n", k, v))
        end
        for _, v in pairs(t:get("bad") or {}) do
            f:write("bad " .. tostring(v) .. "\n")
        end
        for _, v in pairs(t:get("buckets") or {}) do
            f:write("bucket " .. v .. "\n")
        end
    end
    f:write(string.format("latency_p50_us %d\nlatency_p99_us %d\n", latency:percentile(50),
        latency:percentile(99)))
    f:close()
end
