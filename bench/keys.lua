-- bench/keys.lua — wrk script: every request carries an X-Key header, the limit key
-- of the benchmark configs ($http_x_key in nginx and zonegate, req.hdr(x-key) in
-- HAProxy).  KEYS=one (default): the same key on every request.  KEYS=many: a
-- distinct key per request (thread number, a random run prefix and a counter), so the
-- proxy's limit_req zone fills with one entry per request.  Both modes build the
-- request the same way, so wrk's own cost per request is the same.

local mode = os.getenv("KEYS") or "one"
local threads = {}
local counter = 0
local prefix = "k"
local head = "GET / HTTP/1.1\r\nHost: bench\r\nX-Key: "

function setup(thread)
   thread:set("tid", #threads + 1)
   table.insert(threads, thread)
end

function init(args)
   math.randomseed(os.time() + (tid or 0) * 7919)
   prefix = string.format("%d-%06x-", tid or 0, math.random(0, 0xffffff))
end

if mode == "many" then
   request = function()
      counter = counter + 1
      return head .. prefix .. counter .. "\r\n\r\n"
   end
else
   request = function()
      return head .. "one\r\n\r\n"
   end
end
