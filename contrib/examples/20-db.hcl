# db, in HCL (Consul 1.x's other config format): a managed connectd proxy in front of it whose
# metrics Prometheus scrapes.
service {
  name = "db"
  port = 5432
  tags = ["primary"]

  connect {
    proxy {
      config {
        prometheus_bind_addr = "127.0.0.1:9202"
      }
    }
  }
}
