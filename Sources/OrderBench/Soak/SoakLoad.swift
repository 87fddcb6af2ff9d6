import ElasticsearchClient
import Foundation
import JSONSupport
import Logging
import Synchronization

/// Mixed commands at a fixed rate (open loop: a slow answer does not slow the load):
/// place, pay, ship, deliver and cancel orders, register and rename customers, and
/// rename the customer with many orders a few times.
final class SoakLoad: Sendable {
    struct Counts: Sendable {
        var commands = 0
        var acknowledged = 0
        /// 503 (with Retry-After): what a command may get while PostgreSQL restarts.
        var unavailable = 0
        /// 409/422: a transition the order no longer allows (another command got there first).
        var refused = 0
        /// 5xx other than 503, other 4xx, or no answer at all: failures.
        var errors = 0
        /// Commands not sent because too many were in flight.
        var skipped = 0
    }

    /// Orders by the status this load last put them in (bounded: the oldest are forgotten).
    private struct Orders {
        var byStatus: [String: [String]] = [:]
        var all: [String] = []

        mutating func put(_ id: String, _ status: String) {
            byStatus[status, default: []].append(id)
            if byStatus[status]!.count > 5000 { byStatus[status]!.removeFirst(1000) }
        }

        mutating func take(_ status: String) -> String? {
            guard var ids = byStatus[status], !ids.isEmpty else { return nil }
            let id = ids.remove(at: Int.random(in: 0..<ids.count))
            byStatus[status] = ids
            return id
        }
    }

    let http: CurlHTTPClient
    let base: String
    let authorization: (String, String)
    let bigCustomer: String
    let logger: Logger
    private let counts = Mutex(Counts())
    private let orders = Mutex(Orders())
    private let customers = Mutex<[String]>([])
    private let inFlight = Atomic<Int>(0)
    static let maxInFlight = 256

    init(base: String, authorization: (String, String), bigCustomer: String, logger: Logger) {
        var configuration = CurlHTTPClient.Configuration()
        configuration.threads = 32
        configuration.requestTimeout = .seconds(30)
        http = CurlHTTPClient(configuration: configuration)
        self.base = base
        self.authorization = authorization
        self.bigCustomer = bigCustomer
        self.logger = logger
    }

    var snapshot: Counts { counts.withLock { $0 } }

    /// Ids of orders this load placed (a sample for the backwards check).
    func sampleOrders(_ count: Int) -> [String] {
        orders.withLock { state in
            let all = state.byStatus.values.flatMap { $0 }
            return Array(all.shuffled().prefix(count))
        }
    }

    /// Issues `rate` commands per second until `deadline`; renames the big customer `bigRenames` times, evenly spread.
    func run(rate: Int, until deadline: ContinuousClock.Instant, bigRenames: Int) async {
        let start = ContinuousClock.now
        let total = deadline - start
        let interval = Duration.seconds(1) / max(rate, 1)
        var renamesDone = 0
        await withDiscardingTaskGroup { group in
            var next = start
            var n = 0
            while ContinuousClock.now < deadline {
                n += 1
                let due = renamesDone < bigRenames && ContinuousClock.now - start >= total * (Double(renamesDone + 1) / Double(bigRenames + 1))
                if due { renamesDone += 1 }
                if inFlight.load(ordering: .relaxed) >= Self.maxInFlight {
                    counts.withLock { $0.skipped += 1 }
                } else {
                    inFlight.add(1, ordering: .relaxed)
                    let number = n
                    group.addTask {
                        await (due ? self.renameBigCustomer(number) : self.command(number))
                        self.inFlight.subtract(1, ordering: .relaxed)
                    }
                }
                next += interval
                try? await Task.sleep(until: next)
            }
        }
        await http.shutdown()
    }

    private func command(_ n: Int) async {
        let roll = Int.random(in: 0..<100)
        switch roll {
        case 0..<35: await placeOrder(n)
        case 35..<55: await transition("pending", "pay", ["payment_reference": .string("soak-\(n)"), "amount": "10.00"], to: "paid")
        case 55..<70: await transition("paid", "ship", ["carrier": "DHL", "tracking_number": .string("TRK\(n)")], to: "shipped")
        case 70..<80: await transition("shipped", "deliver", [:], to: "delivered")
        case 80..<88: await transition("pending", "cancel", ["reason": "changed mind"], to: "cancelled")
        case 88..<95: await renameCustomer(n)
        default: await registerCustomer(n)
        }
    }

    private func placeOrder(_ n: Int) async {
        let customer = customers.withLock { $0.randomElement() } ?? bigCustomer
        let body: JSONValue = [
            "customer_id": .string(customer), "currency": "EUR",
            "items": [["sku": .string("SKU-\(n % 50)"), "name": .string(DataSet.products[n % DataSet.products.count]), "quantity": 1, "unit_price": "10.00"]],
            "shipping_address": ["line1": "Main Street 1", "city": "Berlin", "postal_code": "10115", "country": "DE"],
        ]
        if let reply = await send("POST", "/orders", body), let id = reply["id"]?.stringValue { orders.withLock { $0.put(id, "pending") } }
    }

    private func transition(_ from: String, _ action: String, _ body: JSONValue, to status: String) async {
        guard let id = orders.withLock({ $0.take(from) }) else { return await placeOrder(Int.random(in: 0..<1000)) }
        if await send("POST", "/orders/\(id)/\(action)", body) != nil { orders.withLock { $0.put(id, status) } }
    }

    private func registerCustomer(_ n: Int) async {
        let body: JSONValue = ["name": .string("Soak Customer \(n)"), "email": .string("soak-\(n)-\(UInt32.random(in: 0...UInt32.max))@example.com"),
                               "country": "DE"]
        if let reply = await send("POST", "/customers", body), let id = reply["id"]?.stringValue { customers.withLock { $0.append(id) } }
    }

    private func renameCustomer(_ n: Int) async {
        guard let customer = customers.withLock({ $0.randomElement() }) else { return await registerCustomer(n) }
        _ = await send("PATCH", "/customers/\(customer)", ["name": .string("Renamed Customer \(n)")])
    }

    func renameBigCustomer(_ n: Int) async {
        logger.info("renaming the big customer")
        _ = await send("PATCH", "/customers/\(bigCustomer)", ["name": .string("Big Customer \(n)")])
    }

    /// Sends one command and classifies the answer; the parsed body on 2xx.
    private func send(_ method: String, _ path: String, _ body: JSONValue) async -> JSONValue? {
        counts.withLock { $0.commands += 1 }
        do {
            let response = try await http.execute(method: method, url: base + path,
                                                  headers: [("Content-Type", "application/json"), authorization], body: body.serializedBytes)
            switch response.status {
            case 200..<300:
                counts.withLock { $0.acknowledged += 1 }
                return (try? JSONParser.parse(response.body)) ?? .null
            case 503: counts.withLock { $0.unavailable += 1 }
            case 409, 422: counts.withLock { $0.refused += 1 }
            default:
                counts.withLock { $0.errors += 1 }
                logger.warning("command failed", metadata: ["http.method": "\(method)", "http.status": "\(response.status)"])
            }
        } catch {
            counts.withLock { $0.errors += 1 }
            logger.warning("command got no answer", metadata: ["http.method": "\(method)", "error": "\(error)"])
        }
        return nil
    }
}
