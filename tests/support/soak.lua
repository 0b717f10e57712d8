-- wrk script for tests/integration/test_soak.py: steady 302 traffic while the configuration is
-- reloaded every second.
--
-- Requests rotate over 1000 segment paths (50 titles) and X-Forwarded-For addresses with a known
-- answer in the test GeoIP databases; every 4th request carries a CMCD session id. The addresses
-- are only header values: every packet goes to the loopback URL given to wrk.
--
-- Environment:
--   STEERD_SOAK_BASES  space-separated CDN base URLs in the configuration, in a fixed order
--   STEERD_SOAK_OUT    file done() writes the samples to
--
-- response() files each answer's Location under the base it starts with (base + "/"), counts
-- statuses, keeps a few Locations under no base, and closes a bucket every BUCKET answers with
-- the count per base (so a change of weights shows up as a change of shares between buckets).
-- done() writes, one item per line:
--   total N / status S N / base I N / bad LOCATION / bucket N1 N2 ...

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
        local path = string.format("/vod/title%02d/video/seg_%05d.m4s", p % 50, p)
        if p % 4 == 3 then
            path = path .. string.format("?CMCD=sid%%3D%%22soak-%04d%%22", p)
        elseif p % 7 == 5 then
            path = path .. "?token=abc%2Fdef&x=1"
        end
        nreqs = nreqs + 1
        reqs[nreqs] = wrk.format("GET", path, { ["X-Forwarded-For"] = xff[(p % #xff) + 1] })
    end
end

function request()
    next_req = next_req % nreqs + 1
    return reqs[next_req]
end

function response(status, headers, body)
    total = total + 1
    statuses[status] = (statuses[status] or 0) + 1
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
