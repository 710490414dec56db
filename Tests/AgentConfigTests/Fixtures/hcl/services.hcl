// Two service blocks are the `services` list; upstreams blocks are that list's elements.
service {
  name = "web"
  port = 8080
  connect {
    proxy {
      upstreams {
        destination_name = "db"
        local_bind_port  = 9191
      }
      upstreams {
        destination_name = "cache"
        local_bind_port  = 9192
        datacenter       = "dc2"
      }
    }
  }
}

service {
  name = "db"
  port = 5432
  address = "127.0.0.1"
  connect { proxy {} }
}

service {
  name = "metrics"
  port = 9102
  connect { native = true }
}
