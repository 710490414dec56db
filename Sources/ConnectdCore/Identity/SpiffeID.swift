// SPIFFE identities of Connect certificates (agents, services, the CA's trust domain).

/// A SPIFFE identity as Consul 1.5 parses it (`agent/connect/uri.go`).
public enum SpiffeID: Sendable, Equatable {
    /// `spiffe://<host>/ns/<ns>/dc/<dc>/svc/<service>`
    case service(host: String, namespace: String, datacenter: String, service: String)
    /// `spiffe://<host>/agent/client/dc/<dc>/id/<node>`
    case agent(host: String, datacenter: String, node: String)
    /// `spiffe://<cluster-id>.<domain>` (a CA's own identity)
    case signing(clusterID: String, domain: String)

    public enum ParseError: Error, Sendable, Equatable, CustomStringConvertible {
        case notSpiffeScheme
        case unexpectedFormat(String)

        public var description: String {
            switch self {
            case .notSpiffeScheme: "SPIFFE ID must have 'spiffe' scheme"
            case .unexpectedFormat(let uri): "SPIFFE ID is not in the expected format: \(uri)"
            }
        }
    }

    /// The service identity URI for `service` in `trustDomain`.
    public static func serviceURI(trustDomain: String, datacenter: String, service: String, namespace: String = "default") -> String {
        "spiffe://\(trustDomain)/ns/\(namespace)/dc/\(datacenter)/svc/\(service)"
    }

    /// Parses `uri` with Consul's rules: case-insensitive scheme, query and fragment ignored,
    /// percent-encoded path segments decoded after matching.
    public static func parse(_ uri: String) throws(ParseError) -> SpiffeID {
        // Works on UTF-8 bytes: authorize parses one URI per inbound connection.
        let bytes = Array(uri.utf8)
        let slash = UInt8(ascii: "/")
        guard let colon = bytes.firstIndex(of: UInt8(ascii: ":")), bytes.count >= colon + 3,
              bytes[colon + 1] == slash, bytes[colon + 2] == slash else { throw .notSpiffeScheme }
        guard String(decoding: bytes[..<colon], as: UTF8.self).lowercased() == "spiffe" else { throw .notSpiffeScheme }
        var end = bytes.count
        if let cut = bytes[(colon + 3)...].firstIndex(where: { $0 == UInt8(ascii: "?") || $0 == UInt8(ascii: "#") }) { end = cut }
        let rest = bytes[(colon + 3)..<end]
        let hostEnd = rest.firstIndex(of: slash) ?? end
        let host = String(decoding: rest[..<hostEnd], as: UTF8.self)
        let path = rest[hostEnd...]
        // Segments after the leading slash.
        let segments = path.isEmpty ? [] : path.dropFirst().split(separator: slash, omittingEmptySubsequences: false)
        func text(_ index: Int) -> String { String(decoding: segments[index], as: UTF8.self) }
        func decoded(_ index: Int) throws(ParseError) -> String {
            guard let value = PercentDecoder.decode(text(index)), !value.isEmpty else { throw .unexpectedFormat(uri) }
            return value
        }
        if segments.count == 6, text(0) == "ns", text(2) == "dc", text(4) == "svc",
           !segments[1].isEmpty, !segments[3].isEmpty, !segments[5].isEmpty {
            return .service(host: host, namespace: try decoded(1), datacenter: try decoded(3), service: try decoded(5))
        }
        if segments.count == 6, text(0) == "agent", text(1) == "client", text(2) == "dc", text(4) == "id",
           !segments[3].isEmpty, !segments[5].isEmpty {
            return .agent(host: host, datacenter: try decoded(3), node: try decoded(5))
        }
        if path.isEmpty, let dot = host.utf8.firstIndex(of: UInt8(ascii: ".")), dot > host.utf8.startIndex {
            return .signing(clusterID: String(host[..<dot]), domain: String(host[host.utf8.index(after: dot)...]))
        }
        throw .unexpectedFormat(uri)
    }
}

/// Percent-decoding of one path segment; nil for a malformed escape.
enum PercentDecoder {
    static func decode(_ text: String) -> String? {
        guard text.utf8.contains(UInt8(ascii: "%")) else { return text }
        var bytes: [UInt8] = []
        var iterator = Array(text.utf8).makeIterator()
        while let byte = iterator.next() {
            guard byte == UInt8(ascii: "%") else {
                bytes.append(byte)
                continue
            }
            guard let high = iterator.next().flatMap(hexValue), let low = iterator.next().flatMap(hexValue) else { return nil }
            bytes.append(high << 4 | low)
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}
