# The service definition example of Consul's docs (its check aside), with a managed proxy.
service {
  name = "redis"
  id   = "redis"
  port = 80
  tags = ["primary"]

  meta = {
    custom_meta_key = "custom_meta_value"
  }

  connect {
    proxy {
      config {
        bind_address = "0.0.0.0"
        bind_port = 20000
      }
      upstreams = [
        {
          destination_name = "db"
          local_bind_port = 9191
        },
      ]
    }
  }

  weights = {
    passing = 5
    warning = 1
  }
  enable_tag_override = false
}
