import AgentConfig
import Foundation
import Testing

/// The `fleet` block and `advertise_addr`: absent means single-host mode; every problem names
/// its key, and the password file must be private.
@Suite struct FleetConfigTests {
    @Test func noFleetBlockIsSingleHost() throws {
        let config = try ConfigDirectory().load()
        #expect(config.fleet == nil)
        #expect(config.advertiseAddr == nil)
    }

    @Test func aFullBlockLoadsAndLaterFilesWinFieldByField() throws {
        let dir = ConfigDirectory()
        let password = dir.write("etcd-password", "secret\n")
        chmod(password, 0o600)
        dir.write("a.json", """
        {"advertise_addr": "10.0.0.5", "bind_addr": "0.0.0.0",
         "fleet": {"etcd_endpoints": ["http://10.0.0.1:2379", "https://etcd-2.example:2379"],
                   "etcd_username": "host-a", "etcd_password_file": "\(password)", "etcd_ca_file": "/etc/connectd/etcd-ca.pem",
                   "key_prefix": "connectd/", "root_holder": false}}
        """)
        dir.write("b.json", #"{"fleet": {"root_holder": true, "key_prefix": "prod/connectd/"}}"#)
        let config = try dir.load()
        let fleet = try #require(config.fleet)
        #expect(fleet.etcdEndpoints == ["http://10.0.0.1:2379", "https://etcd-2.example:2379"])
        #expect(fleet.etcdUsername == "host-a")
        #expect(fleet.etcdPasswordFile == password)
        #expect(fleet.etcdCAFile == "/etc/connectd/etcd-ca.pem")
        #expect(fleet.keyPrefix == "prod/connectd/")
        #expect(fleet.rootHolder)
        #expect(config.advertisedAddress == "10.0.0.5")
    }

    @Test func advertisedAddressDefaults() throws {
        let dir = ConfigDirectory()
        dir.write("a.json", #"{"bind_addr": "10.1.2.3"}"#)
        #expect(try dir.load().advertisedAddress == "10.1.2.3")
        let wildcard = ConfigDirectory()
        wildcard.write("a.json", #"{"bind_addr": "0.0.0.0"}"#)
        let address = try wildcard.load().advertisedAddress
        #expect(address != "0.0.0.0" && !address.isEmpty)
    }

    @Test(arguments: [
        (#"{"fleet": {}}"#, "fleet.etcd_endpoints: fleet mode needs at least one etcd endpoint"),
        (#"{"fleet": {"etcd_endpoints": ["10.0.0.1:2379"]}}"#,
         #"web.json: fleet.etcd_endpoints[0]: invalid etcd endpoint "10.0.0.1:2379" (expected http://host:port or https://host:port)"#),
        (#"{"fleet": {"etcd_endpoints": ["http://a:1"], "etcd_username": "h"}}"#,
         "fleet.etcd_password_file: etcd_username needs etcd_password_file"),
        (#"{"fleet": {"etcd_endpoints": ["http://a:1"], "etcd_password_file": "/p"}}"#,
         "fleet.etcd_username: etcd_password_file is set but etcd_username is not"),
        (#"{"fleet": {"etcd_endpoints": ["http://a:1"], "etcd_username": "h", "etcd_password_file": "rel/p"}}"#,
         #"web.json: fleet.etcd_password_file: etcd_password_file must be an absolute path, not "rel/p""#),
        (#"{"fleet": {"etcd_endpoints": ["http://a:1"], "etcd_username": "h", "etcd_password_file": "/nonexistent/p"}}"#,
         "fleet.etcd_password_file: cannot read /nonexistent/p: No such file or directory"),
        (#"{"fleet": {"etcd_endpoints": ["http://a:1"], "key_prefix": "/abs/"}}"#,
         #"web.json: fleet.key_prefix: invalid key_prefix "/abs/" (a non-empty path ending in '/', e.g. "connectd/")"#),
        (#"{"fleet": {"etcd_endpoints": ["http://a:1"], "root_holdr": true}}"#,
         #"web.json: fleet.root_holdr: unknown key "root_holdr" (did you mean "root_holder"?)"#),
        (#"{"advertise_addr": "host-a"}"#, #"web.json: advertise_addr: invalid IP address "host-a""#),
    ])
    func reportsProblem(document: String, expected: String) {
        let problems = ConfigDirectory.problems(ofFile: "web.json", document)
        #expect(problems.contains(expected), "got \(problems)")
    }

    @Test func aPasswordFileOthersCanReadIsRefused() {
        let dir = ConfigDirectory()
        let password = dir.write("etcd-password", "secret")
        chmod(password, 0o644)
        dir.write("a.json", #"{"fleet": {"etcd_endpoints": ["http://a:1"], "etcd_username": "h", "etcd_password_file": "\#(password)"}}"#)
        #expect(dir.problems() == ["fleet.etcd_password_file: \(password) must not be readable by group or others (mode 644; chmod 600 it)"])
    }
}
