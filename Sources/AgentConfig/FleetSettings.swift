// The `fleet` block: many hosts sharing one mesh through etcd. Without it connectd is a mesh of
// one host, as before. Decoded per source; the fleet as a whole is checked after merging, and
// the password file (its mode too) when the configuration is built.

#if canImport(Glibc)
import Glibc
#endif

public struct FleetSettings: Sendable, Equatable {
    /// Base URLs of etcd's members (`http://10.0.0.1:2379`).
    public var etcdEndpoints: [String] = []
    public var etcdUsername: String?
    /// A file holding the etcd user's password (mode 0600), read when connecting.
    public var etcdPasswordFile: String?
    /// The CA certificate etcd's TLS endpoints are checked against.
    public var etcdCAFile: String?
    /// Every key connectd writes starts with this; several fleets can share one etcd.
    public var keyPrefix = "connectd/"
    /// This host keeps the fleet's root CA key on its own disk and signs the hosts' intermediates.
    public var rootHolder = false

    public init() {}
}

/// What one source says under `fleet`; every field optional, later sources win field by field.
public struct FleetFragment: Sendable, Equatable {
    public var etcdEndpoints: [String]?
    public var etcdUsername: String?
    public var etcdPasswordFile: String?
    public var etcdCAFile: String?
    public var keyPrefix: String?
    public var rootHolder: Bool?

    public init() {}

    public func merged(with other: FleetFragment) -> FleetFragment {
        FleetFragment(etcdEndpoints: other.etcdEndpoints ?? etcdEndpoints, etcdUsername: other.etcdUsername ?? etcdUsername,
                      etcdPasswordFile: other.etcdPasswordFile ?? etcdPasswordFile, etcdCAFile: other.etcdCAFile ?? etcdCAFile,
                      keyPrefix: other.keyPrefix ?? keyPrefix, rootHolder: other.rootHolder ?? rootHolder)
    }

    init(etcdEndpoints: [String]?, etcdUsername: String?, etcdPasswordFile: String?, etcdCAFile: String?, keyPrefix: String?,
         rootHolder: Bool?) {
        self.etcdEndpoints = etcdEndpoints
        self.etcdUsername = etcdUsername
        self.etcdPasswordFile = etcdPasswordFile
        self.etcdCAFile = etcdCAFile
        self.keyPrefix = keyPrefix
        self.rootHolder = rootHolder
    }

    static func decode(_ reader: ObjectReader) -> FleetFragment {
        var fragment = FleetFragment()
        if let endpoints = reader.stringArray("etcd_endpoints") {
            for (index, endpoint) in endpoints.enumerated() where !Self.isEndpoint(endpoint) {
                reader.report("etcd_endpoints[\(index)]", "invalid etcd endpoint \"\(endpoint)\" (expected http://host:port or https://host:port)")
            }
            fragment.etcdEndpoints = endpoints
        }
        fragment.etcdUsername = reader.string("etcd_username")
        fragment.etcdPasswordFile = reader.string("etcd_password_file")
        fragment.etcdCAFile = reader.string("etcd_ca_file")
        for (key, path) in [("etcd_password_file", fragment.etcdPasswordFile), ("etcd_ca_file", fragment.etcdCAFile)] {
            if let path, !path.hasPrefix("/") { reader.report(key, "\(key) must be an absolute path, not \"\(path)\"") }
        }
        if let prefix = reader.string("key_prefix") {
            if prefix.isEmpty || !prefix.hasSuffix("/") || prefix.hasPrefix("/") || prefix.contains("//") {
                reader.report("key_prefix", "invalid key_prefix \"\(prefix)\" (a non-empty path ending in '/', e.g. \"connectd/\")")
            }
            fragment.keyPrefix = prefix
        }
        fragment.rootHolder = reader.bool("root_holder")
        return fragment
    }

    /// `http[s]://host:port` with nothing after the port.
    static func isEndpoint(_ text: String) -> Bool {
        let rest: Substring
        if text.hasPrefix("http://") { rest = text.dropFirst(7) } else if text.hasPrefix("https://") { rest = text.dropFirst(8) } else { return false }
        guard let colon = rest.lastIndex(of: ":"), let port = Int(rest[rest.index(after: colon)...]), (1...65535).contains(port) else {
            return false
        }
        let host = rest[..<colon]
        return !host.isEmpty && !host.contains("/")
    }

    /// The merged block as settings, or the problems with it (named by key path under `fleet`).
    func settings(problem: (String, String) -> Void) -> FleetSettings? {
        var settings = FleetSettings()
        guard let endpoints = etcdEndpoints, !endpoints.isEmpty else {
            problem("fleet.etcd_endpoints", "fleet mode needs at least one etcd endpoint")
            return nil
        }
        settings.etcdEndpoints = endpoints
        settings.etcdUsername = etcdUsername.flatMap { $0.isEmpty ? nil : $0 }
        settings.etcdPasswordFile = etcdPasswordFile
        settings.etcdCAFile = etcdCAFile
        settings.keyPrefix = keyPrefix ?? settings.keyPrefix
        settings.rootHolder = rootHolder ?? false
        switch (settings.etcdUsername, settings.etcdPasswordFile) {
        case (nil, _?):
            problem("fleet.etcd_username", "etcd_password_file is set but etcd_username is not")
        case (_?, nil):
            problem("fleet.etcd_password_file", "etcd_username needs etcd_password_file")
        case (_?, let path?):
            if let trouble = Self.passwordFileProblem(path) { problem("fleet.etcd_password_file", trouble) }
        case (nil, nil):
            break
        }
        return settings
    }

    /// Why `path` cannot hold a password: unreadable, not a regular file, or readable by others.
    static func passwordFileProblem(_ path: String) -> String? {
        var info = stat()
        guard stat(path, &info) == 0 else { return "cannot read \(path): \(String(cString: strerror(errno)))" }
        guard info.st_mode & S_IFMT == S_IFREG else { return "\(path) is not a regular file" }
        guard info.st_mode & 0o077 == 0 else {
            return "\(path) must not be readable by group or others (mode \(String(info.st_mode & 0o777, radix: 8)); chmod 600 it)"
        }
        guard access(path, R_OK) == 0 else { return "cannot read \(path): \(String(cString: strerror(errno)))" }
        return nil
    }
}

extension AgentConfiguration {
    /// The address other hosts reach this host's proxies at: `advertise_addr`, else `bind_addr`
    /// when it names one address, else the first non-loopback IPv4 address of the host.
    public var advertisedAddress: String {
        if let advertiseAddr { return advertiseAddr }
        if bindAddr != "0.0.0.0" && bindAddr != "::" { return bindAddr }
        return Self.firstNonLoopbackIPv4() ?? "127.0.0.1"
    }

    static func firstNonLoopbackIPv4() -> String? {
        var list: UnsafeMutablePointer<ifaddrs>?
        guard getifaddrs(&list) == 0, let first = list else { return nil }
        defer { freeifaddrs(list) }
        var entry: UnsafeMutablePointer<ifaddrs>? = first
        while let current = entry {
            defer { entry = current.pointee.ifa_next }
            guard let address = current.pointee.ifa_addr, address.pointee.sa_family == sa_family_t(AF_INET),
                  current.pointee.ifa_flags & UInt32(IFF_LOOPBACK) == 0, current.pointee.ifa_flags & UInt32(IFF_UP) != 0 else { continue }
            var text = [CChar](repeating: 0, count: Int(INET_ADDRSTRLEN))
            let ok = address.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { pointer in
                var raw = pointer.pointee.sin_addr
                return inet_ntop(AF_INET, &raw, &text, socklen_t(INET_ADDRSTRLEN)) != nil
            }
            if ok { return String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self) }
        }
        return nil
    }
}
