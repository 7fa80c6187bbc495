-- wrk script of bench/webhooks.sh: sends pre-signed webhook deliveries, each exactly once.
--
--   wrk -t T -c C -d CAP --timeout 30s --latency -s bench/webhooks.lua URL -- FILE T DONE_DIR
--
-- FILE holds one delivery per line, `<Stripe-Signature>\t<body>` (bench/webhook_events.py).
-- Thread k (0-based, in the order wrk creates them) loads lines k, k+T, k+2T, ... in init() and
-- sends them in that order as POST /stripe/webhook, one request per line, never more: once its
-- slice is handed out, delay() parks each connection that comes back for more (an hour, far beyond
-- the run); once every answer of the slice is in, response() writes DONE_DIR/done-<k> and stops
-- the thread with wrk.thread:stop(). bench/webhooks.sh waits for every done-<k>, then ends wrk
-- with SIGINT (wrk otherwise runs for its whole -d). wrk calls request() once on its first
-- thread before the run, only to check the request parses: that call returns the slice's first
-- request without counting it as sent.
--
-- Timing: each thread notes CLOCK_MONOTONIC (LuaJIT ffi, clock_gettime) when it hands out its
-- first request and when its last answer is in; done() prints the span from the earliest first
-- request to the latest last answer over all threads. wrk's own Requests/sec is meaningless here
-- (it divides by the whole run, parked time included).
--
-- done() prints one line, parsed by bench/webhooks.sh:
--   WEBHOOKS expected=N answered=N non200=N seconds=S p50_us=X p99_us=Y max_us=Z
--            connect=.. read=.. write=.. timeout=.. first_error=<status and body, or ->

local ffi = require("ffi")
ffi.cdef [[
typedef struct { long tv_sec; long tv_nsec; } webhooks_timespec;
int clock_gettime(int clock_id, webhooks_timespec *tp);
]]
local CLOCK_MONOTONIC = 1
local timespec = ffi.new("webhooks_timespec")
local function now()
  ffi.C.clock_gettime(CLOCK_MONOTONIC, timespec)
  return tonumber(timespec.tv_sec) + tonumber(timespec.tv_nsec) * 1e-9
end

-- main state: the threads, numbered in creation order ---------------------------------------------
local threads = {}
function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end

-- thread states ------------------------------------------------------------------------------------
-- Globals, so that done() can read them with thread:get().
expected, sent, answered, non200 = 0, 0, 0, 0
t_first, t_last, first_error = -1, -1, "-"
local requests = {}
local checking = false  -- the next request() is wrk's check on the first thread
local done_file

function init(args)
  local file, nthreads, done_dir = args[1], tonumber(args[2]), args[3]
  if not (file and nthreads and done_dir) then
    error("usage: wrk ... -s webhooks.lua URL -- FILE THREADS DONE_DIR")
  end
  local line_number = 0
  for line in io.lines(file) do
    if line_number % nthreads == id then
      local tab = line:find("\t", 1, true)
      if not tab then error(file .. ": line " .. (line_number + 1) .. " has no tab") end
      requests[#requests + 1] = wrk.format("POST", "/stripe/webhook", {
        ["Content-Type"] = "application/json",
        ["Stripe-Signature"] = line:sub(1, tab - 1),
      }, line:sub(tab + 1))
    end
    line_number = line_number + 1
  end
  expected = #requests
  if expected == 0 then error("thread " .. id .. " has no deliveries: too few events for the threads") end
  checking = (id == 0)
  done_file = done_dir .. "/done-" .. id
end

-- wrk calls delay() before each request() of a connection, and runs request() from a timer
-- a moment later: the slot is taken here, so that connections passing delay() at the same time
-- cannot send more than the slice between them.
local reserved = 0
function delay()
  if reserved >= expected then return 3600000 end  -- the slice is taken: park this connection
  reserved = reserved + 1
  return 0
end

function request()
  if checking then
    checking = false
    return requests[1]
  end
  sent = sent + 1
  if sent == 1 then t_first = now() end
  return requests[sent] or requests[expected]  -- never past the slice: delay() parks first
end

function response(status, headers, body)
  answered = answered + 1
  if status ~= 200 then
    non200 = non200 + 1
    if first_error == "-" then
      first_error = tostring(status) .. " " .. (body or ""):sub(1, 200):gsub("%s+", " ")
    end
  end
  if answered == expected then
    t_last = now()
    local f = io.open(done_file, "w")
    if f then
      f:write(string.format("%d %d\n", answered, non200))
      f:close()
    end
    wrk.thread:stop()
  end
end

function done(summary, latency, requests_stats)
  local total_expected, total_answered, total_non200 = 0, 0, 0
  local first, last = nil, nil
  local error_text = "-"
  for _, thread in ipairs(threads) do
    total_expected = total_expected + (thread:get("expected") or 0)
    total_answered = total_answered + (thread:get("answered") or 0)
    total_non200 = total_non200 + (thread:get("non200") or 0)
    local tf, tl = thread:get("t_first") or -1, thread:get("t_last") or -1
    if tf >= 0 and (first == nil or tf < first) then first = tf end
    if tl < 0 then
      last = math.huge  -- a thread did not get all its answers
    elseif last == nil or tl > last then
      last = tl
    end
    local e = thread:get("first_error")
    if error_text == "-" and e and e ~= "-" then error_text = e end
  end
  local seconds = -1
  if first and last and last ~= math.huge then seconds = last - first end
  local e = summary.errors
  io.write(string.format(
    "WEBHOOKS expected=%d answered=%d non200=%d seconds=%.6f p50_us=%d p99_us=%d max_us=%d " ..
    "connect=%d read=%d write=%d timeout=%d first_error=%s\n",
    total_expected, total_answered, total_non200, seconds,
    latency:percentile(50), latency:percentile(99), latency.max,
    e.connect, e.read, e.write, e.timeout, error_text))
end
