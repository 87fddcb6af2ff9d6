import ArgumentParser
import FaultProxy
import Logging

@main
struct FaultProxyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fault-proxy",
        abstract: "An HTTP proxy in front of Elasticsearch that injects 429/503 answers, connection resets and delays."
    )

    @Option(help: "Upstream base URL.") var upstream = "http://127.0.0.1:9200"
    @Option(help: "host:port to listen on.") var listen = "127.0.0.1:9201"
    @Option(help: "Answer every N-th request with --status (0: off).") var every = 0
    @Option(help: "Status for --every (e.g. 429 or 503).") var status = 429
    @Option(help: "Reset every N-th connection instead (0: off).") var resetEvery = 0
    @Option(help: "Delay every request by this many milliseconds.") var delayMs = 0

    func run() async throws {
        let logger = Logger(label: "fault-proxy")
        let proxy = FaultProxy(upstream: upstream, logger: logger)
        if every > 0 { proxy.setPeriodic(every: every, .status(status)) }
        if resetEvery > 0 { proxy.setPeriodic(every: resetEvery, .reset) }
        if delayMs > 0 { proxy.setPersistent(.delay(.milliseconds(delayMs))) }
        let parts = listen.split(separator: ":")
        guard parts.count == 2, let port = Int(parts[1]) else { throw ValidationError("--listen must be host:port") }
        let bound = try await proxy.start(host: String(parts[0]), port: port)
        print("fault-proxy listening on \(parts[0]):\(bound), forwarding to \(upstream)")
        while true { try await Task.sleep(for: .seconds(3600)) }
    }
}
