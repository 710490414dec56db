import ConnectdCore
import CertificateAuthority
import Testing

@Suite struct IdentityTests {
    @Test func parsesConsulsSpiffeForms() throws {
        #expect(try SpiffeID.parse("spiffe://abc.consul/ns/default/dc/dc1/svc/web")
                == .service(host: "abc.consul", namespace: "default", datacenter: "dc1", service: "web"))
        #expect(try SpiffeID.parse("SPIFFE://abc.consul/ns/default/dc/dc1/svc/we%20b?x=1#f")
                == .service(host: "abc.consul", namespace: "default", datacenter: "dc1", service: "we b"))
        #expect(try SpiffeID.parse("spiffe://abc.consul/agent/client/dc/dc1/id/node1") == .agent(host: "abc.consul", datacenter: "dc1", node: "node1"))
        #expect(try SpiffeID.parse("spiffe://1234.consul") == .signing(clusterID: "1234", domain: "consul"))
        #expect(throws: SpiffeID.ParseError.notSpiffeScheme) { try SpiffeID.parse("https://x/ns/a/dc/b/svc/c") }
        #expect(throws: SpiffeID.ParseError.unexpectedFormat("spiffe://x/ns/a/dc/b")) { try SpiffeID.parse("spiffe://x/ns/a/dc/b") }
    }

    @Test func colonHex() {
        #expect(ColonHex.encode(ColonHex.bigEndianBytes(8)) == "08")
        #expect(ColonHex.encode(ColonHex.bigEndianBytes(300)) == "01:2c")
        #expect(ColonHex.normalizedSerial("0A:1b") == "0a1b")
        #expect(ColonHex.normalizedSerial("zz") == nil)
    }
}
