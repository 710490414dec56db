// Certificate serial numbers: random, so no file (damaged, restored, lost) can make the CA
// hand out the same serial twice.

import X509

enum SerialNumbers {
    /// 128 random bits, positive (top bit clear), never zero: for leaves and cross-signatures.
    static func certificate() -> Certificate.SerialNumber {
        var bytes = (0..<16).map { _ in UInt8.random(in: 0...255) }
        bytes[0] = (bytes[0] & 0x7f) | 0x01
        return Certificate.SerialNumber(bytes: ArraySlice(bytes))
    }

    /// A random positive 63-bit serial for a root: Consul's roots carry a uint64 `SerialNumber`,
    /// and `CN=Consul CA <serial>` names the root by it.
    static func root() -> UInt64 {
        UInt64.random(in: 1...UInt64(Int64.max))
    }
}
