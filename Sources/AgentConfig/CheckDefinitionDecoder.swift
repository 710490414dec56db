// Decodes one check object (`check`, `checks[i]`, or a check registration body), with Consul's
// defaults: an ID of `service:<service id>` (`:<n>` when a service has several), a name of
// `Service '<name>' check`, critical until the first run, a 10 s timeout.

import ConnectdCore

public enum CheckDefinitionDecoder {
    /// - Parameters:
    ///   - service: the service the check is declared in (its ID and name), if any.
    ///   - position: the check's 1-based place among the service's checks, nil when it has one.
    public static func decode(_ reader: ObjectReader, service: (id: String, name: String)?, position: Int? = nil) -> CheckDefinition? {
        let id = reader.string("id") ?? reader.string("check_id") ?? ""
        let name = reader.string("name") ?? ""
        let serviceID = reader.string("service_id").flatMap { $0.isEmpty ? nil : $0 } ?? service?.id
        _ = reader.string("token")
        for unsupported in ["grpc", "grpc_use_tls", "docker_container_id", "shell", "alias_node", "alias_service"] {
            reader.rejectIfPresent(unsupported, "not supported by connectd (tcp, http, ttl and args checks are)")
        }
        reader.rejectIfPresent("script", "the script form is gone since Consul 1.1: give the command as \"args\" (an argv list)")
        var probes: [CheckDefinition.Probe] = []
        if let address = reader.string("tcp"), !address.isEmpty {
            if ProbeAddress.hostPort(address) == nil {
                reader.report("tcp", "invalid address \"\(address)\" (host:port)")
            }
            probes.append(.tcp(address))
        }
        if let url = reader.string("http"), !url.isEmpty {
            var probe = CheckDefinition.HTTPProbe(url: url)
            if !(url.hasPrefix("http://") || url.hasPrefix("https://")) {
                reader.report("http", "invalid URL \"\(url)\" (http:// or https://)")
            }
            if let method = reader.string("method"), !method.isEmpty { probe.method = method.uppercased() }
            if let headers = reader.raw("header") {
                probe.headers = decodeHeaders(headers, reader: reader)
            }
            probe.tlsSkipVerify = reader.bool("tls_skip_verify") ?? false
            probes.append(.http(probe))
        } else {
            _ = reader.raw("method")
            _ = reader.raw("header")
            _ = reader.raw("tls_skip_verify")
        }
        if let ttl = SupervisionSettings.duration(reader, "ttl"), ttl > .zero { probes.append(.ttl(ttl)) }
        if let args = reader.stringArray("args"), !args.isEmpty { probes.append(.script(args)) }
        let interval = SupervisionSettings.duration(reader, "interval")
        let timeout = SupervisionSettings.duration(reader, "timeout")
        let deregister = SupervisionSettings.duration(reader, "deregister_critical_service_after")
        var initial = CheckHealth.critical
        if let status = reader.string("status"), !status.isEmpty {
            if let parsed = CheckHealth(rawValue: status) { initial = parsed } else {
                reader.report("status", "invalid status \"\(status)\" (passing, warning or critical)")
            }
        }
        let notes = reader.string("notes") ?? ""
        guard probes.count == 1, let probe = probes.first else {
            reader.sink.report(reader.path, probes.isEmpty ? "a check needs one of tcp, http, ttl or args"
                                             : "a check has exactly one of tcp, http, ttl or args (this one has \(probes.map(\.kind).joined(separator: ", ")))")
            return nil
        }
        var definition = CheckDefinition(
            id: id.isEmpty ? defaultID(service: service, serviceID: serviceID, name: name, position: position) : id,
            name: name.isEmpty ? (service.map { "Service '\($0.name)' check" } ?? "") : name,
            serviceID: serviceID, probe: probe)
        if definition.name.isEmpty {
            reader.report("name", "missing check name")
            return nil
        }
        switch probe {
        case .ttl: break
        default:
            guard let interval, interval > .zero else {
                reader.report("interval", "a \(probe.kind) check needs an interval (e.g. \"10s\")")
                return nil
            }
            definition.interval = max(interval, CheckDefinition.minimumInterval)
        }
        if let timeout, timeout > .zero { definition.timeout = timeout }
        definition.deregisterCriticalServiceAfter = deregister
        definition.initialStatus = initial
        definition.notes = notes
        return definition
    }

    /// `service:<id>`, `service:<id>:<n>` among several, else the check's name (node checks).
    static func defaultID(service: (id: String, name: String)?, serviceID: String?, name: String, position: Int?) -> String {
        guard let serviceID = service?.id ?? serviceID else { return name }
        return "service:\(serviceID)" + (position.map { ":\($0)" } ?? "")
    }

    /// `header`: `{"Name": ["value", ...]}` (a single string is taken as a one-element list).
    static func decodeHeaders(_ value: JSONValue, reader: ObjectReader) -> [String: [String]] {
        guard case .object(let members) = value else {
            reader.report("header", "expected an object of header names to lists of values, got \(value.typeDescription)")
            return [:]
        }
        var headers: [String: [String]] = [:]
        for (name, values) in members {
            switch values {
            case .string(let single): headers[name] = [single]
            case .array(let list):
                headers[name] = list.compactMap { element in
                    guard case .string(let text) = element else {
                        reader.sink.report(reader.keyPath("header.\(name)"), "expected strings, got \(element.typeDescription)")
                        return nil
                    }
                    return text
                }
            default:
                reader.sink.report(reader.keyPath("header.\(name)"), "expected a list of strings, got \(values.typeDescription)")
            }
        }
        return headers
    }
}

/// `host:port` of a tcp check.
public enum ProbeAddress {
    public static func hostPort(_ text: String) -> (host: String, port: Int)? {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]), (1...65535).contains(port) else {
            return nil
        }
        var host = String(text[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard !host.isEmpty else { return nil }
        return (host, port)
    }
}
