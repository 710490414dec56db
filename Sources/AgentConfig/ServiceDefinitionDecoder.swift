// Decodes service definitions from config files (strict) and API bodies (lenient, like Consul).

import ConnectdCore

/// Where a definition comes from decides which of Consul's rules apply.
public enum DefinitionOrigin: Sendable {
    /// A config file: strict keys; a managed proxy needs a port.
    case configFile
    /// `PUT /v1/agent/service/register`: case-insensitive keys, unknown keys ignored.
    case api
}

public enum ServiceDefinitionDecoder {
    /// Decodes one service object. Problems go to the reader's sink; returns nil when unusable.
    public static func decode(_ reader: ObjectReader, origin: DefinitionOrigin) -> ServiceDefinition? {
        let name = reader.string("name") ?? ""
        let id = reader.string("id") ?? ""
        var definition = ServiceDefinition(id: id.isEmpty ? name : id, name: name)
        definition.tags = reader.stringArray("tags")
        definition.meta = reader.stringMap("meta")
        definition.address = reader.string("address") ?? ""
        definition.port = reader.int("port", in: 0...65535) ?? 0
        definition.enableTagOverride = reader.bool("enable_tag_override") ?? false
        definition.token = reader.string("token") ?? ""
        if let weights = reader.object("weights") {
            definition.weights = ServiceWeights(
                passing: weights.int("passing", in: 0...Int(Int32.max)) ?? 1,
                warning: weights.int("warning", in: 0...Int(Int32.max)) ?? 1)
            weights.finish()
        }
        if let kind = reader.string("kind"), !kind.isEmpty {
            reader.report("kind", "service kind \"\(kind)\" cannot be registered directly; connectd creates connect-proxy services for managed proxies itself")
        }
        definition.checks = decodeChecks(reader, service: (definition.id, name))
        if let connect = reader.object("connect") {
            definition.connect = decodeConnect(connect, origin: origin, servicePort: definition.port)
            connect.finish()
        }
        reader.finish()

        if name.isEmpty {
            reader.report("name", "missing service name")
            return nil
        }
        if let meta = definition.meta {
            validateMeta(meta, reader: reader)
        }
        if let connect = definition.connect, let proxy = connect.proxy {
            if connect.native {
                reader.report("connect", proxy.sidecar == nil ? "Services that are Connect native may not have a proxy configuration"
                                                              : "Services that are Connect native may not have a sidecar")
            }
            if origin == .configFile && definition.port == 0 {
                reader.report("port", "Services with a Connect managed proxy must have a port set")
            }
        }
        return definition
    }

    /// `check` (one) and `checks` (a list) of a service; several get IDs `service:<id>:1`, `:2`, ...
    static func decodeChecks(_ reader: ObjectReader, service: (id: String, name: String)) -> [CheckDefinition] {
        var readers: [ObjectReader] = []
        if let single = reader.object("check") { readers.append(single) }
        readers += reader.objectArray("checks") ?? []
        return readers.enumerated().compactMap { index, check in
            defer { check.finish() }
            return CheckDefinitionDecoder.decode(check, service: service, position: readers.count > 1 ? index + 1 : nil)
        }
    }

    private static func decodeConnect(_ reader: ObjectReader, origin: DefinitionOrigin, servicePort: Int) -> ServiceConnect {
        var connect = ServiceConnect()
        connect.native = reader.bool("native") ?? false
        if let sidecar = reader.object("sidecar_service") {
            connect.proxy = decodeSidecar(sidecar, servicePort: servicePort)
            sidecar.finish()
            if reader.has("proxy") {
                reader.report("proxy", "a service has either connect.proxy or connect.sidecar_service, not both")
            }
        } else if let proxy = reader.object("proxy") {
            connect.proxy = decodeProxy(proxy)
            if origin == .configFile {
                // Consul's config builder defaults an empty destination type to "service"; API bodies keep it empty.
                for index in connect.proxy!.upstreams.indices where connect.proxy!.upstreams[index].destinationType.isEmpty {
                    connect.proxy!.upstreams[index].destinationType = "service"
                }
            }
            proxy.finish()
        }
        return connect
    }

    /// `connect.sidecar_service`: its own keys, and its `proxy` block read like a managed proxy's.
    static func decodeSidecar(_ reader: ObjectReader, servicePort: Int) -> ManagedProxyRequest {
        var sidecar = SidecarRegistration()
        sidecar.id = reader.string("id").flatMap { $0.isEmpty ? nil : $0 }
        sidecar.name = reader.string("name").flatMap { $0.isEmpty ? nil : $0 }
        sidecar.port = reader.int("port", in: 0...65535).flatMap { $0 == 0 ? nil : $0 }
        sidecar.managed = reader.bool("managed") ?? true
        for key in ["check", "checks"] {
            reader.rejectIfPresent(key, "a sidecar gets its listener and alias checks from connectd; remove \(key)")
        }
        for key in ["kind", "address", "tags", "meta", "enable_tag_override", "weights", "token"] {
            reader.rejectIfPresent(key, "not supported in a sidecar_service by connectd (its ID, name, port, managed and proxy are)")
        }
        var request = ManagedProxyRequest()
        if let proxy = reader.object("proxy") {
            for key in ["destination_service_name", "destination_service_id"] {
                proxy.rejectIfPresent(key, "set by connectd from the service the sidecar belongs to")
            }
            let address = proxy.string("local_service_address")
            let port = proxy.int("local_service_port", in: 1...65535)
            request = decodeProxy(proxy)
            if address != nil || port != nil {
                // Consul's local_service_address/port: where the sidecar reaches the service.
                var config = request.config.objectMembers ?? []
                config.removeAll { $0.0 == "local_service_address" }
                config.append(("local_service_address", .string("\(address ?? "127.0.0.1"):\(port ?? servicePort)")))
                request.config = .object(config)
            }
            proxy.finish()
        }
        for index in request.upstreams.indices where request.upstreams[index].destinationType.isEmpty {
            request.upstreams[index].destinationType = "service"
        }
        request.sidecar = sidecar
        return request
    }

    static func decodeProxy(_ reader: ObjectReader) -> ManagedProxyRequest {
        var proxy = ManagedProxyRequest()
        if let mode = reader.string("exec_mode"), !mode.isEmpty {
            if let parsed = ExecMode(rawValue: mode) {
                proxy.execMode = parsed
            } else {
                reader.report("exec_mode", "invalid exec mode \"\(mode)\" (expected daemon or script)")
            }
        }
        proxy.command = reader.stringArray("command") ?? []
        proxy.supervision = SupervisionSettings.decode(reader)
        var config = reader.opaqueObject("config") ?? .object([])
        if let bindPort = config["bind_port"] {
            let valid: Bool
            switch bindPort {
            case .int(let port): valid = (1...65535).contains(port)
            case .double(let port): valid = port == port.rounded() && (1...65535).contains(port)
            default: valid = false
            }
            if !valid {
                reader.sink.report(reader.keyPath("config.bind_port"), "expected a port number (1-65535), got \(bindPort.encoded())")
            }
        }
        var upstreams = reader.objectArray("upstreams")?.compactMap { upstream -> Upstream? in
            defer { upstream.finish() }
            return decodeUpstream(upstream)
        } ?? []
        // Consul 1.2 kept upstreams in config.upstreams; 1.3+ converts them when `upstreams` is empty
        // and always drops the key from the map.
        if case .object(var members) = config, let index = members.firstIndex(where: { $0.0 == "upstreams" }) {
            let legacy = members.remove(at: index).1
            if upstreams.isEmpty { upstreams = LegacyUpstreams.convert(legacy) }
            config = .object(members)
        }
        proxy.config = config
        proxy.upstreams = upstreams
        return proxy
    }

    static func decodeUpstream(_ reader: ObjectReader) -> Upstream {
        var upstream = Upstream()
        upstream.destinationType = reader.string("destination_type") ?? ""
        if !["", "service", "prepared_query"].contains(upstream.destinationType) {
            reader.report("destination_type", "invalid destination type \"\(upstream.destinationType)\" (expected service or prepared_query)")
        }
        upstream.destinationNamespace = reader.string("destination_namespace") ?? ""
        upstream.destinationName = reader.string("destination_name") ?? ""
        upstream.datacenter = reader.string("datacenter") ?? ""
        upstream.localBindAddress = reader.string("local_bind_address") ?? ""
        upstream.localBindPort = reader.int("local_bind_port", in: 0...65535) ?? 0
        upstream.config = reader.opaqueObject("config")
        return upstream
    }

    /// Consul's meta rules: at most 64 pairs, keys up to 128 characters of `[A-Za-z0-9_-]`,
    /// values up to 512 characters, no `consul-` prefix.
    static func validateMeta(_ meta: [String: String], reader: ObjectReader) {
        if meta.count > 64 { reader.report("meta", "at most 64 meta pairs are allowed, got \(meta.count)") }
        for (key, value) in meta.sorted(by: { $0.key < $1.key }) {
            let path = "meta.\(key)"
            if key.isEmpty || key.count > 128 || !key.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_" || $0 == "-") }) {
                reader.sink.report(reader.keyPath(path), "invalid meta key: keys are 1-128 characters of letters, digits, '_' and '-'")
            } else if key.hasPrefix("consul-") {
                reader.sink.report(reader.keyPath(path), "meta keys may not start with \"consul-\" (reserved)")
            }
            if value.count > 512 { reader.sink.report(reader.keyPath(path), "meta value is longer than 512 characters") }
        }
    }
}

/// Consul 1.2's `config.upstreams` entries converted to first-class upstreams.
enum LegacyUpstreams {
    static func convert(_ legacy: JSONValue) -> [Upstream] {
        guard case .array(let entries) = legacy else { return [] }
        return entries.compactMap { entry in
            guard case .object(let members) = entry else { return nil }
            var upstream = Upstream()
            var extra: [(String, JSONValue)] = []
            for (key, value) in members {
                switch (key, value) {
                case ("destination_type", .string(let s)): upstream.destinationType = s == "prepared_query" ? s : "service"
                case ("destination_name", .string(let s)): upstream.destinationName = s
                case ("destination_namespace", .string(let s)): upstream.destinationNamespace = s
                case ("destination_datacenter", .string(let s)): upstream.datacenter = s
                case ("local_bind_address", .string(let s)): upstream.localBindAddress = s
                case ("local_bind_port", .int(let p)): upstream.localBindPort = Int(p)
                case ("local_bind_port", .double(let p)) where p == p.rounded(): upstream.localBindPort = Int(p)
                case ("destination_type", _), ("destination_name", _), ("destination_namespace", _),
                     ("destination_datacenter", _), ("local_bind_address", _), ("local_bind_port", _):
                    return nil  // undecodable entries are skipped, as Consul does
                default: extra.append((key, value))
                }
            }
            if upstream.destinationType.isEmpty { upstream.destinationType = "service" }
            if !extra.isEmpty { upstream.config = .object(extra) }
            return upstream
        }
    }
}
