import Foundation
import JSONSupport

/// Named figures of one subcommand: printed as a table, or as one JSON object.
public struct BenchReport: Sendable {
    public let name: String
    public private(set) var figures: [(String, JSONValue)] = []
    public private(set) var targets: [(String, Bool)] = []
    /// Targets that are correctness, not speed: `--strict` fails the run when one is missed.
    public private(set) var essentialMissed: [String] = []

    public init(_ name: String) { self.name = name }

    public mutating func add(_ key: String, _ value: Double, digits: Int = 2) {
        figures.append((key, .number(String(format: "%.\(digits)f", value.isFinite ? value : 0))))
    }

    public mutating func add(_ key: String, _ value: Int) { figures.append((key, .int(value))) }

    public mutating func target(_ description: String, _ met: Bool, essential: Bool = false) {
        targets.append((description, met))
        if essential && !met { essentialMissed.append(description) }
    }

    public func print(json: Bool) {
        if json {
            var object = JSONObject()
            object["benchmark"] = .string(name)
            for (k, v) in figures { object[k] = v }
            object["targets"] = .object(JSONObject(targets.map { ($0.0, .bool($0.1)) }))
            Swift.print(JSONValue.object(object).serialized)
            return
        }
        Swift.print("\n== \(name) ==")
        let width = (figures.map(\.0.count) + [10]).max()!
        for (k, v) in figures {
            let text: String
            switch v {
            case .number(let n): text = n
            default: text = v.serialized
            }
            Swift.print(k.padding(toLength: width, withPad: " ", startingAt: 0) + "  " + text)
        }
        for (description, met) in targets { Swift.print((met ? "  [met]     " : "  [missed]  ") + description) }
    }
}

/// Latency samples in seconds.
struct Latencies {
    private(set) var samples: [Double] = []
    mutating func add(_ seconds: Double) { samples.append(seconds) }
    mutating func add(_ other: Latencies) { samples += other.samples }
    func percentile(_ p: Double) -> Double {
        guard !samples.isEmpty else { return 0 }
        let sorted = samples.sorted()
        return sorted[min(sorted.count - 1, Int((p / 100) * Double(sorted.count)))]
    }
    var count: Int { samples.count }
}

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}

/// p50/p99 from a Prometheus histogram's cumulative buckets (upper-bound estimate).
func histogramPercentile(_ metrics: String, name: String, _ p: Double) -> Double? {
    var buckets: [(Double, Double)] = []
    for line in metrics.split(separator: "\n") where line.hasPrefix(name + "_bucket{") {
        guard let le = line.range(of: "le=\""), let end = line[le.upperBound...].firstIndex(of: "\""),
              let count = Double(line.split(separator: " ").last ?? "") else { continue }
        let bound = String(line[le.upperBound..<end])
        buckets.append((bound == "+Inf" ? .infinity : Double(bound) ?? .infinity, count))
    }
    guard let total = buckets.last?.1, total > 0 else { return nil }
    let rank = p / 100 * total
    return buckets.first { $0.1 >= rank }?.0
}
