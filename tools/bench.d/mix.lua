-- wrk script for tools/bench: the same request mix for nginx and for steerd.
--
-- Rotates over 1000 distinct segment paths and a handful of X-Forwarded-For addresses with a
-- known answer in the test GeoIP databases (tests/fixtures/geoip), so steerd does a real client
-- address, GeoIP, region and CDN decision per request. Every 5th request carries a CMCD session
-- id in the query. The addresses are only header values: every packet goes to the loopback URL
-- given to wrk.
--
-- response() checks that each answer is a 302 and counts anything else; done() prints
--   mix: requests=N status_302=N other=N
-- plus one "mix: status S: N" line per other status seen.

local xff = {
    "89.160.20.112", -- country SE
    "81.2.69.142", -- country GB
    "1.128.0.0", -- ASN 1221
    "2001:218::1", -- country JP
    "8.8.8.8", -- in neither test database: the default region
    "10.99.1.2", -- matched by a configured cidr
}

local npaths = 1000
local reqs = {}
local nreqs = 0
local next_req = 0

-- Per-thread counters, read back by done() through thread:get().
count_302 = 0
count_other = 0
other_status = {}

local threads = {}

function setup(thread)
    table.insert(threads, thread)
end

function init(args)
    for p = 0, npaths - 1 do
        local path = string.format("/vod/title%03d/video/seg_%05d.m4s", p % 50, p)
        if p % 5 == 4 then
            path = path .. string.format("?CMCD=sid%%3D%%22sess-%04d%%22", p % 97)
        end
        local headers = { ["X-Forwarded-For"] = xff[(p % #xff) + 1] }
        nreqs = nreqs + 1
        reqs[nreqs] = wrk.format("GET", path, headers)
    end
end

function request()
    next_req = next_req % nreqs + 1
    return reqs[next_req]
end

function response(status, headers, body)
    if status == 302 then
        count_302 = count_302 + 1
    else
        count_other = count_other + 1
        other_status[status] = (other_status[status] or 0) + 1
    end
end

function done(summary, latency, requests)
    local ok, other = 0, 0
    local statuses = {}
    for _, t in ipairs(threads) do
        ok = ok + (t:get("count_302") or 0)
        other = other + (t:get("count_other") or 0)
        local s = t:get("other_status") or {}
        for k, v in pairs(s) do
            statuses[k] = (statuses[k] or 0) + v
        end
    end
    io.write(string.format("mix: requests=%d status_302=%d other=%d\n", ok + other, ok, other))
    for k, v in pairs(statuses) do
        io.write(string.format("mix: status %s: %d\n", tostring(k), v))
    end
end
