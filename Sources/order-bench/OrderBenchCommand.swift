import ArgumentParser
import Logging
import OrderBench

@main
struct OrderBenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "order-bench",
        abstract: "Measures the performance targets against a baseline in the same run (run it through scripts/bench).",
        subcommands: [Write.self, Index.self, Lag.self, Search.self, Reindex.self, Rebuild.self, Isolation.self, Soak.self, ServerUpdates.self, All.self]
    )
}

struct Common: ParsableArguments {
    @Option(help: "Orders in the generated data set.") var orders = 100_000
    @Flag(help: "Print one JSON object per benchmark.") var json = false

    func context() throws -> (BenchEnvironment, Logger) {
        var logger = Logger(label: "order-bench")
        logger.logLevel = json ? .warning : .info
        return (try BenchEnvironment(logger: logger), logger)
    }
}

struct Write: AsyncParsableCommand {
    @OptionGroup var common: Common
    @Option(help: "Requests per side.") var requests = 5000
    func run() async throws {
        let (env, logger) = try common.context()
        try await ServiceBenchmarks(env: env, orders: common.orders, logger: logger).write(requests: requests).print(json: common.json)
    }
}

struct Index: AsyncParsableCommand {
    @OptionGroup var common: Common
    @Option(help: "With more than 1: compare that many indexer processes with one, against the null sink.") var indexers = 1
    func run() async throws {
        let (env, logger) = try common.context()
        let bench = IndexBenchmarks(env: env, orders: common.orders, logger: logger)
        if indexers > 1 {
            try await bench.scaling(indexers: indexers).print(json: common.json)
        } else {
            try await bench.index().print(json: common.json)
        }
    }
}

struct Lag: AsyncParsableCommand {
    @OptionGroup var common: Common
    @Option(help: "Commands per second.") var rate = 300
    @Option(help: "Seconds.") var seconds = 60
    @Flag(help: "Index into a sink that acknowledges at once: the indexer's own latency, without osmem's stalls.") var nullSink = false
    func run() async throws {
        let (env, logger) = try common.context()
        try await ServiceBenchmarks(env: env, orders: common.orders, logger: logger).lag(rate: rate, seconds: seconds, nullSink: nullSink).print(json: common.json)
    }
}

struct Search: AsyncParsableCommand {
    @OptionGroup var common: Common
    @Option(help: "Requests per side.") var requests = 300
    func run() async throws {
        let (env, logger) = try common.context()
        // Facets cost osmem ~0.4 s CPU per query at 20k orders; larger sets only measure osmem.
        try await ServiceBenchmarks(env: env, orders: min(common.orders, 20_000), logger: logger).search(requests: requests).print(json: common.json)
    }
}

struct Reindex: AsyncParsableCommand {
    @OptionGroup var common: Common
    func run() async throws {
        let (env, logger) = try common.context()
        try await IndexBenchmarks(env: env, orders: common.orders, logger: logger).reindex().print(json: common.json)
    }
}

struct Rebuild: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "The indexer's rebuild of an empty search server, against raw _bulk of the same documents.")
    @OptionGroup var common: Common
    @Option(help: "Rounds; each posts the baseline and runs every variant once.") var rounds = 2
    func validate() throws {
        guard (1...20).contains(rounds) else { throw ValidationError("--rounds must be between 1 and 20") }
    }
    func run() async throws {
        let (env, logger) = try common.context()
        try await IndexBenchmarks(env: env, orders: common.orders, logger: logger).rebuild(rounds: rounds).print(json: common.json)
    }
}

struct ServerUpdates: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "server-updates", abstract: "How osmem-server's indexing speed changes as updates pile up (explains the long soaks).")
    @OptionGroup var common: Common
    @Option(help: "Rounds of updates, each a newer version of every document.") var rounds = 4
    @Flag(help: "Re-post the same content instead of a new tracking number per round.") var sameContent = false
    func validate() throws {
        guard (1...100).contains(rounds) else { throw ValidationError("--rounds must be between 1 and 100") }
    }
    func run() async throws {
        let (env, logger) = try common.context()
        try await IndexBenchmarks(env: env, orders: common.orders, logger: logger)
            .serverUpdates(rounds: rounds, changeContent: !sameContent).print(json: common.json)
    }
}

struct All: AsyncParsableCommand {
    @OptionGroup var common: Common
    @Option(help: "Write the isolation chart (SVG) here.") var chart: String?
    func run() async throws {
        let (env, logger) = try common.context()
        let service = ServiceBenchmarks(env: env, orders: common.orders, logger: logger)
        let index = IndexBenchmarks(env: env, orders: common.orders, logger: logger)
        BenchReport.machine().print(json: common.json)
        try await service.write(requests: 5000).print(json: common.json)
        try await index.index().print(json: common.json)
        try await index.scaling(indexers: 3).print(json: common.json)
        try await service.lag().print(json: common.json)
        try await service.lag(nullSink: true).print(json: common.json)
        let twentyThousand = ServiceBenchmarks(env: env, orders: min(common.orders, 20_000), logger: logger)
        try await twentyThousand.search(requests: 300).print(json: common.json)
        try await IsolationBenchmark(service: twentyThousand, chartPath: chart).run().print(json: common.json)
        try await index.reindex().print(json: common.json)
        try await index.rebuild(rounds: 1).print(json: common.json)
    }
}

struct Soak: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Mixed commands against three indexers while faults come and go (run it through scripts/soak).")
    @Option(help: "Minutes of load and faults.") var minutes = 10.0
    @Option(help: "Commands per second.") var rate = 100
    @Option(help: "Orders of the customer that is renamed during the soak.") var bigCustomerOrders = 20_000
    @Option(help: "Only these faults, comma-separated, first in this order (\(OrderBench.SoakChaos.Fault.allCases.map(\.rawValue).joined(separator: ", "))); all by default.")
    var faults: String?
    @Flag(help: "Print one JSON object.") var json = false
    @Flag(help: "Exit 1 when a correctness target (lost, backwards, drift, transaction age, errors) is missed.") var strict = false

    func run() async throws {
        var logger = Logger(label: "order-bench")
        logger.logLevel = json ? .warning : .info
        var options = OrderBench.Soak.Options()
        options.minutes = minutes
        options.rate = rate
        options.bigCustomerOrders = bigCustomerOrders
        if let faults {
            options.faults = try faults.split(separator: ",").map { name in
                guard let fault = OrderBench.SoakChaos.Fault(rawValue: String(name)) else { throw ValidationError("unknown fault \(name)") }
                return fault
            }
        }
        let report = try await OrderBench.Soak(env: try BenchEnvironment(logger: logger), options: options, logger: logger).run()
        report.print(json: json)
        if strict && !report.essentialMissed.isEmpty { throw ExitCode.failure }
    }
}

struct Isolation: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Order-write latency alone, with search load on Elasticsearch, and with the same searches on the write database.")
    @Flag(help: "Print one JSON object.") var json = false
    @Option(help: "Orders loaded and indexed first.") var orders = 20_000
    @Option(help: "Seconds per phase.") var seconds = 30
    @Option(help: "Rounds of the alone and with-search phases, alternating (the single-database phase runs once, last).") var rounds = 2
    @Option(help: "Write the chart (SVG) here.") var chart: String?

    func validate() throws {
        guard (1...10).contains(rounds) else { throw ValidationError("--rounds must be between 1 and 10") }
        guard (5...600).contains(seconds) else { throw ValidationError("--seconds must be between 5 and 600") }
    }

    func run() async throws {
        var logger = Logger(label: "order-bench")
        logger.logLevel = json ? .warning : .info
        let service = ServiceBenchmarks(env: try BenchEnvironment(logger: logger), orders: orders, logger: logger)
        try await IsolationBenchmark(service: service, seconds: seconds, rounds: rounds, chartPath: chart).run().print(json: json)
    }
}
