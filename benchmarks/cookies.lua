-- wrk script: each request carries the next of the cookies in the file named by the first
-- argument (one per line), so 64 connections keep 64 sessions busy; the answers are
-- counted by status over all threads and printed when done (as statuses.lua does).
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  statuses = {}
  cookies = {}
  for line in io.lines(args[1]) do
    table.insert(cookies, line)
  end
  at = 0
end

function request()
  at = at % #cookies + 1
  return wrk.format("GET", nil, {Cookie = cookies[at]})
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
  local total = {}
  for _, thread in ipairs(threads) do
    for status, n in pairs(thread:get("statuses")) do
      total[status] = (total[status] or 0) + n
    end
  end
  for status, n in pairs(total) do
    io.write(string.format("STATUS %d %d\n", status, n))
  end
end
