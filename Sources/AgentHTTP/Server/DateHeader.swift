// The RFC 9110 Date header value, formatted once per second for every connection.

import Synchronization
#if canImport(Glibc)
import Glibc
#endif

final class DateHeader: Sendable {
    private let cached = Mutex<(second: time_t, text: String)>((-1, ""))

    func now() -> String {
        var time = time_t(Glibc.time(nil))
        if let text = cached.withLock({ $0.second == time ? $0.text : nil }) { return text }
        var parts = tm()
        gmtime_r(&time, &parts)
        var buffer = [CChar](repeating: 0, count: 64)
        let count = strftime(&buffer, buffer.count, "%a, %d %b %Y %H:%M:%S GMT", &parts)
        let text = String(decoding: buffer[0..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        cached.withLock { $0 = (time, text) }
        return text
    }
}
