-- wrk script for bench/run.sh's HTTP cross-check: each request is the next
-- announce of a pool read once per thread from the file named by the first
-- argument (one request path per line), so that building requests costs the
-- load generator nothing while it measures.
local pool, count, next_index = {}, 0, 0

function init(args)
    for path in io.lines(args[1]) do
        count = count + 1
        pool[count] = wrk.format("GET", path)
    end
end

function request()
    next_index = next_index % count + 1
    return pool[next_index]
end
