import Foundation
import Histogram
import JSONSupport

/// Named figures of one subcommand: printed as a table, or as one JSON object.
public struct BenchReport: Sendable {
    public let name: String
    public private(set) var figures: [(String, JSONValue)] = []
    public private(set) var targets: [(String, Bool)] = []
    /// Targets that are correctness, not speed: `--strict` fails the run when one is missed.
    public private(set) var essentialMissed: [String] = []

    public init(_ name: String) { self.name = name }

    /// When and where: the date and the machine's core count, for the README's table.
    public static func machine() -> BenchReport {
        var report = BenchReport("machine")
        report.add("date", String(ISO8601DateFormatter().string(from: Date()).prefix(10)))
        report.add("cores", CPUPinning.cores)
        return report
    }

    public mutating func add(_ key: String, _ value: Double, digits: Int = 2) {
        figures.append((key, .number(String(format: "%.\(digits)f", value.isFinite ? value : 0))))
    }

    public mutating func add(_ key: String, _ value: Int) { figures.append((key, .int(value))) }

    public mutating func add(_ key: String, _ value: String) { figures.append((key, .string(value))) }

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

/// Latencies in seconds, recorded per event in an HDR histogram (microsecond resolution,
/// three significant digits, up to an hour): exact percentiles in flat memory.
struct Latencies: Sendable {
    private var histogram = Histogram<UInt64>(highestTrackableValue: 3_600_000_000, numberOfSignificantValueDigits: .three)

    mutating func add(_ seconds: Double) { _ = histogram.record(UInt64(max(0, (seconds * 1e6).rounded()))) }
    mutating func add(_ other: Latencies) { histogram.add(other.histogram) }

    /// The `p`th percentile (0–100) in seconds; 0 when nothing was recorded.
    func percentile(_ p: Double) -> Double {
        count == 0 ? 0 : Double(histogram.valueAtPercentile(p)) / 1e6
    }

    var count: Int { Int(histogram.totalCount) }
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
