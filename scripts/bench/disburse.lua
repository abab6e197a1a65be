-- wrk script for `hpts` POST /v1/disbursements: every request opens a new loan (fresh loan and
-- borrower UUIDs) under a unique Idempotency-Key; TOKEN is the bearer token. Prints the same
-- RESULT line as the ceiling's bench.lua, so scripts/bench.sh can compare them.
local counter = 0
local runid = tonumber(os.getenv("RUNID") or "1")
local token = os.getenv("TOKEN")
local next_id = 0

function setup(thread)
  thread:set("thread_id", next_id)
  next_id = next_id + 1
end

function request()
  counter = counter + 1
  local loan = string.format("%08x-%04x-7000-8000-%012x", runid, thread_id, counter)
  local borrower = string.format("%08x-%04x-7000-9000-%012x", runid, thread_id, counter)
  local body = string.format(
    '{"loan_id":"%s","borrower_id":"%s","amount_minor":"%d","currency":"USD","effective_at":"2026-11-01","method":"ach"}',
    loan, borrower, 1000 + counter % 97)
  local headers = {
    ["Content-Type"] = "application/json",
    ["Idempotency-Key"] = string.format("disb:%d-%d-%d", runid, thread_id, counter),
    ["Authorization"] = "Bearer " .. token,
  }
  return wrk.format("POST", "/v1/disbursements", headers, body)
end

function done(summary, latency, requests)
  local secs = summary.duration / 1e6
  io.write(string.format("RESULT rps=%.0f p50_ms=%.2f p90_ms=%.2f p99_ms=%.2f max_ms=%.2f reqs=%d non2xx=%d sockerr=%d\n",
    summary.requests / secs, latency:percentile(50) / 1000, latency:percentile(90) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000, summary.requests, summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
