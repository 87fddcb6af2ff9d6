/// The isolation benchmark's three phases side by side as a small SVG bar chart (write p50 and
/// p99 per phase), written by the benchmark itself.
struct IsolationChart {
    let phases: [IsolationBenchmark.Phase]
    let rate: Int

    var svg: String {
        let width = 560, height = 260, left = 60, bottom = 200, barWidth = 48
        let highest = max(phases.map { $0.writes.percentile(99) * 1000 }.max() ?? 1, 1)
        func y(_ ms: Double) -> Int { bottom - Int(ms / highest * 160) }
        var parts: [String] = [
            #"<svg xmlns="http://www.w3.org/2000/svg" width="\#(width)" height="\#(height)" font-family="sans-serif" font-size="12">"#,
            #"<rect width="100%" height="100%" fill="white"/>"#,
            #"<text x="\#(left)" y="18" font-size="13" font-weight="bold">Order writes at \#(rate)/s: latency (ms) with and without search load</text>"#,
            ##"<line x1="\##(left)" y1="\##(bottom)" x2="\##(width - 20)" y2="\##(bottom)" stroke="#333"/>"##,
        ]
        for (i, phase) in phases.enumerated() {
            let x = left + 20 + i * 160
            let bars: [(String, Double, String)] = [("p50", phase.writes.percentile(50) * 1000, "#7aa6d8"),
                                                    ("p99", phase.writes.percentile(99) * 1000, "#1f4e89")]
            for (j, (label, ms, color)) in bars.enumerated() {
                let barX = x + j * (barWidth + 6)
                parts.append(#"<rect x="\#(barX)" y="\#(y(ms))" width="\#(barWidth)" height="\#(bottom - y(ms))" fill="\#(color)"/>"#)
                parts.append(#"<text x="\#(barX + barWidth / 2)" y="\#(y(ms) - 4)" text-anchor="middle">\#(label) \#(Self.format(ms))</text>"#)
            }
            parts.append(#"<text x="\#(x + barWidth + 3)" y="\#(bottom + 18)" text-anchor="middle">\#(phase.name.split(separator: "(").first.map(String.init) ?? phase.name)</text>"#)
            if let store = phase.name.split(separator: "(").dropFirst().first {
                parts.append(#"<text x="\#(x + barWidth + 3)" y="\#(bottom + 34)" text-anchor="middle">(\#(store)</text>"#)
            }
        }
        parts.append("</svg>")
        return parts.joined(separator: "\n") + "\n"
    }

    static func format(_ ms: Double) -> String {
        ms >= 100 ? String(Int(ms.rounded())) : String(Double(Int(ms * 10)) / 10)
    }
}
