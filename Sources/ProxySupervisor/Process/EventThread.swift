// One thread with one epoll set for every descriptor the supervisor waits on: proxy log pipes
// and pidfds of adopted proxies. Event-driven; nothing polls on a timer.

import CProcShims
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

public final class EventThread: Sendable {
    public typealias Handler = @Sendable (_ events: UInt32) -> Void

    private let epollFD: Int32
    private let wakeFD: Int32
    private let handlers = Mutex<[Int32: Handler]>([:])
    private let running = Mutex(true)

    public init(name: String = "connectd-events") {
        epollFD = connectd_epoll_create()
        wakeFD = connectd_eventfd()
        connectd_epoll_add(epollFD, wakeFD, CONNECTD_EPOLLIN)
        let thread = PThread { [self] in loop() }
        thread.start()
    }

    /// Watches `fd`; `handler` runs on the event thread for each readiness.
    public func add(_ fd: Int32, events: UInt32 = CONNECTD_EPOLLIN, handler: @escaping Handler) {
        handlers.withLock { $0[fd] = handler }
        connectd_epoll_add(epollFD, fd, events)
    }

    /// Stops watching `fd` (the caller still owns and closes it).
    public func remove(_ fd: Int32) {
        connectd_epoll_remove(epollFD, fd)
        handlers.withLock { _ = $0.removeValue(forKey: fd) }
    }

    public func shutdown() {
        running.withLock { $0 = false }
        var one: UInt64 = 1
        _ = write(wakeFD, &one, 8)
    }

    private func loop() {
        var fds = [Int32](repeating: 0, count: 64)
        var events = [UInt32](repeating: 0, count: 64)
        while running.withLock({ $0 }) {
            let count = connectd_epoll_wait(epollFD, &fds, &events, 64, -1)
            if count < 0 {
                if errno == EINTR { continue }
                return
            }
            for index in 0..<Int(count) {
                let fd = fds[index]
                if fd == wakeFD {
                    var value: UInt64 = 0
                    _ = read(wakeFD, &value, 8)
                    continue
                }
                let handler = handlers.withLock { $0[fd] }
                handler?(events[index])
            }
        }
    }
}

/// A detached pthread running a closure (Foundation-free).
final class PThread: @unchecked Sendable {
    private let body: () -> Void

    init(_ body: @escaping () -> Void) { self.body = body }

    func start() {
        var thread = pthread_t()
        let box = Unmanaged.passRetained(self)
        pthread_create(&thread, nil, { raw in
            let me = Unmanaged<PThread>.fromOpaque(raw!).takeRetainedValue()
            me.body()
            return nil
        }, box.toOpaque())
        pthread_detach(thread)
    }
}
