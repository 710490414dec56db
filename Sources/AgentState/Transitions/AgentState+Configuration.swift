// The whole configuration as one transition (start and reload): CA settings from the files,
// the config-file intentions and services, and the port allocator, applied together or not at all.

import AgentConfig
import Authorization
import CertificateAuthority
import Foundation
import Logging

extension AgentState {
    /// What a configuration contributes to the state.
    public struct ConfigurationChange: Sendable {
        public var services: [ServiceDefinition]
        public var intentions: [IntentionDefinition]
        public var caSettings: CASettings
        public var allocator: PortAllocator
        /// Commit a revision even when nothing here differs (agent settings that renderers use changed).
        public var wakeWatchers: Bool

        public init(services: [ServiceDefinition], intentions: [IntentionDefinition], caSettings: CASettings,
                    allocator: PortAllocator, wakeWatchers: Bool = false) {
            self.services = services
            self.intentions = intentions
            self.caSettings = caSettings
            self.allocator = allocator
            self.wakeWatchers = wakeWatchers
        }
    }

    /// Applies `change` as one commit. On any failure (a bad CA key, a conflicting intention, a
    /// port clash, a failed write) nothing changes and the allocator stays the old one.
    public func applyConfiguration(_ change: ConfigurationChange, now: Date = Date()) throws(StateError) {
        var next = withFileServices(change.services, in: snapshot)
        next = try withProxies(next, allocator: change.allocator)
        let replaced: [Intention]
        do throws(IntentionError) {
            (next.intentions, replaced) = try next.intentions.applyingConfig(change.intentions, now: now)
        } catch {
            throw .intention(error)
        }
        let rotated: Bool
        do throws(CAError) {
            (next.ca, rotated) = try CAPolicy.applyingFileSettings(change.caSettings, to: next.ca, now: now)
        } catch {
            throw .ca(error)
        }
        let committed = try commit(next, always: change.wakeWatchers)
        allocator = change.allocator
        for intention in replaced {
            logger.warning("intention created through the API is replaced by a config file intention",
                           metadata: ["intention": "\(intention.summary)"])
        }
        if rotated { logRotation(committed.ca) }
    }
}
