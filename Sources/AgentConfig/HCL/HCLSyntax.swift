// HCL 1 as Consul 1.x reads it, parsed into a tree that keeps every item's position and whether
// it was written as a block: comments (`#`, `//`, `/* */`), `key = value`, blocks with optional
// labels (`service "web" { }`), lists, inline objects, heredocs, numbers, bools and strings with
// escapes. ``HCLDocument`` turns the tree into the value tree the JSON reader produces.

import ConnectdCore

/// A syntax error at a 1-based line and column.
public struct HCLSyntaxError: Error, Sendable, Equatable, CustomStringConvertible {
    public let line: Int
    public let column: Int
    public let message: String

    public var description: String { "\(line):\(column): \(message)" }
}

/// Where an item starts, for messages.
struct HCLPosition: Sendable, Equatable {
    var line: Int
    var column: Int
}

/// One parsed value, before Consul's block rules are applied.
indirect enum HCLNode: Sendable {
    case scalar(JSONValue)
    case list([HCLNode])
    case object([HCLItem])
}

/// `key = value`, or a block `key "label" ... { body }`.
struct HCLItem: Sendable {
    var key: String
    var labels: [String]
    var value: HCLNode
    /// Written as `key { ... }` (or with labels), not `key = ...`.
    var isBlock: Bool
    var position: HCLPosition
}

struct HCLParser {
    private let bytes: [UInt8]
    private var offset = 0
    private var line = 1
    private var column = 1

    init(_ bytes: [UInt8]) { self.bytes = bytes }

    /// The file's items, or the first syntax error.
    static func parse(_ bytes: [UInt8]) throws(HCLSyntaxError) -> [HCLItem] {
        var parser = HCLParser(bytes)
        if parser.bytes.starts(with: [0xEF, 0xBB, 0xBF]) { parser.offset = 3 }
        let items = try parser.body(closedBy: nil)
        return items
    }

    // MARK: Structure

    /// Items until `closer` (`}`) or the end of the file.
    private mutating func body(closedBy closer: UInt8?) throws(HCLSyntaxError) -> [HCLItem] {
        var items: [HCLItem] = []
        while true {
            try skipSpace(newlines: true)
            // Items may be separated by newlines or commas.
            if peek == UInt8(ascii: ",") {
                advance()
                continue
            }
            guard let byte = peek else {
                if closer != nil { throw error("unexpected end of file: a block opened here is not closed (missing \"}\")") }
                return items
            }
            if let closer, byte == closer {
                advance()
                return items
            }
            items.append(try item())
        }
    }

    private mutating func item() throws(HCLSyntaxError) -> HCLItem {
        let position = HCLPosition(line: line, column: column)
        let key = try key()
        var labels: [String] = []
        while true {
            try skipSpace(newlines: false)
            switch peek {
            case UInt8(ascii: "=")?:
                advance()
                guard labels.isEmpty else { throw error("\"=\" after the labels of block \"\(key)\"", at: position) }
                try skipSpace(newlines: false)
                let value = try value()
                return HCLItem(key: key, labels: [], value: value, isBlock: false, position: position)
            case UInt8(ascii: "{")?:
                advance()
                let body = try body(closedBy: UInt8(ascii: "}"))
                return HCLItem(key: key, labels: labels, value: .object(body), isBlock: true, position: position)
            case UInt8(ascii: "\"")?:
                labels.append(try quoted())
            case let byte? where Self.isIdentifierStart(byte):
                labels.append(identifier())
            case nil:
                throw error("unexpected end of file after key \"\(key)\" (expected \"=\" or \"{\")")
            case let byte?:
                throw error("unexpected \(Self.describe(byte)) after key \"\(key)\" (expected \"=\" or \"{\")")
            }
        }
    }

    private mutating func key() throws(HCLSyntaxError) -> String {
        switch peek {
        case UInt8(ascii: "\"")?: return try quoted()
        case let byte? where Self.isIdentifierStart(byte): return identifier()
        case let byte?: throw error("unexpected \(Self.describe(byte)) (expected a key)")
        case nil: throw error("unexpected end of file (expected a key)")
        }
    }

    private mutating func value() throws(HCLSyntaxError) -> HCLNode {
        switch peek {
        case UInt8(ascii: "\"")?: return .scalar(.string(try quoted()))
        case UInt8(ascii: "<")?: return .scalar(.string(try heredoc()))
        case UInt8(ascii: "[")?:
            advance()
            return .list(try list())
        case UInt8(ascii: "{")?:
            advance()
            return .object(try body(closedBy: UInt8(ascii: "}")))
        case let byte? where byte == UInt8(ascii: "-") || byte == UInt8(ascii: "+") || Self.isDigit(byte):
            return .scalar(try number())
        case let byte? where Self.isIdentifierStart(byte):
            let start = HCLPosition(line: line, column: column)
            let word = identifier()
            switch word {
            case "true": return .scalar(.bool(true))
            case "false": return .scalar(.bool(false))
            default: throw error("unexpected \"\(word)\" (a value is a string in quotes, a number, true, false, a list or an object)", at: start)
            }
        case let byte?: throw error("unexpected \(Self.describe(byte)) (expected a value)")
        case nil: throw error("unexpected end of file (expected a value)")
        }
    }

    /// Elements after `[`, up to `]`; commas between them, one after the last allowed.
    private mutating func list() throws(HCLSyntaxError) -> [HCLNode] {
        var elements: [HCLNode] = []
        while true {
            try skipSpace(newlines: true)
            if peek == UInt8(ascii: "]") {
                advance()
                return elements
            }
            elements.append(try value())
            try skipSpace(newlines: true)
            switch peek {
            case UInt8(ascii: ",")?: advance()
            case UInt8(ascii: "]")?: continue
            case nil: throw error("unexpected end of file in a list (missing \"]\")")
            case let byte?: throw error("unexpected \(Self.describe(byte)) in a list (expected \",\" or \"]\")")
            }
        }
    }

    // MARK: Tokens

    private var peek: UInt8? { offset < bytes.count ? bytes[offset] : nil }

    private func peek(at distance: Int) -> UInt8? { offset + distance < bytes.count ? bytes[offset + distance] : nil }

    private mutating func advance() {
        if bytes[offset] == UInt8(ascii: "\n") {
            line += 1
            column = 1
        } else if bytes[offset] & 0xC0 != 0x80 {
            column += 1
        }
        offset += 1
    }

    /// Spaces, tabs and comments; newlines too when `newlines`.
    private mutating func skipSpace(newlines: Bool) throws(HCLSyntaxError) {
        while let byte = peek {
            switch byte {
            case UInt8(ascii: " "), UInt8(ascii: "\t"): advance()
            case UInt8(ascii: "\r") where peek(at: 1) == UInt8(ascii: "\n") || newlines: advance()
            case UInt8(ascii: "\n") where newlines: advance()
            case UInt8(ascii: "#"): skipLineComment()
            case UInt8(ascii: "/") where peek(at: 1) == UInt8(ascii: "/"): skipLineComment()
            case UInt8(ascii: "/") where peek(at: 1) == UInt8(ascii: "*"):
                let start = HCLPosition(line: line, column: column)
                advance()
                advance()
                while !(peek == UInt8(ascii: "*") && peek(at: 1) == UInt8(ascii: "/")) {
                    guard peek != nil else { throw error("unexpected end of file in a /* comment */ opened here", at: start) }
                    advance()
                }
                advance()
                advance()
            default: return
            }
        }
    }

    private mutating func skipLineComment() {
        while let byte = peek, byte != UInt8(ascii: "\n") { advance() }
    }

    static func isIdentifierStart(_ byte: UInt8) -> Bool {
        (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z")) || (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z"))
            || byte == UInt8(ascii: "_")
    }

    static func isDigit(_ byte: UInt8) -> Bool { byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") }

    private mutating func identifier() -> String {
        let start = offset
        while let byte = peek, Self.isIdentifierStart(byte) || Self.isDigit(byte) || byte == UInt8(ascii: "-") || byte == UInt8(ascii: ".") {
            advance()
        }
        return String(decoding: bytes[start..<offset], as: UTF8.self)
    }

    private mutating func number() throws(HCLSyntaxError) -> JSONValue {
        let start = HCLPosition(line: line, column: column)
        let first = offset
        if peek == UInt8(ascii: "-") || peek == UInt8(ascii: "+") { advance() }
        while let byte = peek, Self.isDigit(byte) || Self.isIdentifierStart(byte) || byte == UInt8(ascii: ".")
            || ((byte == UInt8(ascii: "-") || byte == UInt8(ascii: "+")) && (bytes[offset - 1] | 0x20) == UInt8(ascii: "e")) {
            advance()
        }
        var text = String(decoding: bytes[first..<offset], as: UTF8.self)
        if text.hasPrefix("+") { text.removeFirst() }
        let negative = text.hasPrefix("-")
        let digits = negative ? String(text.dropFirst()) : text
        if digits.lowercased().hasPrefix("0x"), let value = Int64(digits.dropFirst(2), radix: 16) {
            return .int(negative ? -value : value)
        }
        if let value = Int64(text) { return .int(value) }
        if digits.first.map({ $0.isNumber }) == true, let value = Double(text), value.isFinite { return .double(value) }
        let hint = text.contains(where: \.isLetter) ? " (a duration or other text is a string in quotes: \"\(text)\")" : ""
        throw error("invalid number \"\(text)\"\(hint)", at: start)
    }

    /// A `"..."` string with its escapes decoded (`${...}` is kept as written).
    private mutating func quoted() throws(HCLSyntaxError) -> String {
        let start = HCLPosition(line: line, column: column)
        advance()
        var scalars: [UInt8] = []
        while true {
            guard let byte = peek else { throw error("unexpected end of file in a string opened here", at: start) }
            switch byte {
            case UInt8(ascii: "\""):
                advance()
                guard let text = String(validating: scalars, as: UTF8.self) else {
                    throw error("a string that is not valid UTF-8", at: start)
                }
                return text
            case UInt8(ascii: "\n"):
                throw error("a string may not span lines (end it with \" or use a <<EOF heredoc)", at: start)
            case UInt8(ascii: "\\"):
                let escape = HCLPosition(line: line, column: column)
                advance()
                guard let code = peek else { throw error("unexpected end of file in a string", at: start) }
                advance()
                switch code {
                case UInt8(ascii: "n"): scalars.append(UInt8(ascii: "\n"))
                case UInt8(ascii: "t"): scalars.append(UInt8(ascii: "\t"))
                case UInt8(ascii: "r"): scalars.append(UInt8(ascii: "\r"))
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): scalars.append(code)
                case UInt8(ascii: "u"), UInt8(ascii: "U"):
                    let count = code == UInt8(ascii: "u") ? 4 : 8
                    var hex = ""
                    for _ in 0..<count {
                        guard let digit = peek else { break }
                        hex.append(Character(UnicodeScalar(digit)))
                        advance()
                    }
                    guard hex.count == count, let value = UInt32(hex, radix: 16), let scalar = Unicode.Scalar(value) else {
                        throw error("invalid \\\(Character(UnicodeScalar(code))) escape \"\(hex)\"", at: escape)
                    }
                    scalars += Array(String(Character(scalar)).utf8)
                default:
                    throw error("invalid escape \"\\\(Character(UnicodeScalar(code)))\" (\\n, \\t, \\r, \\\", \\\\, \\uXXXX)", at: escape)
                }
            default:
                scalars.append(byte)
                advance()
            }
        }
    }

    /// `<<MARKER` (or `<<-MARKER`, indentation removed) up to a line holding only the marker.
    private mutating func heredoc() throws(HCLSyntaxError) -> String {
        let start = HCLPosition(line: line, column: column)
        guard peek(at: 1) == UInt8(ascii: "<") else { throw error("unexpected \"<\" (a heredoc starts with <<)") }
        advance()
        advance()
        let indented = peek == UInt8(ascii: "-")
        if indented { advance() }
        let marker = identifier()
        guard !marker.isEmpty else { throw error("a heredoc needs a marker after << (e.g. <<EOF)", at: start) }
        while peek == UInt8(ascii: " ") || peek == UInt8(ascii: "\t") || peek == UInt8(ascii: "\r") { advance() }
        guard peek == UInt8(ascii: "\n") else { throw error("a heredoc's text starts on the line after <<\(marker)", at: start) }
        advance()
        var lines: [String] = []
        while true {
            guard peek != nil else { throw error("unexpected end of file in a heredoc: no line \"\(marker)\" ends it", at: start) }
            let first = offset
            while let byte = peek, byte != UInt8(ascii: "\n") { advance() }
            var text = String(decoding: bytes[first..<offset], as: UTF8.self)
            if text.hasSuffix("\r") { text.removeLast() }
            if text.trimmingSpaces == marker && (indented || text == marker) {
                break
            }
            lines.append(text)
            guard peek != nil else { throw error("unexpected end of file in a heredoc: no line \"\(marker)\" ends it", at: start) }
            advance()
        }
        if indented {
            let indent = lines.filter { !$0.trimmingSpaces.isEmpty }.map { $0.prefix { $0 == " " || $0 == "\t" }.count }.min() ?? 0
            lines = lines.map { String($0.dropFirst(min(indent, $0.prefix { $0 == " " || $0 == "\t" }.count))) }
        }
        return lines.map { $0 + "\n" }.joined()
    }

    private func error(_ message: String, at position: HCLPosition? = nil) -> HCLSyntaxError {
        HCLSyntaxError(line: position?.line ?? line, column: position?.column ?? column, message: message)
    }

    static func describe(_ byte: UInt8) -> String {
        switch byte {
        case UInt8(ascii: "\n"): "end of line"
        case 0x20..<0x7F: "\"\(Character(UnicodeScalar(byte)))\""
        default: "byte 0x\(String(byte, radix: 16))"
        }
    }
}

extension String {
    var trimmingSpaces: String {
        var view = Substring(self)
        while let first = view.first, first == " " || first == "\t" { view.removeFirst() }
        while let last = view.last, last == " " || last == "\t" { view.removeLast() }
        return String(view)
    }
}
