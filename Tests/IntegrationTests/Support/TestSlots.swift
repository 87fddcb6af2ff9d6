/// Bounds how many test databases, with the pools and clients of their harnesses, exist at once.
///
/// swift-testing starts every test together, and each harness's pools and libcurl clients own
/// threads (10–30 per test): the integration tests peaked near 800 threads, past the limit of
/// a CI container, where NIO traps when it cannot create a thread.
actor TestSlots {
    static let databases = TestSlots(capacity: 8)

    private var free: Int

    init(capacity: Int) { free = capacity }

    /// Takes a slot, waiting for one at most `timeout`; after that it goes ahead anyway, so a test
    /// that holds two databases at once slows the run down but cannot deadlock it.
    func acquire(timeout: Duration = .seconds(120)) async {
        let deadline = ContinuousClock.now + timeout
        while free <= 0, ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(20))
        }
        free -= 1
    }

    func release() { free += 1 }
}
