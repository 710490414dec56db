-- wrk script: every request asks for the leaf of a service name never asked before (a cache
-- miss: key generation plus signing). Each wrk thread numbers its own names.
local counter = 0
local prefix = "svc"

function setup(thread)
  thread:set("prefix", "t" .. tostring(math.random(1, 1000000000)))
end

function init(args)
  prefix = prefix .. tostring(math.random(1, 1000000000))
end

request = function()
  counter = counter + 1
  return wrk.format("GET", "/v1/agent/connect/ca/leaf/" .. prefix .. "-" .. counter)
end
