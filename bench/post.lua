-- wrk: POST the JSON body held in a file, on every request of every connection.
--   wrk -t1 -c32 -d5s --latency -s bench/post.lua http://127.0.0.1:8000/v1/chat/completions body.json
-- The body comes from a file so one script serves every case (2 KB bodies do not fit on a
-- command line well); wrk builds the request once, after init.
function init(args)
   local file = assert(io.open(args[1], "rb"), "usage: wrk ... -s post.lua URL BODY_FILE")
   wrk.body = file:read("*a")
   file:close()
end

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
