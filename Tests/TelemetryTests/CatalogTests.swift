import Foundation
import Telemetry
import Testing

@Suite struct CatalogTests {
    @Test func namesFollowPrometheusConventionsAndAreUnique() {
        let all = AgentMetric.all + ProxyMetric.all
        #expect(Set(all.map(\.name)).count == all.count)
        for metric in all {
            #expect(metric.name.hasPrefix("connectd_"), "\(metric.name)")
            #expect(metric.name.allSatisfy { $0.isASCII && ($0.isLowercase || $0.isNumber || $0 == "_") }, "\(metric.name)")
            #expect((metric.kind == .counter) == metric.name.hasSuffix("_total"), "\(metric.name): only counters end in _total")
            #expect(!metric.help.isEmpty)
        }
    }

    @Test func readmeListsEveryMetric() throws {
        let readme = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("README.md")
        let text = try String(contentsOf: readme, encoding: .utf8)
        for metric in AgentMetric.all + ProxyMetric.all {
            #expect(text.contains("| `\(metric.name)` | \(metric.kind.rawValue) | \(metric.help) |"), "README row of \(metric.name)")
        }
    }
}
