@testable import AgentConfig
import ConnectdCore
import Foundation
import Testing

/// HCL files (Consul's documented examples, written out by hand in Fixtures/hcl) load to the same
/// configuration as their JSON twins; malformed HCL is reported at file:line:column.
@Suite struct HCLTests {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/hcl").path

    static func bytes(_ name: String) throws -> [UInt8] {
        Array(try Data(contentsOf: URL(fileURLWithPath: fixtures + "/" + name)))
    }

    @Test(arguments: ["agent", "redis", "services", "tokens"])
    func loadsLikeItsJSONTwin(_ name: String) throws {
        let tree = try HCLDocument.parse(try Self.bytes(name + ".hcl"))
        let twin = try JSONParser.parse(try Self.bytes(name + ".json"))
        #expect(tree == twin, "\(name).hcl reads as\n\(tree.encoded(pretty: true))")
        func load(_ file: String) throws -> AgentConfiguration {
            let dir = ConfigDirectory()
            dir.write(file, String(decoding: try Self.bytes(file), as: UTF8.self))
            return try dir.load()
        }
        #expect(try load(name + ".hcl") == load(name + ".json"))
    }

    @Test func aDirectoryReadsHCLBesideJSON() throws {
        let dir = ConfigDirectory()
        dir.write("10-web.hcl", #"service { name = "web"  port = 8080 }"# + "\n")
        dir.write("20-db.json", #"{"service": {"name": "db", "port": 5432}}"#)
        dir.write("notes.txt", "not read")
        let config = try dir.load()
        #expect(config.services.map(\.name) == ["web", "db"])
    }

    @Test func unknownKeysAndHintsAreTheJSONReadersOwn() {
        let problems = ConfigDirectory.problems(ofFile: "web.hcl", """
        service {
          nmae = "web"
          port = 8080
        }
        """)
        #expect(problems.contains(#"web.hcl: service.nmae: unknown key "nmae" (did you mean "name"?)"#), "\(problems)")
    }

    @Test(arguments: [
        ("service {\n  name = \"web\"\n", "x.hcl:3:1: invalid HCL: unexpected end of file: a block opened here is not closed (missing \"}\")"),
        ("port = 80 81\n", "x.hcl:1:11: invalid HCL: unexpected \"8\" (expected a key)"),
        ("service {\n  port = 8080\n  interval = 10s\n}\n",
         "x.hcl:3:14: invalid HCL: invalid number \"10s\" (a duration or other text is a string in quotes: \"10s\")"),
        ("name = \"web\nport = 1\n", "x.hcl:1:8: invalid HCL: a string may not span lines (end it with \" or use a <<EOF heredoc)"),
        ("tags = [\"a\" \"b\"]\n", "x.hcl:1:13: invalid HCL: unexpected \"\"\" in a list (expected \",\" or \"]\")"),
        ("ports { http = 1 }\nports { http = 2 }\n", "x.hcl:2:1: invalid HCL: block \"ports\" appears twice (only service and check blocks repeat; merge the two)"),
        ("datacenter = \"a\"\ndatacenter = \"b\"\n", "x.hcl:2:1: invalid HCL: \"datacenter\" is set twice (the first time on line 1)"),
        ("/* never closed\n", "x.hcl:1:1: invalid HCL: unexpected end of file in a /* comment */ opened here"),
        ("description = <<EOT\nno end\n", "x.hcl:1:15: invalid HCL: unexpected end of file in a heredoc: no line \"EOT\" ends it"),
        ("name = \"a\\qb\"\n", "x.hcl:1:10: invalid HCL: invalid escape \"\\q\" (\\n, \\t, \\r, \\\", \\\\, \\uXXXX)"),
        ("enabled = yes\n", "x.hcl:1:11: invalid HCL: unexpected \"yes\" (a value is a string in quotes, a number, true, false, a list or an object)"),
        ("= 1\n", "x.hcl:1:1: invalid HCL: unexpected \"=\" (expected a key)"),
    ])
    func malformedHCLIsReportedAtItsPosition(_ text: String, _ expected: String) {
        let problems = ConfigDirectory.problems(ofFile: "x.hcl", text)
        #expect(problems == [expected])
    }

    @Test func valuesAndComments() throws {
        let tree = try HCLDocument.parse(Array("""
        a = 1   # comment
        b = -2.5 // comment
        c = 0x1F
        d = 1e3
        "quoted key" = "\\u00e9\\t"
        e = [1, "two", true, { f = false },]
        g { h = "i" }
        """.utf8))
        #expect(tree == .object([
            ("a", .int(1)), ("b", .double(-2.5)), ("c", .int(31)), ("d", .double(1000)), ("quoted key", .string("é\t")),
            ("e", .array([.int(1), .string("two"), .bool(true), .object([("f", .bool(false))])])),
            ("g", .object([("h", .string("i"))])),
        ]))
    }
}
