import ConnectdCore
import Testing

@Suite struct JSONParserTests {
    @Test func parsesEveryKindOfValue() throws {
        let value = try JSONParser.parse(#"{"a": 1, "b": -2.5, "c": "x\n\u00e9\ud83d\ude00", "d": [true, false, null], "e": {}}"#)
        #expect(value["a"] == .int(1))
        #expect(value["b"] == .double(-2.5))
        #expect(value["c"] == .string("x\né😀"))
        #expect(value["d"] == .array([.bool(true), .bool(false), .null]))
        #expect(value["e"] == .object([]))
    }

    @Test func stringsWithAndWithoutEscapes() throws {
        #expect(try JSONParser.parse(#"["plain", "", "caf\u00e9 au lait", "a\"b\\c/d", "ünïcode"]"#)
            == .array([.string("plain"), .string(""), .string("café au lait"), .string("a\"b\\c/d"), .string("ünïcode")]))
        // Invalid UTF-8, alone and after an escape.
        for bytes: [UInt8] in [[0x22, 0xC3, 0x28, 0x22], [0x22, 0x5C, 0x6E, 0xFF, 0x22]] {
            #expect(throws: JSONSyntaxError.self) { try JSONParser.parse(bytes) }
            do { _ = try JSONParser.parse(bytes) } catch { #expect(error.message.contains("invalid UTF-8")) }
        }
    }

    @Test func duplicateKeysAreFoundInSmallAndLargeObjects() throws {
        let many = (0..<40).map { "\"k\($0)\": \($0)" }.joined(separator: ", ")
        #expect(try JSONParser.parse("{\(many)}").objectMembers?.count == 40)
        for text in ["{\(many), \"k3\": 0}", "{\(many), \"k39\": 0}", "{\"a\": 1, \"b\": 2, \"a\": 3}"] {
            #expect(throws: JSONSyntaxError.self) { try JSONParser.parse(text) }
        }
    }

    @Test func keepsKeyOrder() throws {
        let value = try JSONParser.parse(#"{"z": 1, "a": 2, "m": 3}"#)
        #expect(value.objectMembers?.map(\.0) == ["z", "a", "m"])
    }

    @Test(arguments: [
        ("", "empty document", true),
        ("{\"a\":", "unexpected end of input", true),
        ("{\"a\": 1,}", "expected a quoted key", false),
        ("{\"a\": 1, \"a\": 2}", "duplicate key \"a\"", false),
        ("[1 2]", "expected ',' or ']'", false),
        ("01", "leading zero", false),
        ("{\"a\": tru}", "invalid literal", false),
        ("\"abc", "unexpected end of input in string", true),
        ("{} x", "after the top-level value", false),
    ])
    func reportsSyntaxErrors(input: String, fragment: String, unexpectedEnd: Bool) {
        do {
            _ = try JSONParser.parse(input)
            Issue.record("expected an error for \(input)")
        } catch {
            #expect(error.message.contains(fragment), "\(error.message)")
            #expect(error.isUnexpectedEnd == unexpectedEnd)
        }
    }

    @Test func errorsCarryLineAndColumn() {
        do {
            _ = try JSONParser.parse("{\n  \"a\": 1,\n  \"b\": ?\n}")
            Issue.record("expected an error")
        } catch {
            #expect(error.line == 3)
            #expect(error.column == 8)
        }
    }

    @Test func refusesAbsurdNesting() {
        let deep = String(repeating: "[", count: 1000) + String(repeating: "]", count: 1000)
        #expect(throws: JSONSyntaxError.self) { try JSONParser.parse(deep) }
    }
}

@Suite struct JSONWriterTests {
    @Test func compactIsGoCompact() {
        let value = JSONValue.object([("B", .int(1)), ("A", .array([.string("x"), .null])), ("C", .object([]))])
        #expect(value.encoded() == #"{"B":1,"A":["x",null],"C":{}}"#)
    }

    @Test func prettyUsesFourSpacesAndTrailingNewline() {
        let value = JSONValue.object([("A", .array([.int(1)])), ("B", .array([]))])
        #expect(value.encoded(pretty: true) == "{\n    \"A\": [\n        1\n    ],\n    \"B\": []\n}\n")
    }

    @Test func escapesLikeGo() {
        #expect(JSONValue.string("<a&b>\"\\\u{01}").encoded() == #""\u003ca\u0026b\u003e\"\\\u0001""#)
    }

    @Test func sortedObjectSortsKeys() {
        #expect(JSONValue.sortedObject(["b": .int(2), "a": .int(1)]).encoded() == #"{"a":1,"b":2}"#)
    }

    @Test func roundTrips() throws {
        let text = #"{"x":[1,2.5,"s",true,null,{"y":{}}]}"#
        #expect(try JSONParser.parse(text).encoded() == text)
    }
}

@Suite struct GoDurationTests {
    @Test(arguments: [
        ("300000ms", Int64(300_000_000_000)), ("1m30s", 90_000_000_000), ("1.5s", 1_500_000_000),
        ("0", 0), ("10s", 10_000_000_000), ("2h", 7_200_000_000_000), ("1us", 1_000), ("1µs", 1_000),
        ("100ns", 100), ("-2s", -2_000_000_000), ("1h1m1s", 3_661_000_000_000),
    ])
    func parses(text: String, nanoseconds: Int64) {
        #expect(GoDuration.parseNanoseconds(text) == nanoseconds)
    }

    @Test(arguments: ["", "xyz", "10", "1.s5", "s", "5 s", "1d", "-", "9999999999h"])
    func rejects(text: String) {
        #expect(GoDuration.parseNanoseconds(text) == nil)
    }

    @Test func formatsLikeGo() {
        #expect(GoDuration.format(nanoseconds: 90_000_000_000) == "1m30s")
        #expect(GoDuration.format(nanoseconds: 1_500_000_000) == "1.5s")
        #expect(GoDuration.format(nanoseconds: 554_506) == "554.506µs")
        #expect(GoDuration.format(nanoseconds: 0) == "0s")
    }
}

@Suite struct ContentHashTests {
    @Test func stableAndSensitive() {
        let a = ContentHash.of(.object([("a", .int(1))]))
        #expect(a == ContentHash.of(.object([("a", .int(1))])))
        #expect(a != ContentHash.of(.object([("a", .int(2))])))
        #expect(a.allSatisfy { $0.isHexDigit && !$0.isUppercase })
    }
}
