// The process entry: `connectd proxy` first moves Swift concurrency onto its one event loop
// (before any task runs, on the main thread), then the command line is parsed as usual.

import ConnectProxy

@main
enum Main {
    static func main() async {
        if CommandLine.arguments.dropFirst().first == "proxy" { ProxyProcess.takeOverTheGlobalExecutor() }
        await ConnectdCommand.main()
    }
}
