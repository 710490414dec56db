# Static tokens with Consul's HCL rule blocks (labels nest, blocks of one key merge), a heredoc
# and string escapes; intentions as blocks.
acl {
  enabled = true
  static_tokens {
    secret = "web-deployer"
    description = <<EOT
Deploys web.
Tab:	"quoted" and \ kept.
EOT
    rules {
      service "web" {
        policy = "write"
        intentions = "write"
      }
      service "web-proxy" {
        policy = "read"
      }
      service_prefix "" {
        policy = "read"
      }
      operator = "read"
    }
  }
  static_tokens {
    secret = "ops\u0021"
    description = "line one\nline \"two\""
    rules {
      agent_prefix "" { policy = "write" }
    }
  }
}

intentions {
  source_name      = "web"
  destination_name = "db"
  action           = "allow"
  description      = <<-EOT
    web may call db
      (indented)
    EOT
}
intentions {
  source_name      = "*"
  destination_name = "db"
  action           = "deny"
}
