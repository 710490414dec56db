# The agent example of Consul's configuration docs, with the Connect and ACL blocks a
# managed-proxy host carries.
datacenter = "east-aws"
data_dir   = "/opt/consul"
log_level  = "INFO"
node_name  = "foobar"
client_addr = "127.0.0.1"
bind_addr = "10.0.0.5"

ports {
  http = 8500
  proxy_min_port = 21000
  proxy_max_port = 21255
}

connect {
  enabled = true
  proxy {
    allow_managed_root = false
    allow_managed_api_registration = true
  }
  proxy_defaults {
    exec_mode = "daemon"
    daemon_command = ["/usr/local/bin/my-proxy", "-v"]
    config {
      connect_timeout_ms = 1000
    }
  }
  ca_config {
    leaf_cert_ttl = "72h"
  }
}

acl {
  enabled        = true
  default_policy = "deny"
  tokens {
    master = "b1gs33cr3t"   // the bootstrap token
    agent  = "agent-token"
  }
}

limits {
  http_max_conns_per_client = 400
}

/* Prometheus scrapes the agent:
   keep what an operator alerts on. */
telemetry {
  prometheus_retention_time = "60s"
  disable_hostname = true
  prefix_filter = ["+connectd_", "-connectd_http_request_duration"]
}
