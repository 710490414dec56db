// Running a program to completion in a test.

import Foundation

public struct CommandResult: Sendable {
    public var status: Int32
    /// stdout and stderr together.
    public var output: String

    public init(status: Int32, output: String) {
        self.status = status
        self.output = output
    }
}

/// Runs `executable` to completion (in `directory`, with `environment` when given, reading `stdin`).
public func runProcess(_ executable: String, _ arguments: [String], in directory: String? = nil,
                       environment: [String: String]? = nil, stdin: [UInt8]? = nil) throws -> CommandResult {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    if let directory { process.currentDirectoryURL = URL(fileURLWithPath: directory) }
    if let environment { process.environment = environment }
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = pipe
    let input = stdin.map { _ in Pipe() }
    if let input { process.standardInput = input }
    try process.run()
    if let input, let stdin {
        // Written from another thread, so a large input cannot block against a full output pipe.
        let writer = Thread {
            input.fileHandleForWriting.write(Data(stdin))
            try? input.fileHandleForWriting.close()
        }
        writer.start()
    }
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return CommandResult(status: process.terminationStatus, output: String(decoding: data, as: UTF8.self))
}
