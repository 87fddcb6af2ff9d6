import Logging
import ServiceLifecycle
import ServiceSupport
import Testing

/// The allocator tuning every service runs with: really calling glibc (a C file that tested for
/// glibc before including any libc header once compiled both calls to no-ops), and a trimmer
/// that never delays a stop.
@Suite struct HeapTuningTests {
    #if os(Linux)
    @Test func callsGlibcOnLinux() {
        #expect(HeapTuning.isAvailable)
        #expect(HeapTuning.limitArenas(environment: [:]))
        HeapTuning.trim()
    }
    #endif

    @Test func anOperatorsMallocArenaMaxWins() {
        #expect(!HeapTuning.limitArenas(environment: ["MALLOC_ARENA_MAX": "8"]))
    }

    @Test func theTrimmerStopsAtOnceOnGracefulShutdown() async throws {
        let group = ServiceGroup(services: [HeapTrimmer()], logger: Logger(label: "heap-tuning-test"))
        let started = ContinuousClock.now
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            try await Task.sleep(for: .milliseconds(100))
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
        }
        // Sleeping out its interval would hold the process's stop (guarantee 7) that long. Half the
        // interval, not a tight bound: on two cores shared with the other suites a prompt stop has
        // taken 2.8 s (CI).
        #expect(ContinuousClock.now - started < HeapTuning.trimInterval / 2)
    }
}
