// A value many tasks read and one writer replaces (the applied configuration).

import Synchronization

public final class SharedValue<Value: Sendable>: Sendable {
    private let storage: Mutex<Value>

    public init(_ value: Value) { storage = Mutex(value) }

    public var value: Value { storage.withLock { $0 } }

    /// One part of the value, without copying the rest (a copy of a large struct retains
    /// every array and string in it).
    public func read<Part: Sendable>(_ part: (Value) -> Part) -> Part { storage.withLock { part($0) } }

    public func set(_ value: Value) { storage.withLock { $0 = value } }
}
