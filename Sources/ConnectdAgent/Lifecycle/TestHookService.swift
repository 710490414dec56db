// Test hooks, off unless CONNECTD_TEST_HOOKS=1: SIGUSR1 stalls one HTTP event loop for two
// seconds, so tests can prove the systemd watchdog stops pinging while the loop is stuck.

import Foundation
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import UnixSignals

struct TestHookService: Service, CustomStringConvertible {
    let logger: Logger
    var description: String { "TestHookService" }

    static var enabled: Bool { ProcessInfo.processInfo.environment["CONNECTD_TEST_HOOKS"] == "1" }

    func run() async throws {
        let signals = await UnixSignalsSequence(trapping: .sigusr1)
        for await _ in signals.cancelOnGracefulShutdown() {
            logger.warning("test hook: stalling an HTTP event loop for 2 s")
            MultiThreadedEventLoopGroup.singleton.any().execute { sleep(2) }
        }
    }
}
