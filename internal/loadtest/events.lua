-- The events benchmark's requests under wrk (loadtest -events -generator
-- wrk): wrk spends a few times less CPU per request than an in-process
-- generator, which on two cores would take CPU from the server it measures.
--
-- Arguments (after wrk's --): the file of email ids (one a line), the events
-- per request (0: the single-event routes, 80 % opened and 20 % replied),
-- a per-run nonce of 8 hex digits, and the events' time (RFC 3339).

local threads = 0

-- setup runs in wrk's main state, once per thread: each thread gets its own
-- number, so the event ids below never collide between threads.
function setup(thread)
  thread:set("tid", threads)
  threads = threads + 1
end

function init(args)
  ids = {}
  for line in io.lines(args[1]) do
    ids[#ids + 1] = line
  end
  per, nonce, at = tonumber(args[2]), args[3], args[4]
  seq = 0
  math.randomseed(tonumber(nonce, 16) + tid)
  if per > 0 then
    wrk.headers["Content-Type"] = "application/json"
  end
end

local function email()
  return ids[math.random(#ids)]
end

local function kind(i)
  if i % 5 == 4 then
    return "replied"
  end
  return "opened"
end

-- An event id unique within the run: the run's nonce, the thread, and the
-- thread's sequence number (a fresh event, never a retry).
local function eventID()
  seq = seq + 1
  return string.format("%s-%04x-4000-8000-%012x", nonce, tid, seq)
end

function request()
  if per == 0 then
    seq = seq + 1
    return wrk.format("POST", "/api/v1/emails/" .. email() .. "/" .. kind(seq), nil, "")
  end
  local parts = {}
  for i = 1, per do
    parts[i] = string.format('{"id":"%s","email_id":"%s","kind":"%s","at":"%s"}', eventID(), email(), kind(i), at)
  end
  return wrk.format("POST", "/api/v1/events", nil, '{"events":[' .. table.concat(parts, ",") .. ']}')
end
