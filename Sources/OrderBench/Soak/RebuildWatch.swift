import ElasticsearchClient
import Foundation
import LibPQClient
import OrderStore

/// When the indexers' self-heal rebuild started and finished, read from its `index_rebuilds` row
/// (written before the alias is created, deleted once every document was acknowledged), so that
/// timing it costs the search server nothing while it loads. An earlier watch counted the index's
/// documents five times a second, and on osmem-server each `_count` competed with the rebuild's
/// bulk requests, which the raw `_bulk` baseline it is compared with never had to.
///
/// The alias is asked only while no row is there: before the rebuild (not started yet, or already
/// done between two polls on a small data set) and once after it.
struct RebuildWatch {
    let pool: PostgresPool
    let client: ElasticsearchClient
    let alias: String
    var pollInterval: Duration = .milliseconds(100)

    struct NotRebuilt: Error {}

    func run(patience: Duration) async throws -> (started: ContinuousClock.Instant, finished: ContinuousClock.Instant) {
        let deadline = ContinuousClock.now + patience
        var started: ContinuousClock.Instant?
        while ContinuousClock.now < deadline {
            let underWay = try? await IndexRebuilds.isUnderWay(for: alias, on: pool)
            if underWay == true {
                started = started ?? .now
            } else if underWay == false, let targets = try? await client.aliasTargets(alias), !targets.isEmpty {
                let now = ContinuousClock.now
                return (started ?? now, now)
            }
            try await Task.sleep(for: pollInterval)
        }
        throw NotRebuilt()
    }
}
