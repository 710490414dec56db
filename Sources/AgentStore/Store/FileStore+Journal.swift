// The file store's journal: one committed transaction as `<root>/journal.json` holds it.

import ConnectdCore

extension FileStore {
    /// One committed transaction as the journal file holds it.
    struct Journal: Equatable {
        var revision: UInt64
        var operations: [StoreOperation]

        var json: JSONValue {
            .object([
                ("Revision", .int(Int64(revision))),
                ("Operations", .array(operations.map { operation in
                    switch operation {
                    case .put(let key, let value): .object([("Put", .string(key)), ("Value", value)])
                    case .delete(let key): .object([("Delete", .string(key))])
                    }
                })),
            ])
        }

        init(revision: UInt64, operations: [StoreOperation]) {
            self.revision = revision
            self.operations = operations
        }

        init?(json: JSONValue) {
            guard case .int(let revision)? = json["Revision"], revision > 0, case .array(let items)? = json["Operations"] else { return nil }
            var operations: [StoreOperation] = []
            for item in items {
                if let key = item["Put"]?.stringValue, let value = item["Value"] {
                    operations.append(.put(key: key, value: value))
                } else if let key = item["Delete"]?.stringValue {
                    operations.append(.delete(key: key))
                } else {
                    return nil
                }
            }
            self.init(revision: UInt64(revision), operations: operations)
        }

        /// The journal at `path`; nil when it is unreadable.
        static func read(_ path: String) -> Journal? {
            guard let bytes = try? AtomicFile.read(path), let document = try? JSONParser.parse(bytes) else { return nil }
            return Journal(json: document)
        }
    }
}
